"""One reader per replication mode, chosen once, when a stream is declared.

A reader is handed its stream as a `Host`: the function that sends one request
and parses its response, the page size, and where the stream keeps its
bookmark. It never imports the stream class; the stream owns state.
"""

from __future__ import annotations

import itertools
import time
import typing as t
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial

from typing_extensions import override

from tap_maxio.idranges import IdRanges
from tap_maxio.windows import (
    PageRequest,
    Window,
    WindowReader,
    parse_timestamp,
    to_utc_second,
    utc_iso,
)

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator, Sequence

    import requests
    from singer_sdk.helpers.types import Context

    from tap_maxio.declaration import StreamSpec
    from tap_maxio.windows import Page

_T = t.TypeVar("_T")
#: The earliest a site can hold data; the first sync without start_date reads from it.
EPOCH = datetime(2005, 1, 1, tzinfo=timezone.utc)
#: Seconds between two progress lines of one stream.
PROGRESS_EVERY = 5.0
#: State key of an unfinished backfill: the date it has read up to, in UTC.
BACKFILL = "backfill_reached"
#: State key of a backfill read by pages: the pages of its window emitted.
BACKFILL_PAGES = "backfill_pages"
#: The date field of incremental windows.
UPDATED_AT = "updated_at"


@dataclass(frozen=True)
class IdCursor:
    """The token of an id-cursor request: ids from `since_id` (up to `max_id`).

    `newest` asks for the one highest id from `since_id` on instead (newest first).
    """

    since_id: int
    max_id: int | None = None
    page: int = 1
    newest: bool = False


class Host(t.Protocol):
    """What a reader needs of its stream."""

    @property
    def name(self) -> str:
        """The stream's name."""
        ...

    @property
    def logger(self) -> logging.Logger:
        """Where progress is told."""
        ...

    @property
    def spec(self) -> StreamSpec:
        """The stream's declaration."""
        ...

    @property
    def primary_keys(self) -> Sequence[str]:
        """The fields that key a record."""
        ...

    @property
    def page_size(self) -> int:
        """Records in a full page."""
        ...

    def send(
        self, context: Context | None, token: t.Any, parse: Callable[[requests.Response], _T]
    ) -> _T:
        """Send one request and parse its response, retried as one step."""
        ...

    def page_records(self, response: requests.Response) -> list[dict]:
        """A response's records (parsed once)."""
        ...

    def page_stamps(self, response: requests.Response, field: str = UPDATED_AT) -> Page:
        """A response's timestamps (of `field`) now, its records when they are emitted."""
        ...

    def bookmark(self, context: Context | None) -> t.Any:
        """The bookmark the read starts from (None on a first sync)."""
        ...

    def commit(self, context: Context | None, bookmark: t.Any = None) -> None:
        """Write STATE, moving the bookmark to `bookmark` first if one is given."""
        ...

    def get_context_state(self, context: Context | None) -> dict:
        """The stream's state (read only: commit and remember change it)."""
        ...

    def remember(self, context: Context | None, key: str, value: t.Any) -> None:
        """Keep a value in the stream's state (None: drop it), and write STATE."""
        ...

    def finish(self, context: Context | None) -> None:
        """The context is read whole: settle its state and write it."""
        ...

    @property
    def sync_started_at(self) -> datetime:
        """The fixed upper bound of every window of this sync."""
        ...

    @property
    def workers(self) -> int:
        """Requests the stream may have in flight."""
        ...


class Reader:
    """How one replication mode reads a stream."""

    def __init__(self, host: Host) -> None:
        """Read for `host`."""
        self.host = host

    def read(self, context: Context | None) -> Iterator[dict]:
        """The stream's records for one context."""
        raise NotImplementedError


class FullTable(Reader):
    """Every page, in page order: page 1, then the next ones several at once."""

    @override
    def read(self, context: Context | None) -> Iterator[dict]:
        """Page 1; if it is full, the pages after it until a short one."""
        host = self.host
        # A row added during the read shifts the later pages of a newest-first
        # list down: read one after the other, it comes twice; a later page
        # answered first could let one be skipped.
        workers = 1 if host.spec.newest_first else host.workers
        for records in in_page_order(partial(self.page, context), host.page_size, workers):
            yield from records

    def page(self, context: Context | None, number: int) -> list[dict]:
        """The records of one page (the page number is ignored on an unpaged list)."""
        return self.host.send(context, number, self.host.page_records)


def in_page_order(
    page: Callable[[int], list[dict]], page_size: int, workers: int, first: int = 1
) -> Iterator[list[dict]]:
    """Page `first`; if it is full, the next ones, `workers` in flight, in order until a short one.

    Rows shift between the requests of a page-numbered list however they are
    timed; concurrent pages are answered closer together than serial ones.
    The pages past the end that are already asked for when the short page
    comes are read for nothing: at most `workers - 1` of them.
    """
    records = page(first)
    yield records
    if len(records) < page_size:
        return
    numbers = itertools.count(first + 1)
    with ThreadPoolExecutor(workers, thread_name_prefix="pages") as executor:
        pending = deque(executor.submit(page, next(numbers)) for _ in range(workers))
        try:
            while True:
                records = pending.popleft().result()
                full = len(records) >= page_size
                if full:
                    pending.append(executor.submit(page, next(numbers)))
                yield records
                if not full:
                    return
        finally:
            for future in pending:
                future.cancel()


