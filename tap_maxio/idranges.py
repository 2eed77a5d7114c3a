"""An ascending id cursor read in ranges, several at once, emitted in id order.

Ids only grow, and `since_id`/`max_id` bound a range by id: a range read from
its own since_id upward, always page 1 from the last id read, cannot shift
whatever the site does meanwhile. The ids from the bookmark to the newest one
found at the start are cut into ranges of a few pages each, read concurrently;
pages are yielded in id order, so a bookmark taken from the records yielded
never passes an id that was not read. The ids above the newest come last, one
page after another, as an open range.

Ids may be sparse (Maxio numbers events across sites): ranges are sized to the
density measured so far, and a range that comes back short is simply done.
"""

from __future__ import annotations

import typing as t
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Iterator

#: Page 1 of the records after id `after` (None: from the first) up to `high` (None: all).
Fetch = t.Callable[[int | None, int | None], list[dict]]


@dataclass
class _Read:
    pages: list[list[dict]]
    #: The last id read, when the range was not read to its end.
    rest: int | None
    #: Records per id over what was read (None: not measured).
    density: float | None


@dataclass(eq=False)
class _Range:
    """The ids after `after` up to `high` (None: no upper bound)."""

    after: int | None
    high: int | None
    future: Future[_Read] | None = None
    pages: deque[list[dict]] | None = None


class IdRanges:
    """Read ids upward in ranges, up to `workers` at once, yielding pages in id order."""

    def __init__(
        self, fetch: Fetch, *, page_size: int, workers: int, pages_per_range: int = 8
    ) -> None:
        """Ranges of about `pages_per_range` pages, each page fetched by `fetch`."""
        self.fetch = fetch
        self.page_size = page_size
        self.workers = max(1, workers)
        self.target = pages_per_range * page_size
        # A range denser than measured is read in pieces of at most this many pages.
        self.max_pages = 2 * pages_per_range
        # Pages read ahead of the one being emitted wait in memory: bound them.
        self.max_held = self.workers * self.target
        self.density: float | None = None

    def read(self, after: int | None, newest: int | None) -> Iterator[list[dict]]:
        """Each page's records, sorted, from the ids after `after` on.

        `newest` (the highest id at the start, or None) bounds the ranges read
        concurrently; the ids above it are read after them.
        """
        if newest is not None and (after is None or newest > after):
            ranges = deque([_Range(after, newest), _Range(newest, None)])
        else:
            ranges = deque([_Range(after, None)])
        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="ids")
        try:
            while ranges:
                self._launch(ranges, executor)
                head = ranges[0]
                if head.pages:
                    yield head.pages.popleft()
                elif head.pages is not None:  # read and emitted
                    ranges.popleft()
                else:  # the head is always launched first: wait for a range
                    running = {r.future for r in ranges if r.future is not None}
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for finished in [r for r in ranges if r.future in done]:
                        self._settle(ranges, finished)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _launch(self, ranges: deque[_Range], executor: ThreadPoolExecutor) -> None:
        """Start the earliest unread ranges, up to `workers` in flight."""
        running = sum(1 for r in ranges if r.future is not None)
        held = sum(len(p) for r in ranges for p in r.pages or ())
        while running < self.workers:
            item = next((r for r in ranges if r.future is None and r.pages is None), None)
            # Until a page has measured the density, only the first range is read;
            # the open range is read after every other, as the ids above the newest.
            if item is None or (
                item is not ranges[0]
                and (self.density is None or held >= self.max_held or item.high is None)
            ):
                return
            self._cut(ranges, item)
            # The open range goes a page at a time: each page is emitted as it comes.
            pages = 1 if item.high is None or self.density is None else self.max_pages
            item.future = executor.submit(self._read_range, item.after, item.high, pages)
            running += 1

    def _cut(self, ranges: deque[_Range], item: _Range) -> None:
        """Cut a range to the span the measured density expects to hold a few pages."""
        if not self.density or item.high is None or item.after is None:
            return
        span = max(1, round(self.target / self.density))
        if item.high - item.after > 1.5 * span:
            ranges.insert(ranges.index(item) + 1, _Range(item.after + span, item.high))
            item.high = item.after + span

    def _settle(self, ranges: deque[_Range], item: _Range) -> None:
        """Keep a finished range's pages; what it left unread comes right after it."""
        assert item.future is not None
        read = item.future.result()
        item.future = None
        item.pages = deque(read.pages)
        if read.density is not None:
            old = self.density
            self.density = read.density if old is None else (old + read.density) / 2
        if read.rest is not None:
            ranges.insert(ranges.index(item) + 1, _Range(read.rest, item.high))
            item.high = read.rest

    def _read_range(self, after: int | None, high: int | None, max_pages: int) -> _Read:
        """Up to `max_pages` pages of a range, each page 1 from the last id read."""
        pages: list[list[dict]] = []
        last = after
        for _ in range(max_pages):
            page = self.fetch(last, high)
            records = sorted(
                (r for r in page if _within(r["id"], last, high)), key=lambda r: r["id"]
            )
            pages.append(records)
            if len(page) < self.page_size or not records:
                return _Read(pages, None, _density(after, high, pages))
            last = records[-1]["id"]
            if high is not None and last >= high:
                return _Read(pages, None, _density(after, high, pages))
        return _Read(pages, last, _density(after, last, pages))


def _within(value: int, after: int | None, high: int | None) -> bool:
    return (after is None or value > after) and (high is None or value <= high)


def _density(after: int | None, end: int | None, pages: list[list[dict]]) -> float | None:
    """Records per id between `after` and `end` (None: nothing to measure it over)."""
    ids = [r["id"] for page in pages for r in page]
    start = after if after is not None else (ids[0] - 1 if ids else None)
    if start is None or end is None or end <= start:
        return None
    return max(len(ids), 1) / (end - start)


__all__ = ["Fetch", "IdRanges"]
