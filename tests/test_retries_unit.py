"""Which failures are retried, how long the tap waits, and how the site limit moves."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_maxio import retries
from tap_maxio.retries import (
    RetriesExhausted,
    RetryPolicy,
    Throttle,
    call_with_retries,
    is_retriable_status,
    retry_after_seconds,
)


@pytest.mark.parametrize("status", [408, 413, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status):
    assert is_retriable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 499])
def test_client_errors_are_not_retried(status):
    assert not is_retriable_status(status)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_429_halves_the_limit_once_per_burst_and_never_below_one():
    clock = Clock()
    throttle = Throttle(4, clock=clock)
    throttle.rate_limited(5)
    throttle.rate_limited(5)  # a second 429 of the same burst, during the pause
    assert throttle.limit == 2
    clock.now += 6
    throttle.rate_limited(5)
    assert throttle.limit == 1
    clock.now += 6
    throttle.rate_limited(5)
    assert throttle.limit == 1


def slowed_down(limit: int) -> tuple[Throttle, Clock]:
    """A throttle whose limit one 429 has halved, its pause over."""
    clock = Clock()
    throttle = Throttle(limit, clock=clock)
    throttle.rate_limited(1)
    clock.now += 2
    return throttle, clock


def test_the_limit_grows_back_one_step_per_run_of_successes():
    throttle, clock = slowed_down(4)
    for _ in range(19):
        throttle.succeeded()
    assert throttle.limit == 2
    throttle.succeeded()  # the 20th success at limit 2
    assert throttle.limit == 3
    for _ in range(29):
        throttle.succeeded()
    assert throttle.limit == 3, "the count starts again at each step"
    throttle.rate_limited(1)  # a 429 also starts it again
    assert throttle.limit == 1
    clock.now += 2
    for _ in range(9):
        throttle.succeeded()
    assert throttle.limit == 1
    for _ in range(1 + 20 + 30 + 100):
        throttle.succeeded()
    assert throttle.limit == 4, "it grows back to the configured limit, not past it"


def test_requests_wait_out_the_pause_a_429_set():
    throttle = Throttle(4)
    throttle.rate_limited(0.3)
    started = time.monotonic()
    with throttle.slot():
        waited = time.monotonic() - started
    assert 0.25 <= waited < 2


@pytest.mark.parametrize(("limit", "admitted"), [(0, 1), (1, 1), (2, 2)])
def test_no_more_requests_in_flight_than_the_limit(limit, admitted):
    throttle = Throttle(limit)
    entered, release = threading.Semaphore(0), threading.Event()

    def request():
        with throttle.slot():
            entered.release()
            release.wait()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(admitted):
        assert entered.acquire(timeout=2)
    assert not entered.acquire(timeout=0.2), "one request too many went in"
    assert throttle.in_flight == admitted
    release.set()
    for thread in threads:
        thread.join(timeout=2)
    assert (throttle.in_flight, throttle.peak_in_flight) == (0, admitted)


def test_wait_honours_retry_after_within_bounds():
    policy = RetryPolicy(max_wait=120)
    assert policy.wait(1, 7.5) == 7.5
    assert policy.wait(1, -3) == 0
    assert policy.wait(1, 3600) == 120


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1), (3, 2, 4), (20, 60, 120)])
def test_wait_backs_off_exponentially_with_jitter(monkeypatch, attempt, low, high):
    bounds = []
    monkeypatch.setattr(retries.random, "uniform", lambda a, b: bounds.append((a, b)) or b)
    assert RetryPolicy(backoff=1.0).wait(attempt, None) == high
    assert bounds == [(low, high)]


def response_with(retry_after: str | None) -> requests.Response:
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_seconds(response_with("12")) == 12.0
    assert retry_after_seconds(response_with("0.5")) == 0.5
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 < retry_after_seconds(response_with(format_datetime(later, usegmt=True))) <= 30


@pytest.mark.parametrize("value", [None, "", "soon"])
def test_no_usable_retry_after(value):
    assert retry_after_seconds(response_with(value)) is None


def test_no_response_has_no_retry_after():
    assert retry_after_seconds(None) is None


class Site:
    """A `send` that fails with the given errors, one per call, then answers."""

    def __init__(self, *errors: Exception, throttle: Throttle | None = None) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.throttle = throttle
        self.in_flight_seen: list[int] = []

    def __call__(self) -> str:
        self.calls += 1
        if self.throttle is not None:
            self.in_flight_seen.append(self.throttle.in_flight)
        if self.errors:
            raise self.errors.pop(0)
        return "page"


def http_error(status: int, retry_after: str | None = None) -> RetriableAPIError:
    response = response_with(retry_after)
    response.status_code = status
    return RetriableAPIError(f"HTTP {status}", response)


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(retries.time, "sleep", slept.append)
    return slept


def call(send, throttle=None, *, tries=3):
    return call_with_retries(
        send,
        policy=RetryPolicy(max_tries=tries, backoff=1.0),
        throttle=throttle or Throttle(4),
        logger=logging.getLogger("tap-maxio-test"),
        what="customers: GET /customers.json",
    )


def test_a_transient_failure_is_retried_after_a_wait(sleeps, caplog):
    throttle = Throttle(4)
    site = Site(http_error(503), ConnectionResetError(), throttle=throttle)
    with caplog.at_level(logging.WARNING):
        assert call(site, throttle) == "page"
    assert site.calls == 3
    assert site.in_flight_seen == [1, 1, 1], "every try holds a slot of the site"
    assert len(sleeps) == 2
    # An API error's own message names the stream and path (here, a bare one).
    assert [r.getMessage() for r in caplog.records] == [
        f"HTTP 503; try 2 of 3 in {sleeps[0]:.1f} s",
        f"customers: GET /customers.json: ConnectionResetError; try 3 of 3 in {sleeps[1]:.1f} s",
    ]
    assert throttle.limit == 4, "only a 429 slows the site down"


def test_a_429_waits_its_retry_after_and_slows_the_whole_site(sleeps):
    throttle = Throttle(4)
    assert call(Site(http_error(429, "0.05")), throttle) == "page"
    assert sleeps == [0.05]
    assert throttle.limit == 2


def test_the_last_failure_is_raised_after_max_tries(sleeps, caplog):
    site = Site(*(http_error(500) for _ in range(5)))
    # A fatal error of one line: the CLI ends on it, without a traceback.
    with pytest.raises(RetriesExhausted, match=r"^HTTP 500 \(gave up after 3 tries\)$"):
        call(site, tries=3)
    assert site.calls == 3
    assert len(sleeps) == 2


def test_a_fatal_error_is_not_retried(sleeps):
    site = Site(FatalAPIError("HTTP 401"))
    with pytest.raises(FatalAPIError):
        call(site)
    assert site.calls == 1
    assert sleeps == []


def test_successes_are_counted_towards_growing_back():
    throttle, _ = slowed_down(2)
    for _ in range(10):
        call(Site(), throttle)
    assert throttle.limit == 2