class Ids(Reader):
    """An id cursor in ascending order: always page 1 from the last id, nothing shifts."""

    @override
    def read(self, context: Context | None) -> Iterator[dict]:
        """Ids upward from the bookmark; STATE after each page."""
        count = 0
        for records in self.pages(context, self.start(context)):
            yield from records
            count += len(records)
        self.host.finish(context)
        self.host.logger.info("%s: %d records", self.host.name, count)

    def start(self, context: Context | None) -> int | None:
        """The last id read (without one, the SDK may offer start_date: ignored)."""
        bookmark = self.host.bookmark(context)
        return bookmark if isinstance(bookmark, int) else None

    def since(self, last: int | None) -> int:
        """The since_id that asks for the ids after `last`."""
        if last is None:
            return 0
        return last + 1 if self.host.spec.since_id == "inclusive" else last

    def pages(self, context: Context | None, last: int | None) -> Iterator[list[dict]]:
        """Each page's new records, in id order; STATE after each.

        Where the list takes `max_id`, the ids up to the newest one at the start
        are read in ranges, several at once (see idranges.py); a still list costs
        that one request.
        """
        host = self.host
        newest = None
        if host.spec.id_ranges:
            newest = self.newest(context, last)
            if newest is None:
                return  # no id after the last one: an id added from now on is read next run
        ranges = IdRanges(
            lambda after, high: host.send(
                context, IdCursor(self.since(after), high), host.page_records
            ),
            page_size=host.page_size,
            workers=host.workers,
        )
        for records in ranges.read(last, newest):
            yield records
            host.commit(context)

    def newest(self, context: Context | None, last: int | None) -> int | None:
        """The highest id after `last`, with one request (None: there is none)."""
        page = self.host.send(context, self.first(last), self.host.page_records)
        return max((r["id"] for r in page), default=None)

    def first(self, last: int | None) -> IdCursor:
        """The read's first request: the newest id where ids are read in ranges, else page 1."""
        return IdCursor(self.since(last), newest=self.host.spec.id_ranges)


class IdsInAnyOrder(Ids):
    """An id cursor over pages in no documented order (usages).

    A full first page fixes `max_id` at its highest id: ids only grow, so the set
    up to it no longer changes, its first page is the one already read, and its
    later pages cannot shift. The ids above it are read the same way next. The
    bookmark moves only when every id is read.
    """

    @override
    def pages(self, context: Context | None, last: int | None) -> Iterator[list[dict]]:
        """Each set of ids up to a fixed max_id, until a short first page."""
        host = self.host
        highest = last
        while True:
            since = self.since(last)
            page = host.send(context, IdCursor(since), host.page_records)
            seen = {r["id"] for r in page}
            yield page
            if len(page) < host.page_size:
                break
            highest = last = max(seen)
            yield from self.rest(context, IdCursor(since, max_id=last), seen)
        highest = max([i for i in (highest, *seen) if i is not None], default=None)
        if highest is not None:
            host.commit(context, highest)

    def rest(self, context: Context | None, cursor: IdCursor, seen: set) -> Iterator[list[dict]]:
        """Pages 2 and on of a bounded set, each record once."""
        host = self.host
        number = 2
        while True:
            token = IdCursor(cursor.since_id, cursor.max_id, number)
            page = host.send(context, token, host.page_records)
            yield [r for r in page if r["id"] not in seen]
            seen.update(r["id"] for r in page)
            if len(page) < host.page_size:
                return
            number += 1


