"""Which failures a stream retries, how long it waits, and how the site limit moves.

Requests go through a real MaxioStream of the tap, its session carried to a
fake site that answers each request with the next of a list of answers; the
retry loop is the SDK's (python-backoff), whose waits are time.sleep, patched.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import typing as t
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from conftest import API_KEY
from typing_extensions import override

from tap_maxio import retries
from tap_maxio.auth import PASSWORD
from tap_maxio.client import MaxioAPIError, MaxioStream
from tap_maxio.retries import RetriesExhausted, Throttle, retry_after_seconds
from tap_maxio.tap import TapMaxio, one_line_errors

BASE_URL = "http://127.0.0.1:9"
#: An answer of the fake site: a status, a status with headers, or a raised error.
Answer = int | tuple[int, dict[str, str]] | Exception


class FakeSite(requests.adapters.BaseAdapter):
    """Answers each request with the next answer (200 once they run out)."""

    def __init__(self, answers: list[Answer], throttle: Throttle) -> None:
        super().__init__()
        self.answers = list(answers)
        self.throttle = throttle
        self.sent: list[float] = []
        self.in_flight_seen: list[int] = []

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        self.sent.append(time.monotonic())
        self.in_flight_seen.append(self.throttle.in_flight)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.raw = io.BytesIO(b'{"errors": ["Try again"]}' if status >= 400 else b"[]")
        response.url = str(request.url)
        response.request = request
        return response

    @override
    def close(self) -> None:
        pass


def tap(**config: t.Any) -> TapMaxio:
    return TapMaxio(
        config={
            "subdomain": "acme",
            "api_key": API_KEY,
            "base_url": BASE_URL,
            "max_retries": 2,
            "retry_backoff": 0.01,
            **config,
        }
    )


def site_for(stream: MaxioStream, *answers: Answer) -> FakeSite:
    site = FakeSite(list(answers), stream.site.throttle)
    stream.requests_session.mount(BASE_URL, site)
    return site


def customers(*answers: Answer, **config: t.Any) -> tuple[MaxioStream, FakeSite]:
    """The customers stream of a new tap, and the fake site it sends to."""
    stream = t.cast("MaxioStream", tap(**config).streams["customers"])
    return stream, site_for(stream, *answers)


def read(stream: MaxioStream) -> list[dict]:
    """One request of the stream, retried as every request is."""
    return stream.send(None, None, stream.page_records)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def top_of_range(monkeypatch) -> list[tuple[float, float]]:
    """Make every jittered wait the top of its range, and record the ranges."""
    ranges: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    monkeypatch.setattr(retries.random, "uniform", uniform)
    return ranges


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What was logged at INFO and above."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


FAILED = "customers: HTTP {} from 127.0.0.1/customers.json: Try again"


@pytest.mark.parametrize("status", [408, 413, 429, 500, 502, 503, 504, 520])
def test_transient_statuses_are_retried(sleeps, status):
    stream, site = customers(status)
    assert read(stream) == []
    assert len(site.sent) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 499])
def test_client_errors_fail_at_once(sleeps, status):
    stream, site = customers(status)
    with pytest.raises(MaxioAPIError) as failure:
        read(stream)
    assert failure.value.status == status
    assert len(site.sent) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(),  # the SDK's decorator alone would not retry it
        requests.exceptions.ConnectionError("Connection aborted."),
        requests.exceptions.ReadTimeout("Read timed out."),
        requests.exceptions.ChunkedEncodingError(),
        requests.exceptions.ContentDecodingError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_transport_failures_are_retried(sleeps, error):
    stream, site = customers(error)
    assert read(stream) == []
    assert len(site.sent) == 2


def test_an_unexpected_error_is_not_retried(sleeps):
    stream, site = customers(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        read(stream)
    assert len(site.sent) == 1


def test_each_retry_is_one_warning_line(sleeps, top_of_range, caplog):
    stream, site = customers(503, ConnectionResetError(), retry_backoff=1)
    with caplog.at_level(logging.INFO):
        read(stream)
    assert site.in_flight_seen == [1, 1, 1], "every try holds a slot of the site"
    # backoff's own "Backing off ..." lines say the same again: they are left out.
    assert lines(caplog) == [
        f"{FAILED.format(503)}; try 2 of 3 in 1.0 s",
        "customers: GET /customers.json: ConnectionResetError; try 3 of 3 in 2.0 s",
    ]
    assert stream.site.throttle.limit == 4, "only a 429 slows the site down"


def test_waits_double_from_retry_backoff_with_jitter_up_to_120_s(sleeps, top_of_range):
    stream, _ = customers(*[500] * 10, retry_backoff=10, max_retries=10)
    read(stream)
    assert sleeps == [10, 20, 40, 80, 120, 120, 120, 120, 120, 120]
    assert top_of_range[:3] == [(5, 10), (10, 20), (20, 40)]
    assert top_of_range[-1] == (60, 120)


def test_a_first_wait_above_120_s_is_capped(sleeps, top_of_range):
    stream, _ = customers(500, retry_backoff=500)
    read(stream)
    assert sleeps == [120]


@pytest.mark.parametrize(
    ("retry_after", "waited"), [("7.5", 7.5), ("0", 0), ("-3", 0), ("3600", 120)]
)
def test_a_retry_after_in_seconds_is_waited_within_bounds(sleeps, retry_after, waited):
    stream, _ = customers((503, {"Retry-After": retry_after}))
    read(stream)
    assert sleeps == [waited]


def test_a_retry_after_as_a_date_is_waited(sleeps):
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    stream, _ = customers((503, {"Retry-After": later}))
    read(stream)
    assert 25 < sleeps[0] <= 30


def test_a_retry_after_ends_no_backoff_sequence(sleeps, top_of_range):
    stream, _ = customers((503, {"Retry-After": "7"}), 503, max_retries=3, retry_backoff=1)
    read(stream)
    assert sleeps == [7, 2], "the second retry waits as a second retry does"


def test_a_429_pauses_the_whole_site_and_halves_its_concurrency(monkeypatch):
    stream, site = customers((429, {"Retry-After": "0.3"}))
    other = t.cast("MaxioStream", stream.site.streams["subscriptions"])
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        # Instead of the wait, another stream sends: the throttle holds it back.
        slept.append(seconds)
        read(other)

    monkeypatch.setattr(time, "sleep", sleep)
    read(stream)
    assert slept == [0.3]
    # The site's one session sends both streams' requests: the 429, then the other's.
    assert site.sent[1] - site.sent[0] >= 0.29
    assert stream.site.throttle.limit == 2


def test_successes_let_the_concurrency_grow_back(sleeps):
    stream, _ = customers((429, {"Retry-After": "0"}))
    read(stream)  # a 429, then the first success at limit 2
    assert stream.site.throttle.limit == 2
    for _ in range(18):
        read(stream)
    assert stream.site.throttle.limit == 2
    read(stream)  # the 20th success at limit 2
    assert stream.site.throttle.limit == 3


def test_the_last_failure_ends_the_run_on_one_line(sleeps, caplog):
    stream, site = customers(*[500] * 5)
    with (
        caplog.at_level(logging.INFO),
        pytest.raises(SystemExit),
        one_line_errors(logging.getLogger("tap-maxio")),
    ):
        read(stream)
    assert len(site.sent) == 3
    assert len(sleeps) == 2
    last = caplog.records[-1]
    assert (last.levelno, last.getMessage()) == (
        logging.ERROR,
        f"{FAILED.format(500)} (gave up after 3 tries)",
    )
    assert not any("Giving up" in line for line in lines(caplog))


def test_max_retries_0_tries_once(sleeps):
    stream, site = customers(500, max_retries=0)
    with pytest.raises(RetriesExhausted, match=r"\(gave up after 1 tries\)$"):
        read(stream)
    assert len(site.sent) == 1
    assert sleeps == []


def test_the_api_key_is_in_no_retry_line_or_error(sleeps, caplog):
    stream, _ = customers(503, ConnectionResetError(), 429, 500, 500, max_retries=4)
    token = base64.b64encode(f"{API_KEY}:{PASSWORD}".encode()).decode()
    with caplog.at_level(logging.DEBUG), pytest.raises(RetriesExhausted) as failure:
        read(stream)
    assert len(lines(caplog)) == 4
    for text in [*lines(caplog), str(failure.value), repr(failure.value.__cause__)]:
        assert API_KEY not in text
        assert token not in text


def subclass(stream: MaxioStream, **hooks: t.Any) -> MaxioStream:
    """The stream's class with some of the SDK's hooks overridden, on the same tap."""
    return t.cast("MaxioStream", type("Changed", (type(stream),), hooks)(tap=stream.site))


def test_the_sdk_hooks_decide_the_retries(sleeps):
    """A subclass changes the retries through the SDK's hooks alone."""
    base, _ = customers()
    stream = subclass(
        base,
        backoff_max_tries=lambda self: 2,
        backoff_wait_generator=lambda self: (wait for wait in [0, 5, 6, 7]),
        extra_retry_statuses=(418,),
    )
    site = site_for(stream, 418, 500, 500)
    with pytest.raises(RetriesExhausted, match=r"\(gave up after 2 tries\)$"):
        read(stream)
    assert len(site.sent) == 2
    assert sleeps == [5]


