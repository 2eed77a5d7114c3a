"""Id ranges and full-table pages are read several at once, and nothing is lost."""

from __future__ import annotations

import io
import json
import logging
import random
import sys
import threading
import time
import typing as t
from contextlib import redirect_stderr, redirect_stdout

import pytest
from conftest import (
    API_KEY,
    run_tap,
    run_until_killed,
    sandbox_config,
    select_only,
    tap_config,
)

from maxio_sandbox import Sandbox
from tap_maxio.idranges import IdRanges
from tap_maxio.readers import IdCursor
from tap_maxio.retries import RetriesExhausted
from tap_maxio.tap import TapMaxio

if t.TYPE_CHECKING:
    from pathlib import Path

    from conftest import Run

EVENTS = 3000
PAGE = 50


def events_site(**overrides: t.Any) -> Sandbox:
    values: dict[str, t.Any] = {"counts": {"events": EVENTS}, "latency": 0.02, "max_in_flight": 4}
    return Sandbox(sandbox_config(**{**values, **overrides}))


def events_config(site: Sandbox, **overrides: t.Any) -> tuple[dict, dict]:
    config = tap_config(site, page_size=PAGE, **overrides)
    return config, select_only(config, {"events"})


def read_events(site: Sandbox, state: dict | None = None) -> Run:
    config, catalog = events_config(site)
    return run_tap(config, state=state, catalog=catalog)


def event_ids(run: Run) -> list[int]:
    return [r["id"] for r in run.records["events"]]


def site_ids(site: Sandbox) -> list[int]:
    return sorted(r["id"] for r in site.records("events"))


def bookmark(state: dict) -> int:
    return state["bookmarks"]["events"]["replication_key_value"]


def test_events_are_read_in_ranges_at_once_and_emitted_in_id_order():
    with events_site() as site:
        run = read_events(site)
        assert event_ids(run) == site_ids(site)
        assert bookmark(run.state) == site_ids(site)[-1]
        assert site.peak_in_flight >= 3
        assert not [r for r in site.requests if r.status == 429]
        # Ids have gaps: each range of about 4 pages may end on a short page, and
        # one request finds the newest id.
        minimum = EVENTS // PAGE + 1
        assert minimum <= len(site.requests) <= minimum * 5 / 4 + 4
        site.requests.clear()
        again = read_events(site, state=run.state)
        assert event_ids(again) == []
        # One request finds no id after the bookmark: nothing more is asked.
        assert len(site.requests) == 1


@pytest.mark.parametrize("fault", ["rate_429", "rate_5xx", "rate_reset"])
def test_no_event_lost_while_events_are_added_and_requests_fail(fault):
    with events_site(mutate_every=2, **{fault: 0.05}) as site:
        at_start = set(site_ids(site))
        first = read_events(site)
        assert [r for r in site.requests if r.status != 200], "no fault was injected"
        assert len(set(site_ids(site))) > len(at_start) + 20, "no event was added"
        assert event_ids(first) == sorted(set(event_ids(first)))
        assert at_start <= set(event_ids(first))
        assert any("max_id" in r.query for r in site.requests)
        before_second = set(site_ids(site))
        second = read_events(site, state=first.state)
        # Nothing read again; a run that finds no event after its bookmark reads
        # none, and the events added while it runs come with the next one.
        assert all(i > bookmark(first.state) for i in event_ids(second))
        assert before_second <= set(event_ids(first)) | set(event_ids(second))


