"""The window reader at its edges: crowded seconds, range ends, and an early stop."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from tap_maxio.windows import (
    SECOND,
    ListPage,
    PageRequest,
    WindowReader,
    _Emitted,
    parse_timestamp,
    to_utc_second,
    utc_iso,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = T0 + timedelta(days=1)
CROWDED = T0 + timedelta(hours=5)


def stamp(record: dict) -> datetime:
    return record["ts"]


class Site:
    """A list endpoint over `rows` (id -> timestamp), ordered by time then id.

    `leave` maps a request number to the ids that change just after it: they move
    past the end of the range, as rows updated during a sync do.
    """

    def __init__(self, rows: dict[int, datetime], page_size: int, leave=None) -> None:
        self.rows = dict(rows)
        self.page_size = page_size
        self.leave = leave or {}
        self.requests: list[PageRequest] = []

    def fetch(self, request: PageRequest) -> ListPage:
        self.requests.append(request)
        window = request.window
        hits = sorted((ts, k) for k, ts in self.rows.items() if window.start <= ts <= window.end)
        first = (request.page - 1) * self.page_size
        page = [{"id": k, "ts": ts} for ts, k in hits[first : first + self.page_size]]
        for key in self.leave.get(len(self.requests), ()):
            self.rows[key] = END + timedelta(hours=1)
        return ListPage(page, stamp)  # a Page, as the tap's lazy pages are

    def reader(self, *, keyset: bool = True, workers: int = 1) -> WindowReader:
        return WindowReader(
            self.fetch,
            page_size=self.page_size,
            keyset=keyset,
            key=lambda r: r["id"],
            timestamp=stamp,
            workers=workers,
        )


def spread(count: int, *, every: int = 37) -> dict[int, datetime]:
    return {i: T0 + timedelta(seconds=every * i) for i in range(count)}


@pytest.mark.parametrize("keyset", [True, False])
def test_each_window_yielded_holds_its_records_and_the_windows_tile_the_range(keyset):
    """The tap bookmarks each window's end: it must be where its records stop."""
    rows = spread(600) | {1000 + i: CROWDED for i in range(45)}
    site = Site(rows, page_size=20)
    windows = list(site.reader(keyset=keyset, workers=4).read(T0, END))
    assert windows[0][0].start == T0
    assert windows[-1][0].end == END
    for (before, _), (after, _) in itertools.pairwise(windows):
        assert after.start - before.end in {timedelta(0), SECOND}, (before, after)
    for window, records in windows:
        assert all(window.start <= r["ts"] <= window.end for r in records), window
    emitted = [r["id"] for _, records in windows for r in records]
    assert sorted(emitted) == sorted(rows)


def test_a_crowded_second_is_paged_in_tie_order_until_two_passes_agree():
    site = Site({i: CROWDED for i in range(45)}, page_size=20)
    reader = site.reader()
    emitted = [r["id"] for _, records in reader.read(CROWDED, CROWDED) for r in records]
    assert sorted(emitted) == list(range(45))
    # Two passes of three pages, each in the endpoint's stable order among ties.
    assert [(r.page, r.tie_order) for r in site.requests] == [(p, True) for p in (1, 2, 3) * 2]
    assert reader.requests == 6


def test_a_second_that_fits_one_page_is_read_once():
    site = Site({i: CROWDED for i in range(15)}, page_size=20)
    windows = list(site.reader().read(CROWDED, CROWDED))
    assert len(windows[0][1]) == 15
    assert len(site.requests) == 1


def test_rows_that_stay_are_found_however_many_passes_it_takes():
    """Row 10 never changes, yet rows leaving before it hide it from two passes."""
    leave = {2: [0], 3: [1, 2, 3, 4], 4: [5]}
    site = Site({i: CROWDED for i in range(15)}, page_size=5, leave=leave)
    emitted = {r["id"] for _, records in site.reader().read(CROWDED, CROWDED) for r in records}
    assert set(range(6, 15)) <= emitted
    assert 10 in emitted


@pytest.mark.parametrize("where", [T0, END], ids=["at the start", "at the end"])
def test_a_crowded_second_at_either_end_of_the_range(where):
    rows = spread(100, every=600) | {1000 + i: where for i in range(45)}
    site = Site(rows, page_size=20)
    emitted = [r["id"] for _, records in site.reader().read(T0, END) for r in records]
    assert sorted(emitted) == sorted(rows)
    assert all(r.window.start <= r.window.end for r in site.requests), "an inverted range"


def test_an_abandoned_read_sends_no_more_requests():
    """When emitting fails, the reader stops rather than read the rest of the range."""
    site = Site(spread(2000), page_size=20)
    windows = site.reader().read(T0, END)
    next(windows)
    windows.close()
    sent = len(site.requests)
    time.sleep(0.1)
    assert len(site.requests) == sent < 20


