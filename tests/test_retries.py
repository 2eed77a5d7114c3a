"""The site-wide throttle: never more requests in flight than its limit allows."""

from __future__ import annotations

import threading
import time

from tap_maxio.retries import Throttle

THREADS = 12


class Crowd:
    """Threads sending requests through one throttle, counting how many are inside."""

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle
        self.inside = 0
        self.peak = 0
        self.over: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def send(self, requests: int) -> None:
        """Each thread sends `requests` requests, reporting each success as the tap does."""

        def worker() -> None:
            for _ in range(requests):
                with self.throttle.slot():
                    with self._lock:
                        self.inside += 1
                        self.peak = max(self.peak, self.inside)
                        # Within one call of send the limit only grows: a count above
                        # it now was above it when the request was let in.
                        if self.inside > self.throttle.limit:
                            self.over.append((self.inside, self.throttle.limit))
                    time.sleep(0.001)
                    with self._lock:
                        self.inside -= 1
                self.throttle.succeeded()

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def test_throttle_never_lets_more_than_its_limit_in_flight():
    crowd = Crowd(Throttle(4))
    crowd.send(requests=10)
    assert crowd.over == []
    assert crowd.peak == 4


def test_throttle_holds_its_halved_limit_and_while_it_grows_back():
    throttle = Throttle(4)
    crowd = Crowd(throttle)
    throttle.rate_limited(0.05)
    assert throttle.limit == 2
    started = time.monotonic()
    # 20 successes at 2 allow 3, 30 more at 3 allow 4: the limit is back within the run.
    crowd.send(requests=10)
    assert time.monotonic() - started >= 0.05, "the pause was not honoured"
    assert crowd.over == []
    assert throttle.limit == 4
    assert crowd.peak == 4
