"""Drift-free reading of a date range in time windows.

The date is `updated_at`, or an immutable one (`created_at`) for a backfill:
rows never leave a window of their creation time, but the rules are the same.
Maxio lists page by number, so a row that changes during a sync shifts every
later row up one place and the first row of the next page is never read. Here
no request asks for page 2 of a set that can shrink under it unseen:

* a window that fits in one page is read with one request, an atomic snapshot;
* on an endpoint that sorts by the date, a full page is followed by a
  keyset restart from the last second it reached (duplicates dropped);
* on an endpoint that counts every page's rows of the request (a total),
  a window of past rows is read by page numbers, several at once, and kept
  only if every page reports one count: rows can leave a past window (they
  change) but never enter it, so one count means one unchanged set. The
  sync's starting second, which rows can still enter, and the one before it
  are read on their own;
* elsewhere a full window is split in two and each half read again;
* a single second holding more than a page is paged through in passes until
  two passes agree, because rows can only leave a past second, never enter it.

Windows share their boundary second, so that a timestamp with a fraction of a
second is never between two windows; the duplicates this reads are dropped when
windows are emitted, in time order.

A record without a timestamp (Maxio's own examples have some) belongs to the
window that returned it: it is emitted there, first, and counted in `unstamped`.
"""

from __future__ import annotations

import math
import queue
import threading
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

if t.TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator

SECOND = timedelta(seconds=1)
#: Passes over one crowded second before giving up on two agreeing.
MAX_PASSES = 10


@dataclass(frozen=True)
class Window:
    """An inclusive range of whole seconds, in UTC."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        """Length of the window in seconds (0 for a single second)."""
        return (self.end - self.start).total_seconds()

    def pieces(self, count: int) -> list[Window]:
        """Cut the window into up to `count` windows sharing their boundaries."""
        count = max(1, min(count, int(self.seconds)))
        step = self.seconds / count
        cuts = [self.start + timedelta(seconds=round(step * i)) for i in range(count)]
        return [Window(a, b) for a, b in zip(cuts, [*cuts[1:], self.end], strict=False)]

    def halves(self) -> list[Window]:
        """Two windows to read instead of this one: its halves, or its two seconds."""
        if self.seconds >= 2:
            return self.pieces(2)
        return [Window(self.start, self.start), Window(self.end, self.end)]


@dataclass(frozen=True)
class PageRequest:
    """One request of a window read.

    `date_field` is the date the window filters on; `tie_order` asks for the
    endpoint's stable order among the rows of one crowded second.
    """

    window: Window
    page: int = 1
    tie_order: bool = False
    date_field: str = "updated_at"


class Page(t.Protocol):
    """One response: its size and dates now, its records when they are emitted.

    Records waiting behind an unfinished earlier window stay as response bytes,
    several times smaller than parsed records: memory does not grow with the
    read-ahead.
    """

    #: The rows of the whole request, all pages, where the endpoint counts them.
    total: int | None

    def __len__(self) -> int:
        """The number of records."""
        ...

    def stamps(self) -> list[datetime | None]:
        """Each record's timestamp (None: the record has none)."""
        ...

    def records(self) -> list[dict]:
        """The records themselves."""
        ...


class ListPage:
    """A page whose records are already parsed."""

    total: int | None = None

    def __init__(self, records: list[dict], timestamp: Callable[[dict], datetime | None]) -> None:
        """Hold the records, dated by `timestamp`."""
        self._records = records
        self._timestamp = timestamp

    def __len__(self) -> int:
        """The number of records."""
        return len(self._records)

    def stamps(self) -> list[datetime | None]:
        """Each record's timestamp (None: the record has none)."""
        return [self._timestamp(r) for r in self._records]

    def records(self) -> list[dict]:
        """The records."""
        return self._records


Fetch = t.Callable[[PageRequest], "Page | list[dict]"]


@dataclass
class _Result:
    records: Page
    #: Where the rest of the window starts, when it was not read to its end.
    rest_from: datetime | None = None
    #: Seconds the records were read from, for the density estimate (None: skip).
    span: float | None = None
    #: The window must be read again in these pieces instead.
    split: list[Window] = field(default_factory=list)
    #: Records the window is taken to hold, when not all were read.
    count: int = -1

    def __post_init__(self) -> None:
        if self.count < 0:
            self.count = len(self.records)


