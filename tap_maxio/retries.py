"""What the SDK's retries are given, and the site-wide limit on requests in flight.

The SDK's decorator (python-backoff) does the retrying; this module gives it
what it cannot know: which transport errors are transient, how long to wait
(a Retry-After, else exponential with jitter), and one line when tries run out.

Maxio limits each site to a few requests in flight and answers 429 past that,
so every stream of a tap shares one Throttle: a 429 pauses all of them, halves
the concurrency, and the concurrency then grows back one step at a time.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import random
import threading
import time
import typing as t
from contextlib import contextmanager

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

#: Statuses worth another try, besides every 5xx (Maxio's SDK retries the same).
RETRY_STATUSES = (408, 413, 429)
#: Transport failures worth another try: resets, timeouts, truncated bodies.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
#: The longest wait before a retry, whatever the backoff or Retry-After says.
MAX_WAIT = 120.0

_P = t.ParamSpec("_P")
_T = t.TypeVar("_T")


class RetriesExhausted(FatalAPIError):
    """A transient failure that lasted through every try: the run ends on its line."""


class Throttle:
    """Site-wide cap on requests in flight that shrinks on 429 and recovers."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Allow up to `limit` requests in flight."""
        self.max_limit = max(1, limit)
        self.limit = self.max_limit
        self.in_flight = 0
        self.peak_in_flight = 0
        self._clock = clock
        self._paused_until = 0.0
        self._successes = 0
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the site's request slots for the duration of a request."""
        with self._cond:
            while True:
                wait = self._paused_until - self._clock()
                if wait <= 0 and self.in_flight < self.limit:
                    break
                self._cond.wait(timeout=wait if wait > 0 else None)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    def rate_limited(self, pause: float) -> None:
        """Pause every request for `pause` seconds and halve the concurrency."""
        with self._cond:
            now = self._clock()
            if self._paused_until <= now:
                # One 429 burst from several requests in flight halves only once.
                self.limit = max(1, self.limit // 2)
            self._paused_until = max(self._paused_until, now + pause)
            self._successes = 0
            self._cond.notify_all()

    def succeeded(self) -> None:
        """Count a success; after a run of them, allow one more request in flight."""
        with self._cond:
            if self.limit >= self.max_limit:
                return
            self._successes += 1
            if self._successes >= 10 * self.limit:
                self.limit += 1
                self._successes = 0
                self._cond.notify_all()


def throttled(func: Callable[_P, _T], throttle: Throttle, what: str) -> Callable[_P, _T]:
    """One try of `func` in a slot of the site's throttle; a transport failure made retriable.

    The SDK's decorator retries ConnectionResetError but no other builtin
    ConnectionError (a refused or aborted connection); raised as a
    RetriableAPIError that names the stream and path (`what`), every transient
    failure is retried alike and reads alike in the log.
    """

    @functools.wraps(func)
    def attempt(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            with throttle.slot():
                result = func(*args, **kwargs)
        except TRANSIENT_ERRORS as exc:
            detail = f"{what}: {exc!r}" if str(exc) else f"{what}: {type(exc).__name__}"
            raise RetriableAPIError(detail, getattr(exc, "response", None)) from exc
        throttle.succeeded()
        return result

    return attempt


def giving_up(retried: Callable[_P, _T], tries: Callable[[], int]) -> Callable[_P, _T]:
    """`retried`, ending on one line that says what failed once its `tries()` ran out.

    backoff re-raises the last RetriableAPIError as it was, which the CLI would
    show with a traceback; RetriesExhausted is fatal, shown on one line.
    """

    @functools.wraps(retried)
    def send(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return retried(*args, **kwargs)
        except RetriableAPIError as exc:
            # backoff lets one out only once the tries ran out (no max_time is set).
            raise RetriesExhausted(f"{exc} (gave up after {tries()} tries)") from exc

    return send


def waits(backoff: float) -> Generator[float, BaseException | None, None]:
    """Seconds before each retry: the failure's Retry-After, else backoff doubling.

    backoff sends each failure into its wait generator, so one generator reads
    the Retry-After and counts the tries; the SDK's backoff_runtime sees only
    the failure, not how many came before it. The exponential wait is jittered
    between half and all of its ceiling; a Retry-After is the server's, as is.
    """
    ceiling = min(backoff, MAX_WAIT)
    failure = yield 0.0  # backoff primes the generator with send(None)
    while True:
        retry_after = retry_after_seconds(getattr(failure, "response", None))
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), MAX_WAIT)
        else:
            wait = random.uniform(ceiling / 2, ceiling)  # noqa: S311
        # The wait after try n is at most backoff * 2**(n - 1), whatever came before.
        ceiling = min(ceiling * 2, MAX_WAIT)
        failure = yield wait


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


class QuietBackoff(logging.Filter):
    """Drop the lines backoff logs itself: each says again what a line of ours says.

    The SDK hands backoff the stream's logger, so backoff logs every retry and
    the give-up there; backoff_handler and RetriesExhausted say both in one
    line. The lines are known by backoff's private handler names, checked by
    tests/test_retries_unit.py.
    """

    BACKOFF_LOGGERS = frozenset({"_log_backoff", "_log_giveup"})

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every line but backoff's own."""
        return record.funcName not in self.BACKOFF_LOGGERS


QUIET_BACKOFF = QuietBackoff()
