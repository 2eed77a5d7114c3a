"""Streams read ahead of their turn, so that every stream shares the site's slots.

The SDK syncs one stream after another, and a stream that reads one window at a
time, or a list of one page, leaves the site's other request slots idle. As the
sync starts, each selected top-level stream is noted; once the site has answered
one request (the key and the site work), the next `AT_ONCE` in the SDK's order
are read, each in a thread of its own, and the site-wide throttle shares the
slots among them. When the SDK reaches a stream, it takes what was read
instead of reading, and the next read begins.

A read ahead changes nothing. What it would change (STATE, the bookmark, the
request count) and the lines it would log are queued among its records, in
order, and done by the stream in its turn as it emits them: messages, STATE and
progress stay the stream's and in its order, and a killed run has lost only
requests.

Records are passed on at the read's safe points, where it would write STATE (a
window, a page of ids) or log. There a read waits while it and the reads whose
turn comes before its own hold `BUDGET` records in all, or, once its turn came,
while it holds `BUDGET` itself. A list with no safe point (page-numbered, read
in one go so that its rows have no time to shift between pages) is held whole;
one longer than `WHOLE` is dropped, and its stream reads it in its turn.
"""

from __future__ import annotations

import functools
import threading
import typing as t
from collections import deque

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Generator, Hashable, Iterator, Mapping

    from singer_sdk.helpers.types import Context

#: Reads ahead of their turn at once.
AT_ONCE = 2
#: Records the reads not yet taken hold in all, or one taken holds, before it
#: waits at a safe point.
BUDGET = 2_000
#: The longest list without safe points held whole.
WHOLE = 5_000
_END = object()


class _Stopped(Exception):
    """The read is no longer wanted."""


class _TooLong(Exception):
    """A list without safe points outgrew `WHOLE`: its stream reads it in its turn."""


class _Pool:
    """What every read of a sync shares: one lock, and the reads begun, in turn order."""

    def __init__(self, budget: int) -> None:
        self.lock = threading.Lock()
        #: Records were taken: a read waiting at a safe point may have room.
        self.room_made = threading.Condition(self.lock)
        self.budget = budget
        self.reads: list[Read] = []

    def room(self, read: Read) -> bool:
        """Whether `read` may go on: the reads whose turn comes first hold less than the budget.

        The stream whose turn is next is read first; a later one waits.
        """
        held = 0
        for other in self.reads:
            held += other.held if not other.taken else 0
            if other is read:
                return held < self.budget
        return True


class Read:
    """One stream context read in a thread of its own, taken in the stream's turn."""

    def __init__(self, pool: _Pool, whole: int = WHOLE) -> None:
        """Share `pool` with the other reads; hold a list of up to `whole` records."""
        self.pool, self.whole = pool, whole
        self._lock = pool.lock
        #: Records were passed on, or the read was dropped.
        self._passed_on = threading.Condition(pool.lock)
        #: Batches passed on, each with its count of records.
        self._batches: deque[tuple[list[t.Any], int]] = deque()
        self._batch: list[t.Any] = []
        self.held = 0  # records passed on and not taken
        self.taken = self._passed = self._stopped = self._dropped = False
        self._tries = 0

    def run(self, generator: Generator[dict, None, None]) -> None:
        """Read (in the read's thread): records and queued changes, passed on in order."""
        records = 0
        try:
            for record in generator:
                self._batch.append(record)
                records += 1
                if self._stopped:
                    raise _Stopped
                if records > self.whole and not self._passed:
                    raise _TooLong
            self._pass_on(_END)
        except _Stopped:
            pass
        except _TooLong:
            with self._lock:
                self._dropped = True
                self._passed_on.notify()
        except Exception as exc:  # raised again in the stream's turn, as if it got it then
            self._pass_on(exc)
        finally:
            generator.close()

    def defer(self, change: Callable[[], None]) -> None:
        """Queue a change of the stream's (a safe point); wait while too many records wait."""
        self._batch.append(change)
        self._pass_on()
        with self._lock:
            self.pool.room_made.wait_for(self._may_go_on)
        if self._stopped:
            raise _Stopped

    def _may_go_on(self) -> bool:
        if self._stopped:
            return True
        return self.held < self.pool.budget if self.taken else self.pool.room(self)

    def _pass_on(self, last: object = None) -> None:
        batch, self._batch = self._batch, []
        if last is not None:
            batch.append(last)
        records = sum(isinstance(item, dict) for item in batch)
        with self._lock:
            self._batches.append((batch, records))
            self.held += records
            self._passed = True
            self._passed_on.notify()

    def count(self, tries: int) -> None:
        """Note requests sent (any thread): the stream counts them in its turn."""
        with self._lock:
            self._tries += tries

    def take(
        self, count: Callable[[int], None], instead: Callable[[], Iterator[dict]]
    ) -> Iterator[dict]:
        """The records, with the changes done in order (in the turn); `instead` if dropped."""
        with self._lock:
            self.taken = True
            self.pool.room_made.notify_all()
        try:
            while True:
                with self._lock:
                    self._passed_on.wait_for(lambda: self._batches or self._dropped)
                    if not self._batches:
                        break
                    (batch, records), tries, self._tries = self._batches.popleft(), self._tries, 0
                count(tries)
                for item in batch:
                    if isinstance(item, dict):
                        yield item
                    elif item is _END:
                        return
                    elif isinstance(item, Exception):
                        raise item
                    else:
                        item()
                with self._lock:
                    self.held -= records
                    self.pool.room_made.notify_all()
        finally:
            self.stop()
        count(self._tries)
        yield from instead()

    def stop(self) -> None:
        """The read is no longer wanted: it ends at its next record or safe point."""
        with self._lock:
            self._stopped = True
            self.pool.room_made.notify_all()