@pytest.mark.parametrize("limit", [1, 2])
def test_throttle_never_lets_more_than_its_limit_in_flight(limit):
    throttle = Throttle(limit)
    entered, release = threading.Semaphore(0), threading.Event()

    def request():
        with throttle.slot():
            entered.release()
            release.wait()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(limit):
        assert entered.acquire(timeout=2)
    assert not entered.acquire(timeout=0.2), "one request too many went in"
    release.set()
    for thread in threads:
        thread.join(timeout=2)
    assert (throttle.in_flight, throttle.peak_in_flight) == (0, limit)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_429_burst_halves_the_limit_once_and_never_below_one():
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


def test_the_limit_grows_back_to_the_configured_one_and_no_further():
    clock = Clock()
    throttle = Throttle(4, clock=clock)
    throttle.rate_limited(1)
    clock.now += 2
    for _ in range(29):
        throttle.succeeded()
    assert throttle.limit == 3, "20 successes at 2 allow 3; the count starts again"
    throttle.rate_limited(1)  # a 429 also starts it again
    assert throttle.limit == 1
    clock.now += 2
    for _ in range(9):
        throttle.succeeded()
    assert throttle.limit == 1
    for _ in range(1 + 20 + 30 + 100):
        throttle.succeeded()
    assert throttle.limit == 4


@pytest.mark.parametrize("value", [None, "", "soon"])
def test_no_usable_retry_after(value):
    response = requests.Response()
    if value is not None:
        response.headers["Retry-After"] = value
    assert retry_after_seconds(response) is None
    assert retry_after_seconds(None) is None