def sync_until_it_fails(config: dict, catalog: dict, prepare: t.Callable) -> list[dict]:
    """Run a sync that must fail; the messages it wrote before it did."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(stdout), redirect_stderr(io.StringIO()):
        tap = TapMaxio(config=config, catalog=catalog)
        prepare(tap)
        with pytest.raises(RetriesExhausted):
            tap.sync_all()
        stdout.flush()
    stdout.seek(0)
    return [json.loads(line) for line in stdout.read().splitlines() if line.strip()]


def test_a_range_that_fails_keeps_the_bookmark_below_it():
    with events_site() as site:
        ids = site_ids(site)
        middle = ids[len(ids) // 2]

        def fail_the_middle_range(tap: TapMaxio) -> None:
            stream = tap.streams["events"]
            send = stream.send

            def send_or_fail(context: t.Any, token: t.Any, parse: t.Any) -> t.Any:
                # Not the first range, read before ranges are cut: one in the middle.
                first = token.since_id if isinstance(token, IdCursor) else 0
                if ids[0] < first <= middle <= (token.max_id or 0):
                    raise RetriesExhausted("events: HTTP 500 (gave up after 9 tries)")
                return send(context, token, parse)

            stream.send = send_or_fail  # type: ignore[method-assign]

        config, catalog = events_config(site)
        messages = sync_until_it_fails(config, catalog, fail_the_middle_range)
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        emitted = [m["record"]["id"] for m in messages if m["type"] == "RECORD"]
        assert emitted, "nothing was read below the failing range"
        assert max(emitted) < middle
        # Ranges above the failing one were read, but the bookmark stays below it.
        assert max(r["id"] for r in site.records("events")) > middle
        assert bookmark(states[-1]) < middle
        resumed = read_events(site, state=states[-1])
        assert set(emitted) | set(event_ids(resumed)) == set(ids)


def ids_until_killed(paths: dict[str, Path], kill_after: int, resume: bool) -> tuple:
    """Run the tap's CLI, kill -9 it after `kill_after` events; the ids and last STATE."""
    args = ["--config", str(paths["config"]), "--catalog", str(paths["catalog"])]
    args += ["--state", str(paths["state"])] if resume else []
    records, state = run_until_killed(args, lambda m: m["stream"] == "events", kill_after)
    return [m["record"]["id"] for m in records], state


@pytest.mark.parametrize("kill_after", [60, 1700])
def test_kill_9_mid_read_resumes_without_loss(tmp_path, kill_after):
    with events_site(latency=0.005) as site:
        config, catalog = events_config(site, api_key=API_KEY)
        paths = {name: tmp_path / f"{name}.json" for name in ("config", "catalog", "state")}
        paths["config"].write_text(json.dumps(config))
        paths["catalog"].write_text(json.dumps(catalog))
        first, state = ids_until_killed(paths, kill_after, resume=False)
        assert state is not None, "no STATE before the kill"
        assert bookmark(state) <= first[-1]
        paths["state"].write_text(json.dumps(state))
        second, _ = ids_until_killed(paths, -1, resume=True)
        assert min(second) > bookmark(state)
        assert set(first) | set(second) == set(site_ids(site))
        assert any("max_id" in r.query for r in site.requests)


PROFILES = 1000


@pytest.mark.parametrize("fault", [None, "rate_5xx"])
def test_full_table_pages_are_read_at_once_and_emitted_in_order(fault):
    faults = {fault: 0.05} if fault else {}
    counts = {"payment_profiles": PROFILES}
    with Sandbox(sandbox_config(counts=counts, latency=0.02, max_in_flight=4, **faults)) as site:
        config = tap_config(site)
        run = run_tap(config, catalog=select_only(config, {"payment_profiles"}))
        served = [r["id"] for r in site.records("payment_profiles")]
        assert [r["id"] for r in run.records["payment_profiles"]] == served
        assert site.peak_in_flight >= 3
        ok = [r for r in site.requests if r.status == 200]
        # Page 1 alone, then pages several at once: past the short page, at most
        # the workers' other requests are read for nothing.
        minimum = PROFILES // config["page_size"] + 1
        assert minimum <= len(ok) <= minimum + 3


def test_one_request_in_flight_reads_the_minimum():
    with Sandbox(sandbox_config(counts={"payment_profiles": 300, "events": 500})) as site:
        config = tap_config(site, max_concurrent_requests=1)
        run = run_tap(config, catalog=select_only(config, {"payment_profiles", "events"}))
        assert len(run.records["payment_profiles"]) == 300
        assert event_ids(run) == site_ids(site)
        assert site.peak_in_flight == 1
        profiles = [r for r in site.requests if r.path == "/payment_profiles.json"]
        assert len(profiles) == 300 // 25 + 1