class _Told:
    """A logger whose lines are told in the stream's turn, in their place among its records."""

    def __init__(self, logger: logging.Logger, read: Read) -> None:
        self._logger, self._read = logger, read

    def __getattr__(self, level: str) -> Callable[..., None]:
        """`info`, `warning`...: the line is queued like a change."""
        method = getattr(self._logger, level)
        return lambda *args, **kwargs: self._read.defer(functools.partial(method, *args, **kwargs))


class Ahead:
    """A stream as its read ahead sees it: requests counted, changes queued, state as it was.

    Everything else is the stream's own, read only.
    """

    def __init__(self, stream: t.Any, read: Read, state: dict, bookmark: t.Any) -> None:
        """`state` and `bookmark`: the stream's, as read in the main thread."""
        self._stream, self._read, self._state, self._bookmark = stream, read, state, bookmark
        self.logger = _Told(stream.logger, read)

    def __getattr__(self, name: str) -> t.Any:
        """The stream's own."""
        return getattr(self._stream, name)

    def send(self, context: Context | None, token: t.Any, parse: Callable[[t.Any], t.Any]) -> t.Any:
        """Send one request, counted by the read."""
        return self._stream.request(context, token, parse, self._read.count)

    def bookmark(self, context: Context | None) -> t.Any:
        """The bookmark the read starts from."""
        del context
        return self._bookmark

    def get_context_state(self, context: Context | None) -> dict:
        """The stream's state as it was, with the read's own changes."""
        del context
        return self._state

    def commit(self, context: Context | None, bookmark: t.Any = None) -> None:
        """Queue the stream's STATE (and bookmark)."""
        self._read.defer(functools.partial(self._stream.commit, context, bookmark))

    def remember(self, context: Context | None, key: str, value: t.Any) -> None:
        """Queue a value of the stream's state, seen by the read at once."""
        if value is None:
            self._state.pop(key, None)
        else:
            self._state[key] = value
        self._read.defer(functools.partial(self._stream.remember, context, key, value))

    def finish(self, context: Context | None) -> None:
        """Queue the stream's settling of its state."""
        self._read.defer(functools.partial(self._stream.finish, context))


class ReadsAhead:
    """The reads noted as the sync starts, begun in the order of their turns, a few at once."""

    def __init__(self, budget: int = BUDGET, at_once: int = AT_ONCE, whole: int = WHOLE) -> None:
        """Let the reads not taken hold `budget` records in all, `at_once` of them reading.

        A list without safe points of over `whole` records is read in its turn.
        """
        self._pool = _Pool(budget)
        self.at_once, self.whole = at_once, whole
        self._waiting: dict[Hashable, Callable[[Read], Generator[dict, None, None]]] = {}
        self._reads: dict[Hashable, Read] = {}
        self._running: set[Read] = set()
        self._lock = threading.Lock()
        self.asked = False
        self._begun = False

    def ask(self, reads: Mapping[Hashable, Callable[[Read], Generator[dict, None, None]]]) -> None:
        """Note reads to begin once `go` is called, each given the `Read` it reports to.

        `reads` come in the order of their turns, and begin in that order.
        """
        with self._lock:
            if not self.asked:
                self.asked = True
                self._waiting.update(reads)

    def go(self) -> None:
        """The site answered: begin the first reads noted and not taken."""
        if self._begun:  # read without the lock: every request's answer calls this
            return
        with self._lock:
            if not self._begun and self.asked:
                self._begun = True
                self._more()

    def _more(self) -> None:
        """Begin reads, in turn order, while fewer than `at_once` read (the lock held)."""
        while self._waiting and len(self._running) < self.at_once:
            key = next(iter(self._waiting))
            read = self._reads[key] = Read(self._pool, self.whole)
            self._pool.reads.append(read)
            self._running.add(read)
            generator = self._waiting.pop(key)(read)
            threading.Thread(target=self._run, args=(read, generator), daemon=True).start()

    def _run(self, read: Read, generator: Generator[dict, None, None]) -> None:
        try:
            read.run(generator)
        finally:
            self._done(read)

    def _done(self, read: Read) -> None:
        """A read ended, or its turn came: the next may begin."""
        with self._lock:
            self._running.discard(read)
            if self._begun:
                self._more()

    def take(self, key: Hashable) -> Read | None:
        """The read begun for `key` (None: none was; none will be now)."""
        with self._lock:
            self._waiting.pop(key, None)
            read = self._reads.pop(key, None)
        if read is not None:
            self._done(read)
        return read

    def stop(self) -> None:
        """The sync ended: stop the reads never taken."""
        with self._lock:
            reads, self._reads = list(self._reads.values()), {}
            self._waiting.clear()
        for read in reads:
            read.stop()


__all__ = ["AT_ONCE", "BUDGET", "WHOLE", "Ahead", "Read", "ReadsAhead"]
