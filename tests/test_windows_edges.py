"""The window reader at its edges: crowded seconds, range ends, and an early stop."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from tap_maxio.windows import ListPage, PageRequest, WindowReader

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