class FakeIds:
    """A list of ids served page by page as `since_id`/`max_id` ask, counting what is in flight."""

    def __init__(self, ids: list[int], page_size: int, fail_at: int | None = None) -> None:
        self.ids = sorted(ids)
        self.page_size = page_size
        self.fail_at = fail_at
        self.requests = 0
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def fetch(self, after: int | None, high: int | None) -> list[dict]:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            threading.Event().wait(0.002)
            if self.fail_at is not None and after and after < self.fail_at <= (high or 0):
                raise RuntimeError("this range fails")
            low = -1 if after is None else after
            top = high if high is not None else sys.maxsize
            found = [i for i in self.ids if low < i <= top][: self.page_size]
            return [{"id": i} for i in reversed(found)]  # any order within a page
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.mark.parametrize("gap", [1, 7, 1000])
def test_ranges_read_every_id_once_in_order_whatever_the_gaps(gap):
    rng = random.Random(gap)
    ids = list(range(10, 10 + 5000 * gap, gap))
    ids = [i + rng.randrange(gap) for i in ids]
    site = FakeIds(ids, page_size=50)
    ranges = IdRanges(site.fetch, page_size=50, workers=4)
    read = [r["id"] for page in ranges.read(None, ids[3000]) for r in page]
    assert read == sorted(ids)
    assert site.peak == 4
    assert site.requests <= (len(ids) // 50 + 1) * 5 / 4 + 8


def test_pages_stop_before_a_range_that_fails():
    ids = list(range(1, 4001))
    site = FakeIds(ids, page_size=50, fail_at=2500)
    ranges = IdRanges(site.fetch, page_size=50, workers=4)
    read: list[int] = []
    with pytest.raises(RuntimeError):
        for page in ranges.read(0, 4000):
            read.extend(r["id"] for r in page)
    assert read == list(range(1, len(read) + 1))
    assert read[-1] < 2500


#: The full-table streams the sync reads by themselves, each with one page on this site.
SMALL_FULL_TABLES = {
    "features": "/features.json",
    "offers": "/offers.json",
    "reason_codes": "/reason_codes.json",
    "subscription_groups": "/subscription_groups.json",
    "metafields": "/customers/metafields.json",
}


def test_small_streams_have_their_answer_before_their_turn(caplog):
    # payment_profiles holds more than a page: read ahead whole, in page order.
    counts = {**sandbox_config().counts, "payment_profiles": 60}
    with Sandbox(sandbox_config(counts=counts, latency=0.05, max_in_flight=4)) as site:
        served: dict[str, float] = {}
        for path in SMALL_FULL_TABLES.values():
            site.before_each(path, lambda path=path: served.setdefault(path, time.time()))
        caplog.set_level(logging.INFO)
        run = run_tap(tap_config(site))
        turns = {
            r.args[0]: r.created
            for r in caplog.records
            if r.msg.startswith("Beginning sync of") and isinstance(r.args, tuple)
        }
        # Streams are read ahead two at a time, in turn order: which of them is
        # asked for before its turn depends on how long the others take.
        early = [s for s, path in SMALL_FULL_TABLES.items() if served[path] < turns[s]]
        assert early, "no small stream was asked for before its turn"
        for path in SMALL_FULL_TABLES.values():
            assert [r.path for r in site.requests].count(path) == 1
        assert [r["id"] for r in run.records["payment_profiles"]] == [
            r["id"] for r in site.records("payment_profiles")
        ]
        first = {}
        for index, message in enumerate(run.messages):
            first.setdefault((message.get("stream"), message["type"]), index)
        for stream in run.records:
            assert first[stream, "SCHEMA"] < first[stream, "RECORD"]


@pytest.mark.parametrize("in_flight", [4, 12])
def test_every_stream_shares_the_sites_connections(in_flight, caplog):
    # Each connection to Maxio costs a TLS handshake: a stream of its own each
    # (one session per stream) opened over 20 for this site. requests keeps 10
    # connections by default, and warns as it drops each one beyond.
    config = sandbox_config(latency=0.05, max_in_flight=in_flight)
    with Sandbox(config) as site:
        run = run_tap(tap_config(site, max_concurrent_requests=in_flight))
        assert len(run.records) > 20
        assert site.connections <= in_flight
    assert "Connection pool is full" not in caplog.text
