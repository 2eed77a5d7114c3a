"""Benchmark the tap against the sandbox site and print a table.

    python benchmarks/run.py                 # the full table (a few minutes)
    python benchmarks/run.py --quick         # smaller N, for a smoke run

Each tap run is a subprocess reading only `subscriptions`; its CPU time and peak
RSS come from wait4(). The sandbox serves from this process, so its own CPU is
not counted. The floor fetches the same pages serially with plain requests and
only parses and re-serialises the JSON: the least work any tap must do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from maxio_sandbox import Sandbox, SandboxConfig

PAGE_SIZE = 200
API_KEY = "bench-key"

FLOOR = """
import json, sys, requests
url, key, n = sys.argv[1], sys.argv[2], 0
session = requests.Session()
session.auth = (key, "x")
page, out = 1, open(sys.argv[3], "w")
while True:
    rows = session.get(url + "/subscriptions.json", params={
        "per_page": 200, "page": page, "sort": "updated_at", "direction": "asc",
        "date_field": "updated_at", "start_datetime": "2005-01-01T00:00:00+00:00",
        "end_datetime": "2100-01-01T00:00:00+00:00"}).json()
    for row in rows:
        out.write(json.dumps({"type": "RECORD", "stream": "subscriptions",
                              "record": row["subscription"]}) + "\\n")
    n += len(rows)
    if len(rows) < 200:
        break
    page += 1
print(n)
"""


@dataclass
class Result:
    """One measured run."""

    name: str
    records: int
    wall: float
    cpu: float
    rss_mb: float
    requests: int
    workers: int | str

    def row(self) -> str:
        """A Markdown table row."""
        minimum = math.ceil(self.records / PAGE_SIZE)
        return (
            f"| {self.name} | {self.records:,} | {self.workers} | {self.wall:.1f} | "
            f"{self.records / self.wall:,.0f} | {self.requests} | {minimum} | "
            f"{self.requests / minimum:.2f} | {self.rss_mb:.0f} | "
            f"{1000 * self.cpu / max(self.records, 1):.3f} |"
        )


def measure(args: list[str], stdout_path: str) -> tuple[float, float, float]:
    """Run a command; return wall seconds, CPU seconds and peak RSS in MiB.

    The peak is VmHWM sampled from /proc while the command runs: wait4's
    ru_maxrss would also count this process's own memory (the sandbox's records),
    which the child carries from fork until exec.
    """
    started = time.monotonic()
    peak_kib = 0
    with open(stdout_path, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL)
        status_path = Path(f"/proc/{proc.pid}/status")
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(OSError, IndexError):
                hwm = status_path.read_text().split("VmHWM:")[1].split()[0]
                peak_kib = max(peak_kib, int(hwm))
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        msg = f"{args[:3]} exited with status {proc.returncode}"
        raise SystemExit(msg)
    return wall, usage.ru_utime + usage.ru_stime, peak_kib / 1024


def catalog_for(config_path: Path, workdir: Path) -> Path:
    """Discover the catalog and select only subscriptions."""
    out = subprocess.run(
        [sys.executable, "-m", "tap_maxio", "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    catalog = json.loads(out)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "subscriptions"
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def run_tap(site: Sandbox, workdir: Path, name: str, workers: int) -> Result:
    """Sync subscriptions from the site with the tap, in a subprocess."""
    config = {
        "subdomain": "acme",
        "api_key": API_KEY,
        "base_url": site.url,
        "page_size": PAGE_SIZE,
        "max_concurrent_requests": workers,
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    catalog = catalog_for(config_path, workdir)
    site.clear_log()
    out = str(workdir / "tap.out")
    args = [sys.executable, "-m", "tap_maxio", "--config", str(config_path)]
    wall, cpu, rss = measure([*args, "--catalog", str(catalog)], out)
    with open(out) as lines:
        records = sum(1 for line in lines if line.startswith('{"type":"RECORD"'))
    requests = sum(1 for r in site.requests if r.path == "/subscriptions.json")
    return Result(name, records, wall, cpu, rss, requests, workers)


def run_floor(site: Sandbox, workdir: Path) -> Result:
    """Fetch the same pages with plain requests and json, nothing else."""
    site.clear_log()
    out = str(workdir / "floor.out")
    args = [sys.executable, "-c", FLOOR, site.url, API_KEY, str(workdir / "floor.jsonl")]
    wall, cpu, rss = measure(args, out)
    records = int(Path(out).read_text())
    requests = sum(1 for r in site.requests if r.path == "/subscriptions.json")
    return Result("floor: fetch + parse + re-serialise", records, wall, cpu, rss, requests, 1)


def site_with(count: int, latency: float) -> Sandbox:
    """A sandbox holding `count` subscriptions and few other records."""
    config = SandboxConfig(
        api_key=API_KEY,
        counts={"subscriptions": count, "customers": 10, "invoices": 10},
        latency=latency,
    )
    return Sandbox(config)


def main() -> None:
    """Run every scenario and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="N=5,000 instead of 50,000")
    parser.add_argument("--latency", type=float, default=0.1)
    options = parser.parse_args()
    n = 5_000 if options.quick else 50_000

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with site_with(n, options.latency) as site:
            results.append(run_tap(site, workdir, f"tap, {options.latency * 1000:.0f} ms", 4))
            results.append(run_tap(site, workdir, f"tap, {options.latency * 1000:.0f} ms", 1))
        with site_with(n, 0.0) as site:
            results.append(run_tap(site, workdir, "tap, 0 ms", 4))
            results.append(run_floor(site, workdir))
        with site_with(n * 10, 0.0) as site:
            results.append(run_tap(site, workdir, "tap, 0 ms, 10 N", 4))

    print(
        "| run | records | workers | wall s | records/s | requests | minimum | ratio | "
        "peak RSS MiB | CPU s per 1k |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(result.row())
    concurrent, serial, tap0, floor, big = results
    print()
    print(f"- concurrent vs serial: {serial.wall / concurrent.wall:.2f}x faster")
    print(f"- requests vs minimum: {concurrent.requests / math.ceil(n / PAGE_SIZE):.2f}x")
    cpu_ratio = (tap0.cpu / tap0.records) / (floor.cpu / floor.records)
    print(f"- tap CPU per record vs floor: {cpu_ratio:.2f}x")
    print(f"- peak RSS, 10 N vs N: +{100 * (big.rss_mb / tap0.rss_mb - 1):.0f}%")


if __name__ == "__main__":
    main()