def test_read_ahead_waits_for_a_slow_caller():
    """Pages read ahead wait in memory: their number is bounded, not the range's."""
    site = Site(spread(2000), page_size=20)
    reader = site.reader(workers=2)
    windows = reader.read(T0, END)
    next(windows)
    time.sleep(0.3)  # the caller emitting
    ahead = len(site.requests) * site.page_size
    assert ahead <= reader.max_buffered + 4 * site.page_size
    assert len([r for _, records in windows for r in records]) > 1900


def test_the_reader_sleeps_while_requests_are_in_flight():
    def slow(request):
        time.sleep(0.1)
        return site.fetch(request)

    site = Site(spread(100, every=600), page_size=20)
    reader = WindowReader(
        slow, page_size=20, keyset=True, key=lambda r: r["id"], timestamp=stamp
    )  # fmt: skip
    cpu = time.process_time()
    emitted = [r for _, records in reader.read(T0, END) for r in records]
    assert len(emitted) == 100
    assert len(site.requests) >= 5
    assert time.process_time() - cpu < 0.3, "a thread spun while waiting"


def test_read_ahead_waits_for_a_head_slow_to_answer():
    """A request of the earliest window that hangs, or retries for minutes, does not
    let the other workers read the rest of the range into memory."""
    site = Site(spread(2000), page_size=20)
    answer = threading.Event()

    def fetch(request):
        if len(site.requests) == 1:  # the head of the range once the first page is in
            site.requests.append(request)
            answer.wait(5)
            site.requests.pop()
        return site.fetch(request)

    reader = WindowReader(
        fetch, page_size=20, keyset=True, key=lambda r: r["id"], timestamp=stamp, workers=4
    )  # fmt: skip
    windows = reader.read(T0, END)
    first = next(windows)[1]
    time.sleep(0.3)
    ahead = len(site.requests) * site.page_size
    answer.set()
    rest = [r for _, records in windows for r in records]
    # The bound, plus a page for each request in flight and the one taken.
    assert ahead <= reader.max_buffered + (reader.workers + 1) * site.page_size
    assert len(first) + len(rest) == 2000


def test_an_undated_record_is_emitted_once_first_in_its_window_and_counted():
    rows = spread(50)
    site = Site(rows, page_size=10)

    def fetch(request: PageRequest) -> ListPage:
        # The server returns it in every window: it is dated, but not shown.
        records = site.fetch(request).records()
        return ListPage([{"id": "undated", "ts": None}, *records], stamp)

    reader = WindowReader(fetch, page_size=10, keyset=False, key=lambda r: r["id"], timestamp=stamp)
    windows = list(reader.read(T0, END))
    emitted = [r["id"] for _, records in windows for r in records]
    assert emitted.count("undated") == 1
    assert windows[0][1][0]["id"] == "undated"
    assert sorted(i for i in emitted if i != "undated") == sorted(rows)
    assert reader.unstamped == 1


def test_a_record_is_emitted_once_per_second_it_is_dated():
    emitted = _Emitted()
    assert emitted.first(T0, 1)
    assert emitted.first(T0, 2)
    # The next window shares the boundary second: its copies are dropped.
    assert not emitted.first(T0 + timedelta(microseconds=500), 1)
    assert not emitted.first(T0, 2)
    # Updated into a later second, it is a new version.
    assert emitted.first(T0 + SECOND, 1)
    assert emitted.first(None, "undated")
    assert not emitted.first(None, "undated")
    assert emitted.first(T0 + SECOND, "undated"), "dated and undated keys are kept apart"


def test_timestamps_are_read_in_any_offset_and_written_in_utc():
    utc = datetime(2024, 3, 10, 6, 59, 59, tzinfo=timezone.utc)
    assert parse_timestamp("2024-03-10T06:59:59Z") == utc
    assert parse_timestamp("2024-03-10T01:59:59-05:00") == utc
    naive = parse_timestamp("2024-03-10T06:59:59")
    assert naive == utc
    assert naive.tzinfo is timezone.utc
    eastern = datetime(2024, 3, 10, 1, 59, 59, 250000, tzinfo=timezone(timedelta(hours=-5)))
    assert utc_iso(eastern) == "2024-03-10T06:59:59.250000+00:00"


def test_bounds_and_bookmarks_are_utc_whatever_the_machines_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        eastern = datetime(2024, 3, 10, 1, 59, 59, 250000, tzinfo=timezone(timedelta(hours=-5)))
        assert utc_iso(eastern) == "2024-03-10T06:59:59.250000+00:00"
        assert to_utc_second(eastern) == datetime(2024, 3, 10, 6, 59, 59, tzinfo=timezone.utc)
        assert to_utc_second(eastern).utcoffset() == timedelta(0)
    finally:
        monkeypatch.undo()
        time.tzset()
