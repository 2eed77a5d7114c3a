"""Retries with backoff, and the site-wide limit on requests in flight.

Maxio limits each site to a few requests in flight and answers 429 past that,
so every stream of a tap shares one Throttle: a 429 pauses all of them, halves
the concurrency, and the concurrency then grows back one step at a time.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
import typing as t
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

#: Statuses worth another try, besides every 5xx (Maxio's SDK retries the same).
RETRY_STATUSES = frozenset({408, 413, 429})
#: Transport failures worth another try: resets, timeouts, truncated bodies.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


RETRIABLE: tuple[type[Exception], ...] = (RetriableAPIError, *TRANSIENT_ERRORS)


class RetriesExhausted(FatalAPIError):
    """A transient failure that lasted through every try: the run ends on its line."""


def is_retriable_status(status: int) -> bool:
    """Return whether an HTTP status is transient."""
    return status in RETRY_STATUSES or status >= 500


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


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying a request again."""

    max_tries: int = 8
    backoff: float = 1.0
    max_wait: float = 120.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try number `attempt + 1` (full jitter)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        ceiling = min(self.max_wait, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311


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


_T = t.TypeVar("_T")


def call_with_retries(
    send: Callable[[], _T],
    *,
    policy: RetryPolicy,
    throttle: Throttle,
    logger: logging.Logger,
    what: str,
) -> _T:
    """Call `send` within a throttle slot, retrying transient failures."""
    attempt = 0
    while True:
        attempt += 1
        try:
            with throttle.slot():
                result = send()
        except RETRIABLE as exc:
            response = getattr(exc, "response", None)
            # The API error's message names the stream, the path and what was wrong.
            detail = str(exc) if isinstance(exc, RetriableAPIError) else f"{what}: {exc!r}"
            if not isinstance(exc, RetriableAPIError) and not str(exc):
                detail = f"{what}: {type(exc).__name__}"
            if attempt >= policy.max_tries:
                message = f"{detail} (gave up after {attempt} tries)"
                raise RetriesExhausted(message) from exc
            delay = policy.wait(attempt, retry_after_seconds(response))
            if getattr(response, "status_code", None) == 429:
                throttle.rate_limited(delay)
            logger.warning(
                "%s; try %d of %d in %.1f s", detail, attempt + 1, policy.max_tries, delay
            )
            time.sleep(delay)
        else:
            throttle.succeeded()
            return result
