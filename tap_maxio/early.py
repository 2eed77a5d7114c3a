"""First requests sent before their stream's turn, so that streams share the site's slots.

The SDK syncs one stream after another, and a stream of one page leaves every
other request slot of the site idle while it waits for its answer. As the sync
starts, the first request of each full-table and id-cursor stream is noted;
once the site has answered one request (the key and the site work), they are
sent in the background, and the site-wide throttle fits them between the
others. When the SDK reaches the stream, its reader takes that answer instead
of asking, error included.

Nothing is emitted or committed here: STATE and messages stay the stream's, in
its turn, and a killed run has lost only requests. Memory holds one page per
stream at most: a page that does not hold the whole list is dropped (its
stream reads it again, as rows shift between page 1 and page 2 when they are
read far apart).
"""

from __future__ import annotations

import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping

    import requests


@dataclass(frozen=True)
class Answer:
    """What a request sent early got: its tries, and its response or its error.

    No response and no error: the response may not be used, ask again.
    """

    tries: int
    response: requests.Response | None = None
    error: Exception | None = None


def early_key(stream: str, context: Mapping | None, token: t.Any) -> Hashable:
    """What names one request: its stream, context and token."""
    return stream, tuple(sorted(context.items())) if context else None, token


class EarlyPages:
    """Requests noted at the start, sent once the site has answered, each answer taken once."""

    def __init__(self, workers: int) -> None:
        """Send up to `workers` at once (the site's throttle decides how many fly)."""
        self._workers = max(1, workers)
        self._waiting: dict[Hashable, Callable[[], Answer]] = {}
        self._answers: dict[Hashable, Future[Answer]] = {}
        self._lock = threading.Lock()
        self.asked = False
        self._sent = False

    def ask(self, requests: Mapping[Hashable, Callable[[], Answer]]) -> None:
        """Note these requests, to be sent once `go` is called; once a run."""
        with self._lock:
            if not self.asked:
                self.asked = True
                self._waiting.update(requests)

    def go(self) -> None:
        """The site answered: send the requests noted and not taken yet, in the background."""
        if self._sent:  # read without the lock: every request's answer calls this
            return
        with self._lock:
            if self._sent or not self.asked:
                return
            self._sent = True
            if self._waiting:
                executor = ThreadPoolExecutor(self._workers, thread_name_prefix="early")
                for key, send in self._waiting.items():
                    self._answers[key] = executor.submit(send)
                # The requests sent run to their end; the threads then go.
                executor.shutdown(wait=False)
            self._waiting.clear()

    def take(self, key: Hashable) -> Future[Answer] | None:
        """The answer to a request sent early (None: it was not; it never will be now)."""
        with self._lock:
            self._waiting.pop(key, None)
            return self._answers.pop(key, None)


__all__ = ["Answer", "EarlyPages", "early_key"]