class UpdatedAt(Reader):
    """[bookmark, sync start] in drift-free windows (see windows.py), STATE after each.

    A list declared with a `backfill` is read on its first sync, without
    start_date, in windows of an immutable date instead (see `backfill_span`).
    """

    def start(self, context: Context | None) -> datetime:
        """Where the read starts: the bookmark, start_date, or the earliest possible."""
        bookmark = self.host.bookmark(context)
        return parse_timestamp(bookmark) if bookmark else EPOCH

    def timestamp(self, record: dict, field: str = UPDATED_AT) -> datetime | None:
        """A record's date (None: it has none)."""
        value = record.get(field)
        return parse_timestamp(value) if value else None

    @override
    def read(self, context: Context | None) -> Iterator[dict]:
        """The backfill, if one is due or unfinished; then updated_at windows."""
        host = self.host
        backfill, end = host.spec.backfill, host.sync_started_at
        span = self.backfill_span(context)
        if backfill is not None and span is not None:
            reached, until = span
            read = self.pages if backfill.read == "pages" else self.windows
            yield from read(context, backfill.date_field, reached, until)
            host.remember(context, BACKFILL, None)
            if until >= end:
                return
        yield from self.windows(context, UPDATED_AT, self.start(context), end)

    def backfill_span(self, context: Context | None) -> tuple[datetime, datetime] | None:
        """The range a backfill has left to read (None: none is due).

        One is due on a first sync without start_date, and goes on until it is
        read whole. Before any record, its first run sets the bookmark to its
        upper bound, and the backfill reads up to that bound: a row updated or
        created once it began is read from there by the updated_at windows.
        """
        host = self.host
        reached, bookmark = host.get_context_state(context).get(BACKFILL), host.bookmark(context)
        if host.spec.backfill is None or (reached is None and bookmark):
            return None
        if reached is None:
            reached = utc_iso(EPOCH)
            host.remember(context, BACKFILL, reached)
        if not bookmark:
            bookmark = utc_iso(host.sync_started_at)
            host.commit(context, bookmark)
        return parse_timestamp(reached), parse_timestamp(bookmark)

    def pages(
        self, context: Context | None, field: str, start: datetime, end: datetime
    ) -> Iterator[dict]:
        """One window of an immutable date, by page numbers, in an order no change alters.

        No row enters or leaves the window, none moves within it: its pages
        cannot shift, are read several at once, and a run killed midway resumes
        after the last page it emitted (`backfill_pages`).
        """
        host = self.host
        window = Window(to_utc_second(start), to_utc_second(end))

        def page(number: int) -> list[dict]:
            request = PageRequest(window, number, date_field=field)
            return host.send(context, request, host.page_records)

        done: int = host.get_context_state(context).get(BACKFILL_PAGES, 0)
        pages = in_page_order(page, host.page_size, host.workers, first=done + 1)
        count = 0
        for number, records in enumerate(pages, done + 1):
            yield from records
            count += len(records)
            host.remember(context, BACKFILL_PAGES, number)
        host.remember(context, BACKFILL_PAGES, None)
        host.logger.info("%s: %d records by %s, in page order", host.name, count, field)

    def windows(
        self, context: Context | None, field: str, start: datetime, end: datetime
    ) -> Iterator[dict]:
        """Windows of `field` in time order, each committed once its records are emitted."""
        host = self.host
        backfill = field != UPDATED_AT
        reader = WindowReader(
            lambda request: host.send(context, request, partial(host.page_stamps, field=field)),
            page_size=host.page_size,
            # A backfill's date is one the list sorts by (declared with it).
            keyset=backfill or bool(host.spec.sort_param),
            key=lambda record: tuple(record.get(k) for k in host.primary_keys),
            timestamp=partial(self.timestamp, field=field),
            workers=host.workers,
            date_field=field,
            counted=host.spec.count_key is not None,
        )
        progress = _Progress(host, field, reader)
        host.logger.info(
            "%s: reading %s from %s to %s", host.name, field, utc_iso(start), utc_iso(end)
        )
        for window, records in reader.read(start, end):
            yield from records
            if backfill:
                host.remember(context, BACKFILL, utc_iso(window.end))
            else:
                self.commit(context, window.end)
            progress.window(len(records), window.end)
        progress.done()

    def commit(self, context: Context | None, end: datetime) -> None:
        """Every record up to `end` is emitted: the records moved the bookmark."""
        del end
        self.host.commit(context)


class _Progress:
    """The log lines of one windowed read: progress every few seconds, then a summary."""

    def __init__(self, host: Host, field: str, reader: WindowReader) -> None:
        self.host, self.field, self.reader = host, field, reader
        self.count, self.last_log = 0, time.monotonic()

    def window(self, count: int, end: datetime) -> None:
        """A window of `count` records, up to `end`, was emitted."""
        self.count += count
        if time.monotonic() - self.last_log >= PROGRESS_EVERY:
            self.last_log = time.monotonic()
            self.host.logger.info(
                "%s: %d records so far, reached %s (%d requests)",
                *(self.host.name, self.count, utc_iso(end), self.reader.requests),
            )

    def done(self) -> None:
        """The read ended: the records without a date, and the totals."""
        host, reader = self.host, self.reader
        if reader.unstamped:
            host.logger.warning(
                "%s: %d records had no %s; each was emitted with the window that "
                "returned it, and the bookmark comes from the others",
                *(host.name, reader.unstamped, self.field),
            )
        host.logger.info("%s: %d records in %d requests", host.name, self.count, reader.requests)


class WindowBookmark(UpdatedAt):
    """Windows over records that carry no updated_at: the bookmark is the last window's end."""

    @override
    def timestamp(self, record: dict, field: str = UPDATED_AT) -> datetime | None:
        """Every record belongs to the window that returned it."""
        del record, field
        return self.host.sync_started_at

    @override
    def commit(self, context: Context | None, end: datetime) -> None:
        """The window's end is the bookmark."""
        self.host.commit(context, utc_iso(end))


def reader_for(spec: StreamSpec) -> type[Reader]:
    """The reader of a declared stream."""
    if spec.replication == "since_id":
        return Ids if spec.id_order == "asc" else IdsInAnyOrder
    return {"updated_at": UpdatedAt, "window": WindowBookmark}.get(spec.replication, FullTable)


__all__ = ["BACKFILL", "EPOCH", "IdCursor", "Reader", "reader_for"]
