"""A whole-site first sync against the physical limit, and an incremental run after it.

    python benchmarks/whole_site.py              # 100 ms and 0 ms per response
    python benchmarks/whole_site.py --scale 0.1  # a tenth of the records, for a smoke run

The site is issue 12's: 5,000 customers, 10,000 subscriptions, 8,000 invoices,
20,000 events and so on, behind at most 4 requests in flight. The tap syncs its
default selection in a subprocess (children off); the sandbox counts requests per
path. The limit is Σ⌈Nₛ/200⌉ x latency / 4: every list at its minimum requests,
four in flight from the first to the last. The floor fetches the same lists
serially with plain requests and only parses and re-serialises the records.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

from run import API_KEY, PAGE_SIZE, measure

from maxio_sandbox import Sandbox, SandboxConfig
from tap_maxio.declaration import load

COUNTS = {
    "customers": 5_000, "subscriptions": 10_000, "invoices": 8_000, "events": 20_000,
    "payment_profiles": 5_000, "credit_notes": 1_000, "subscription_components": 5_000,
    "subscription_metadata": 2_000, "customer_metadata": 2_000, "invoice_events": 3_000,
}  # fmt: skip

FLOOR = """
import json, sys, requests
url, key, plan, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), open(sys.argv[4], "w")
session = requests.Session()
session.auth = (key, "x")
for stream, path, records_key, wrapper, paged in plan:
    page = 1
    while True:
        params = {"per_page": 200, "page": page} if paged else {}
        body = session.get(url + path, params=params).json()
        rows = body[records_key] if records_key else body
        rows = [rows] if isinstance(rows, dict) else rows
        rows = [r[wrapper] for r in rows] if wrapper else rows
        for row in rows:
            out.write(json.dumps({"type": "RECORD", "stream": stream, "record": row}) + "\\n")
        if not paged or len(rows) < 200:
            break
        page += 1
"""


def site(scale: float, latency: float) -> Sandbox:
    """Issue 12's site, `scale` times its size."""
    counts = {name: max(1, round(n * scale)) for name, n in COUNTS.items()}
    return Sandbox(SandboxConfig(api_key=API_KEY, counts=counts, latency=latency, max_in_flight=4))


def stream_of(path: str, query: dict[str, list[str]]) -> str:
    """The stream a request was sent for (on a Relationship Invoicing site)."""
    if path.endswith("/metafields.json"):
        return "metafields"
    if path == "/events.json" and "filter" in query:
        return "events: for tombstones"
    paths = {s.path: name for name, s in load().items() if s.invoicing != "legacy"}
    return paths.get(path, path)


def warm(sandbox: Sandbox, workdir: Path) -> None:
    """Sync once, untimed and without latency, so that the sandbox has rendered every record.

    The fake server renders a record once until its data changes. Rendering
    each one the first time costs it more CPU than the tap spends on it, and
    on two cores that would bound the timed run, which Maxio's servers do not.
    """
    latency, sandbox.config.latency = sandbox.config.latency, 0.0
    sync(sandbox, workdir)
    sandbox.config.latency = latency


def sync(sandbox: Sandbox, workdir: Path, state: Path | None = None) -> dict:
    """Run the tap's CLI once; its figures, per stream and overall."""
    config = {"subdomain": "acme", "api_key": API_KEY, "base_url": sandbox.url}
    (workdir / "config.json").write_text(json.dumps(config))
    args = [sys.executable, "-m", "tap_maxio", "--config", str(workdir / "config.json")]
    if state is not None:
        args += ["--state", str(state)]
    sandbox.clear_log()
    out = workdir / "tap.out"
    wall, cpu, rss = measure(args, str(out))
    records: Counter[str] = Counter()
    last_state = None
    for line in out.read_text().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records[message["stream"]] += 1
        elif message["type"] == "STATE":
            last_state = message["value"]
    (workdir / "state.json").write_text(json.dumps(last_state))
    requests = Counter(stream_of(r.path, r.query) for r in sandbox.requests)
    return {"wall": wall, "cpu": cpu, "rss": rss, "records": records, "requests": requests}


def floor(sandbox: Sandbox, workdir: Path) -> tuple[float, int]:
    """CPU seconds of the floor, and the records it wrote."""
    plan = [
        (name, s.path, s.records_key, s.wrapper, s.paged)
        for name, s in load().items()
        if s.parent is None and s.invoicing != "legacy" and "{" not in s.path
    ]
    out = workdir / "floor.jsonl"
    args = [sys.executable, "-c", FLOOR, sandbox.url, API_KEY, json.dumps(plan), str(out)]
    _, cpu, _ = measure(args, str(workdir / "floor.log"))
    return cpu, sum(1 for _ in out.open())


def table(run: dict, latency: float) -> float:
    """Print the per-stream table; return the limit in seconds."""
    print("| stream | records | requests | minimum | ratio |")
    print("|---|---:|---:|---:|---:|")
    total_minimum = 0
    for stream in sorted(set(run["records"]) | set(run["requests"])):
        records, requests = run["records"][stream], run["requests"][stream]
        minimum = max(1, math.ceil(records / PAGE_SIZE))
        total_minimum += minimum
        print(f"| {stream} | {records:,} | {requests} | {minimum} | {requests / minimum:.2f} |")
    print(f"| **all** | {sum(run['records'].values()):,} | {sum(run['requests'].values())} "
          f"| {total_minimum} | |")  # fmt: skip
    return total_minimum * latency / 4


def main() -> None:
    """The first sync at 100 ms and 0 ms, and an incremental run on a still site."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    options = parser.parse_args()
    for latency in (0.1, 0.0):
        with tempfile.TemporaryDirectory() as tmp, site(options.scale, latency) as sandbox:
            workdir = Path(tmp)
            warm(sandbox, workdir)
            first = sync(sandbox, workdir)
            print(f"\n### First sync, {latency * 1000:.0f} ms per response\n")
            limit = table(first, latency)
            records = sum(first["records"].values())
            line = f"\n- wall {first['wall']:.1f} s, peak RSS {first['rss']:.0f} MiB"
            if latency:
                line += f"; limit {limit:.1f} s: {first['wall'] / limit:.2f}x the limit"
            else:
                floor_cpu, floor_records = floor(sandbox, workdir)
                ratio = (first["cpu"] / records) / (floor_cpu / floor_records)
                line += f"; tap CPU per record {ratio:.2f}x the floor"
            print(line)
            if latency:
                again = sync(sandbox, workdir, state=workdir / "state.json")
                print(f"\n### Incremental run on a still site, {latency * 1000:.0f} ms\n")
                table(again, latency)
                print(f"\n- wall {again['wall']:.1f} s")


if __name__ == "__main__":
    main()
