"""What tombstones cost an incremental run: requests of /events.json per delete events.

    python benchmarks/deletes.py

For each count of purges, a first sync of customers and subscriptions, then the
purges, then an incremental run; it prints the delete events the run had to
read, its requests of /events.json, and the pages those events fill (200 each).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from maxio_sandbox import Sandbox, SandboxConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import API_KEY, run_tap, select_only, tap_config, wait_for_the_next_second

PURGES = (0, 50, 150, 400)
COUNTS = {"customers": 1000, "subscriptions": 1200}


def measure(purges: int) -> dict[str, tuple[int, int]]:
    """Per stream: the delete events it reads, and its requests of /events.json."""
    config = SandboxConfig(api_key=API_KEY, subdomain="acme", seed=3, counts=dict(COUNTS))
    with Sandbox(config) as site:
        settings = tap_config(site, page_size=200)
        catalog = select_only(settings, {"customers", "subscriptions"})
        first = run_tap(settings, catalog=catalog)
        events = {"customer_delete": 0, "subscription_deletion": 0}
        for customer in [c["id"] for c in site.records("customers")[:purges]]:
            deleted = site.delete("customers", customer)
            events["customer_delete"] += len(deleted["customers"])
            events["subscription_deletion"] += len(deleted.get("subscriptions", ()))
        wait_for_the_next_second()
        site.clear_log()
        run_tap(settings, state=first.state, catalog=catalog)
        sent = [r.query.get("filter", [""])[0] for r in site.requests if r.path == "/events.json"]
    return {key: (count, sent.count(key)) for key, count in events.items()}


def main() -> None:
    """Print one row per count of purges."""
    print("| stream | delete events | pages of 200 | requests of /events.json |")
    print("|---|---:|---:|---:|")
    streams = {"customer_delete": "customers", "subscription_deletion": "subscriptions"}
    for purges in PURGES:
        for key, (events, requests) in measure(purges).items():
            print(f"| {streams[key]} | {events} | {math.ceil(events / 200)} | {requests} |")


if __name__ == "__main__":
    main()