@dataclass(eq=False)
class _Slot:
    window: Window
    future: Future[_Result] | None = None
    records: Page | None = None


#: What the coordinator passes on after the last window.
_DONE = object()


class _Run:
    """What one read shares between the caller and its coordinator thread."""

    def __init__(self, window: Window) -> None:
        self.slots: deque[_Slot] = deque([_Slot(window)])
        #: Windows in time order, then _DONE or the exception that ended the read.
        self.ready: queue.SimpleQueue[object] = queue.SimpleQueue()
        #: Records passed on that the caller has not taken yet.
        self.waiting = 0
        self.stopped = False
        #: The tail was shared among idle workers: once a read, so its cost is known.
        self.shared = False
        self._changed = threading.Condition()
        self._news = False

    def wake(self, *_: object) -> None:
        """A request finished, the caller took a window, or the read stops."""
        with self._changed:
            self._news = True
            self._changed.notify()

    def wait(self) -> None:
        """Sleep until something changes."""
        with self._changed:
            self._changed.wait_for(lambda: self._news)
            self._news = False

    def hand_over(self, window: Window, page: Page) -> None:
        """Pass a finished window on to the caller."""
        with self._changed:
            self.waiting += len(page)
        self.ready.put((window, page))

    def handed_over(self, count: int) -> None:
        """The caller took a window of `count` records: read-ahead may go on."""
        with self._changed:
            self.waiting -= count
        self.wake()

    def stop(self) -> None:
        """End the read: no new requests, and those in flight are let finish."""
        self.stopped = True
        self.wake()


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO-8601 timestamp with offset (Python 3.10 lacks 'Z')."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def utc_iso(value: datetime) -> str:
    """The one canonical form of timestamps sent and bookmarked: UTC with offset."""
    return value.astimezone(timezone.utc).isoformat()


def to_utc_second(value: datetime) -> datetime:
    """Truncate an aware datetime to its whole second in UTC."""
    return value.astimezone(timezone.utc).replace(microsecond=0)


class _Emitted:
    """The keys emitted in the last second reached, and those of undated records.

    Windows share their boundary second, so a record can come twice in a row;
    undated records cannot be told apart by second, so theirs are kept all read.
    """

    def __init__(self) -> None:
        self.second: datetime | None = None
        self.keys: set[Hashable] = set()
        self.undated: set[Hashable] = set()

    def first(self, stamp: datetime | None, key: Hashable) -> bool:
        """Whether a record is emitted for the first time (and note that it is)."""
        if stamp is None:
            seen = self.undated
        else:
            second = to_utc_second(stamp)
            if second != self.second:
                self.second, self.keys = second, set()
            seen = self.keys
        if key in seen:
            return False
        seen.add(key)
        return True


