"""python -m maxio_sandbox: serve a fake Maxio site until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING, get_args

from .collections import REGISTRY
from .config import Invoicing, SandboxConfig
from .server import Sandbox

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType


def parse_args(argv: Sequence[str] | None = None) -> SandboxConfig:
    """Read the command line into a config; flags mirror SandboxConfig."""
    d = SandboxConfig()
    p = argparse.ArgumentParser(prog="python -m maxio_sandbox", description=__doc__)
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--api-key", default=d.api_key)
    p.add_argument("--subdomain", default=d.subdomain)
    p.add_argument("--seed", type=int, default=d.seed)
    for name in dict.fromkeys(spec.name for spec in REGISTRY):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N", dest=f"count_{name}",
                       help=f"number of {name.replace('_', ' ')}")  # fmt: skip
    p.add_argument("--tied-batch", type=int, default=d.tied_batch)
    p.add_argument("--site-timezone", "--timezone", default=d.site_timezone)
    p.add_argument(
        "--invoicing",
        choices=get_args(Invoicing),
        default=d.invoicing,
        help="the site's invoicing model; legacy: a statement-billing site",
    )
    p.add_argument("--latency", type=float, default=d.latency)
    p.add_argument("--rate-429", type=float, default=d.rate_429)
    p.add_argument("--rate-5xx", type=float, default=d.rate_5xx)
    p.add_argument("--rate-reset", type=float, default=d.rate_reset)
    p.add_argument("--max-in-flight", type=int, default=d.max_in_flight)
    p.add_argument("--mutate-every", type=int, default=d.mutate_every)
    p.add_argument("--expected-host", default=d.expected_host)
    p.add_argument("--history-start", default=d.history_start)
    p.add_argument("--history-end", default=d.history_end)
    p.add_argument(
        "--disable", action="append", default=[], metavar="COLLECTION[=STATUS]",
        help="a feature the site has not enabled: its requests get STATUS (403, or 422)",
    )  # fmt: skip
    a = p.parse_args(argv)
    disabled = {
        name: int(status or 403) for name, _, status in (d.partition("=") for d in a.disable)
    }
    counts = {
        k[len("count_") :]: v
        for k, v in vars(a).items()
        if k.startswith("count_") and v is not None
    }
    return SandboxConfig(
        api_key=a.api_key, subdomain=a.subdomain, seed=a.seed, counts=counts,
        tied_batch=a.tied_batch, site_timezone=a.site_timezone,
        invoicing=a.invoicing, latency=a.latency, rate_429=a.rate_429,
        rate_5xx=a.rate_5xx, rate_reset=a.rate_reset, max_in_flight=a.max_in_flight,
        mutate_every=a.mutate_every, expected_host=a.expected_host,
        history_start=a.history_start, history_end=a.history_end, disabled=disabled,
        host=a.host, port=a.port,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, serve and print one line; return 0 after SIGINT or SIGTERM."""
    cfg = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with Sandbox(cfg) as sb:
        print(
            f"Maxio sandbox for site '{cfg.subdomain}' at {sb.url} (api key: {cfg.api_key})",
            flush=True,
        )
        while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
