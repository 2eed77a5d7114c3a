"""Shared fixtures: a sandbox Maxio site on loopback and a way to run the tap."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import typing as t
from collections import defaultdict
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from maxio_sandbox import Sandbox, SandboxConfig
from tap_maxio.tap import TapMaxio

ROOT = Path(__file__).resolve().parent.parent
MELTANO = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
API_KEY = "sk_test_9f3b2c1d8e7a6b5c"
COUNTS = {"subscriptions": 260, "customers": 140, "invoices": 230}


#: The sandbox collections behind the streams not named after one collection,
#: each with the context the tap reads it in.
STREAM_SOURCES: dict[str, list[tuple[str, dict | None]]] = {
    "metafields": [
        ("subscription_metafields", {"resource_type": "subscriptions"}),
        ("customer_metafields", {"resource_type": "customers"}),
    ],
    "legacy_invoices": [("invoices", None)],
}


def site_records(site: Sandbox, stream: str) -> list[tuple[dict, dict | None]]:
    """The site's records of one of the tap's streams, each with its context."""
    if stream == "site":
        return [(record, None) for record in site.stream_records(stream)]
    return [
        (record, context)
        for collection, context in STREAM_SOURCES.get(stream, [(stream, None)])
        for record in site.records(collection)
    ]


def sandbox_config(**overrides: t.Any) -> SandboxConfig:
    """A small site whose tied second holds more rows than a test page."""
    values: dict[str, t.Any] = {
        "api_key": API_KEY,
        "subdomain": "acme",
        "seed": 7,
        "counts": dict(COUNTS),
        "tied_batch": 30,
    }
    values.update(overrides)
    return SandboxConfig(**values)


def tap_config(sandbox: Sandbox, **overrides: t.Any) -> dict[str, t.Any]:
    """Settings that point the tap at the sandbox, with pages smaller than the tie."""
    config: dict[str, t.Any] = {
        "subdomain": "acme",
        "api_key": API_KEY,
        "base_url": sandbox.url,
        "page_size": 25,
        "retry_backoff": 0.01,
        "start_date": "2020-01-01T00:00:00Z",
    }
    config.update(overrides)
    return config


def select_all(config: dict) -> dict:
    """A catalog with every stream selected, children included."""
    catalog = TapMaxio(config=config).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    return catalog


def select_only(config: dict, names: t.Container[str]) -> dict:
    """A catalog with exactly these streams selected."""
    catalog = TapMaxio(config=config).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in names
    return catalog


def wait_for_the_next_second() -> None:
    """Sleep into the next whole second.

    A sync reads up to the second it starts in, and the sandbox stamps a change
    made now up to a second later (milliseconds, see the sandbox's clock): a run
    started in the same second leaves that change to the run after it.
    """
    time.sleep(1.01 - time.time() % 1)


@dataclass
class Run:
    """What one run of the tap wrote."""

    messages: list[dict]
    stderr: str
    records: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records[message["stream"]].append(message["record"])

    @property
    def state(self) -> dict:
        """The last STATE the run wrote."""
        return [m for m in self.messages if m["type"] == "STATE"][-1]["value"]

    def keys(self, stream: str, key: str = "id") -> set:
        """Primary keys of the records of a stream."""
        return {r[key] for r in self.records[stream]}


def run_tap(
    config: dict,
    state: dict | None = None,
    catalog: dict | None = None,
    prepare: t.Callable[[TapMaxio], None] | None = None,
) -> Run:
    """Run a whole sync in this process and collect its messages.

    `prepare` is given the tap before it syncs.
    """
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stderr = io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        tap = TapMaxio(config=config, state=state, catalog=catalog)
        if prepare is not None:
            prepare(tap)
        tap.sync_all()
        stdout.flush()
    stdout.seek(0)
    messages = [json.loads(line) for line in stdout.read().splitlines() if line.strip()]
    return Run(messages, stderr.getvalue())


def run_until_killed(
    args: list[str], counted: t.Callable[[dict], bool], kill_after: int
) -> tuple[list[dict], dict | None]:
    """Run the tap's CLI with `args`; kill -9 it at the `kill_after`th RECORD `counted`.

    Returns the RECORD messages counted and the last STATE written before the kill.
    """
    records: list[dict] = []
    state = None
    command = [sys.executable, "-m", "tap_maxio", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            message = json.loads(line)
            if message["type"] == "RECORD" and counted(message):
                records.append(message)
                if len(records) == kill_after:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            elif message["type"] == "STATE":
                state = message["value"]
    return records, state


def run_cli(
    config: dict,
    tmp_path: Path,
    *args: str,
    timeout: float = 120,
    loglevel: str = "INFO",
    env: dict[str, str] | None = None,
    script: str | None = None,
) -> subprocess.CompletedProcess:
    """Run the tap's CLI (or `script`, which runs it) with `config`, as a user would."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    program = ["-m", "tap_maxio"] if script is None else ["-c", script]
    return subprocess.run(
        [sys.executable, *program, "--config", str(path), *args],
        env={**os.environ, "TAP_MAXIO_LOGLEVEL": loglevel, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def meltano(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run meltano in the project, as its user would."""
    return subprocess.run(
        [MELTANO, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def sandbox() -> t.Iterator[Sandbox]:
    """A fresh sandbox site for one test."""
    with Sandbox(sandbox_config()) as site:
        yield site


@pytest.fixture(scope="session")
def shared_sandbox() -> t.Iterator[Sandbox]:
    """One sandbox site for tests that only read."""
    with Sandbox(sandbox_config()) as site:
        yield site