class WindowReader:
    """Read `[start, end]` in windows, yielding each window's records in order."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        page_size: int,
        keyset: bool,
        key: Callable[[dict], Hashable],
        timestamp: Callable[[dict], datetime | None],
        workers: int = 1,
        pages_per_window: int = 8,
        date_field: str = "updated_at",
        counted: bool = False,
    ) -> None:
        """Set how pages are fetched, and how records are keyed and dated.

        `counted`: each page reports the rows of the whole request (`Page.total`).
        """
        self.fetch = fetch
        self.date_field = date_field
        self.page_size = page_size
        self.keyset = keyset
        self.counted = counted and not keyset
        self.key = key
        self.timestamp = timestamp
        self.workers = max(1, workers)
        # How many records a window should hold: several pages where a keyset
        # restart or page numbers read on, under one page where an overflow
        # costs a re-read.
        many = keyset or self.counted
        self.target = page_size * pages_per_window if many else page_size // 2
        self.max_buffered = 6 * self.workers * page_size
        self.density: float | None = None  # records per second
        #: The end of the range being read: the second rows can still enter.
        self._end = datetime.min.replace(tzinfo=timezone.utc)
        self.requests = 0
        #: Records emitted without a timestamp.
        self.unstamped = 0
        self._count_lock = threading.Lock()

    def read(self, start: datetime, end: datetime) -> Iterator[tuple[Window, list[dict]]]:
        """Yield (window, records sorted by time) for consecutive windows.

        A coordinator thread settles each finished request and starts the next
        at once: were that left to the caller, every keyset restart would wait
        while the caller emits the records it has already been given.
        """
        self._end = to_utc_second(end)
        run = _Run(Window(to_utc_second(start), self._end))
        coordinator = threading.Thread(
            target=self._coordinate, args=(run,), name="windows", daemon=True
        )
        coordinator.start()
        emitted = _Emitted()
        try:
            while (item := run.ready.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                window, page = t.cast("tuple[Window, Page]", item)
                run.handed_over(len(page))
                dated = [(self.timestamp(record), record) for record in page.records()]
                dated.sort(key=lambda d: d[0] or window.start)
                records = [r for stamp, r in dated if emitted.first(stamp, self.key(r))]
                self.unstamped = len(emitted.undated)
                yield window, records
        finally:
            run.stop()
            coordinator.join()

    def _coordinate(self, run: _Run) -> None:
        """Keep up to `workers` requests in flight; pass on windows in time order."""
        slots = run.slots
        executor = ThreadPoolExecutor(self.workers, thread_name_prefix="window")
        try:
            while slots and not run.stopped:
                self._launch(run, executor)
                run.wait()
                for slot in [s for s in slots if s.future is not None and s.future.done()]:
                    self._settle(slots, slot)
                while slots and slots[0].records is not None:
                    head = slots.popleft()
                    assert head.records is not None
                    run.hand_over(head.window, head.records)
            run.ready.put(_DONE)
        except BaseException as exc:  # raised again in the caller's thread
            run.ready.put(exc)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _launch(self, run: _Run, executor: ThreadPoolExecutor) -> None:
        """Start the earliest unread windows, each cut to the expected density."""
        slots = run.slots
        running = sum(1 for s in slots if s.future is not None)
        # Records read ahead of the caller wait in memory: bound them. Past the
        # bound only the head may start, or it could never finish, and only once
        # the caller has taken every window handed over: else a slow caller, or a
        # head slow to answer, would let the whole range be read ahead.
        buffered = run.waiting + sum(len(s.records) for s in slots if s.records is not None)
        index = 0
        while index < len(slots) and running < self.workers:
            slot = slots[index]
            index += 1
            if slot.future is not None or slot.records is not None:
                continue
            if buffered >= self.max_buffered and (slot is not slots[0] or run.waiting > 0):
                break
            span = self.target / self.density if self.density else math.inf
            if slot.window.seconds > 1.5 * span:
                # Carve off one window of the expected size; the rest is carved
                # when its turn comes, with a fresher estimate.
                cut = slot.window.start + timedelta(seconds=max(1, round(span)))
                slots.insert(index, _Slot(Window(cut, slot.window.end)))
                slot.window = Window(slot.window.start, cut)
            elif self.density and index == len(slots) and not run.shared:
                pieces = self._share(slot, self.workers - running)
                run.shared = bool(pieces)
                for offset, piece in enumerate(pieces):
                    slots.insert(index + offset, _Slot(piece))
            slot.future = executor.submit(self._read_window, slot.window)
            slot.future.add_done_callback(run.wake)
            running += 1

    def _share(self, slot: _Slot, idle: int) -> list[Window]:
        """Cut the last unread window for idle workers; return the pieces after the first.

        A keyset read of it would go one request at a time, so it is shared when
        it is expected to hold a page or more. Rows crowd towards the present, and
        a first page from the sparse past would otherwise keep a long history on
        one worker. Each piece ends on a short page, one request more than its
        whole pages: at most three pieces, and one more per ten pages expected,
        shared once a read, keep that within two requests and a tenth.
        """
        assert self.density is not None
        pages = self.density * slot.window.seconds / self.page_size
        shares = min(idle, 3 + int(pages / 10))
        if shares < 2 or pages < 1:
            return []
        first, *rest = slot.window.pieces(shares)
        slot.window = first
        return rest

    def _settle(self, slots: deque[_Slot], slot: _Slot) -> None:
        """Take a finished window read: keep its records, or queue what is left."""
        assert slot.future is not None
        result = slot.future.result()
        slot.future = None
        window = slot.window
        index = slots.index(slot)
        if result.span is not None:
            sample = result.count / max(result.span, 1.0)
            self.density = sample if self.density is None else (self.density + sample) / 2
        if result.split:
            del slots[index]
            for offset, piece in enumerate(result.split):
                slots.insert(index + offset, _Slot(piece))
            return
        slot.records = result.records
        if result.rest_from is not None:
            slot.window = Window(window.start, result.rest_from)
            slots.insert(index + 1, _Slot(Window(result.rest_from, window.end)))

    def _read_window(self, window: Window) -> _Result:
        """Read one window with one request, or say how the rest must be read."""
        if window.seconds == 0:
            return _Result(self._read_second(window))
        records = self._fetch(PageRequest(window, date_field=self.date_field))
        if len(records) < self.page_size:
            return _Result(records, span=window.seconds)
        stamps = [to_utc_second(stamp) for stamp in records.stamps() if stamp is not None]
        if not self.keyset or not stamps:
            return self._overflow(window, records)
        reached = max(stamps)
        if reached > window.start:
            # The rest restarts at the second reached: its other rows come again.
            span = (reached - max(min(stamps), window.start)).total_seconds()
            return _Result(records, rest_from=reached, span=span)
        crowded = self._read_second(Window(reached, reached))
        if reached >= window.end:
            return _Result(crowded)
        return _Result(crowded, rest_from=reached + SECOND)

    def _overflow(self, window: Window, first: Page) -> _Result:
        """A full window that cannot restart: by page numbers if counted, else in halves.

        A counted window of past rows is read in passes until one saw a single count.
        The rows that left during a pass are kept: the next run reads them again
        where they went. Too many to hold, or changing through every pass, the
        window is split in two instead. A window up to the range's end is first
        split so that its last second, which rows can still enter, and the one
        before it are read whole, and no fraction of a second falls between.
        """
        empty = ListPage([], self.timestamp)
        if not self.counted or first.total is None:
            # At least a page in the window (and, undated, no second to restart
            # from): guess twice that, to split sooner.
            return _Result(
                empty, span=window.seconds, split=window.halves(), count=2 * self.page_size
            )
        if window.end >= self._end:
            last = window.end - SECOND
            pieces = [Window(window.start, last), *Window(last, window.end).halves()]
            split = pieces if window.seconds >= 2 else window.halves()
            return _Result(empty, span=window.seconds, split=split, count=first.total or 0)
        found: dict[Hashable, dict] = {}
        for _ in range(MAX_PASSES):
            total = first.total or 0
            if total > 2 * self.target:
                break
            numbers = range(2, -(-total // self.page_size) + 1)
            requests = [PageRequest(window, n, date_field=self.date_field) for n in numbers]
            with ThreadPoolExecutor(self.workers, thread_name_prefix="window-pages") as pages:
                rest = list(pages.map(self._fetch, requests))
            for page in (first, *rest):
                found.update((self.key(r), r) for r in page.records())
            if all(page.total == total for page in rest):
                return _Result(ListPage(list(found.values()), self.timestamp), span=window.seconds)
            first = self._fetch(PageRequest(window, date_field=self.date_field))
        return _Result(empty, span=window.seconds, split=window.halves(), count=first.total or 0)

    def _read_second(self, window: Window) -> Page:
        """Read one second, paging in passes until two passes see the same rows.

        Rows can leave a past second (they change) but never enter it, and a
        row can only be skipped when a row read before it leaves: that row is
        then missing from the next pass, so equal passes prove a complete one.
        """
        found: dict[Hashable, dict] = {}
        previous: set[Hashable] | None = None
        for _ in range(MAX_PASSES):
            seen: dict[Hashable, dict] = {}
            page = 1
            while True:
                request = PageRequest(window, page, tie_order=True, date_field=self.date_field)
                records = self._fetch(request)
                seen.update((self.key(r), r) for r in records.records())
                if len(records) < self.page_size:
                    break
                page += 1
            found.update(seen)
            if previous is not None and previous == set(seen):
                break
            if previous is None and page == 1:
                break  # one short page is itself a snapshot
            previous = set(seen)
        return ListPage(list(found.values()), self.timestamp)

    def _fetch(self, request: PageRequest) -> Page:
        with self._count_lock:
            self.requests += 1
        page = self.fetch(request)
        return ListPage(page, self.timestamp) if isinstance(page, list) else page
