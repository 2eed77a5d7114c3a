"""The window reader loses nothing while the data changes under it."""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest

from tap_maxio.windows import ListPage, PageRequest, Window, WindowReader

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = T0 + timedelta(days=30)
NOW = END + timedelta(hours=1)


class CountedPage(ListPage):
    """A page that also counts the rows of all the request's pages (total_count)."""

    def __init__(self, records: list[dict], total: int) -> None:
        super().__init__(records, lambda r: r["ts"])
        self.total = total


class FakeList:
    """An in-memory list endpoint that changes every few requests.

    Each change updates 3 rows to `moved_to` (past the sync's fixed bound, or
    into the range's last second) and creates one.
    """

    def __init__(
        self,
        count: int,
        *,
        crowded: int = 0,
        mutate_every: int = 0,
        seed: int = 1,
        moved_to: datetime = NOW,
    ):
        self.rng = random.Random(seed)
        self.rows = {
            i: T0 + timedelta(seconds=self.rng.randrange(30 * 86400)) for i in range(count)
        }
        crowd_at = T0 + timedelta(days=10)
        for i in range(count, count + crowded):
            self.rows[i] = crowd_at
        self.at_start = set(self.rows)
        self.changed: set[int] = set()
        self.mutate_every = mutate_every
        self.moved_to = moved_to
        self.requests = 0
        self.lock = threading.Lock()

    def fetch(
        self, request: PageRequest, *, page_size: int, keyset: bool, counted: bool = False
    ) -> list[dict] | CountedPage:
        """A page; `counted`: ordered by date (undocumented), every page's rows counted."""
        with self.lock:
            self.requests += 1
            if self.mutate_every and self.requests % self.mutate_every == 0:
                for key in self.rng.sample(sorted(self.rows), 3):
                    self.rows[key] = self.moved_to
                    self.changed.add(key)
                self.rows[max(self.rows) + 1] = NOW
            window = request.window
            rows = [(ts, k) for k, ts in self.rows.items() if window.start <= ts <= window.end]
            by_date = counted or (keyset and not request.tie_order)
            rows.sort(key=(lambda r: r) if by_date else (lambda r: r[1]))
            first = (request.page - 1) * page_size
            page = [{"id": k, "ts": ts} for ts, k in rows[first : first + page_size]]
            return CountedPage(page, len(rows)) if counted else page


def read_all(
    fake: FakeList,
    *,
    keyset: bool,
    workers: int = 1,
    page_size: int = 20,
    start=T0,
    end=END,
    counted: bool = False,
):
    reader = WindowReader(
        partial(fake.fetch, page_size=page_size, keyset=keyset, counted=counted),
        page_size=page_size,
        keyset=keyset,
        key=lambda r: r["id"],
        timestamp=lambda r: r["ts"],
        workers=workers,
        counted=counted,
    )
    emitted = [r for _, records in reader.read(start, end) for r in records]
    return emitted, reader


@pytest.mark.parametrize("keyset", [True, False])
@pytest.mark.parametrize("workers", [1, 4])
def test_nothing_lost_while_the_data_changes(keyset, workers):
    fake = FakeList(2000, crowded=70, mutate_every=3)
    emitted, _ = read_all(fake, keyset=keyset, workers=workers)
    keys = [r["id"] for r in emitted]
    assert fake.changed, "the data did not change during the read"
    assert fake.at_start - fake.changed - set(keys) == set()
    assert len(keys) == len(set(keys)), "a record was emitted twice in one run"
    stamps = [r["ts"] for r in emitted]
    assert stamps == sorted(stamps), "records must come in time order"
    # The next run starts from the bookmark and picks up every row changed since.
    fake.mutate_every = 0
    later, _ = read_all(fake, keyset=keyset, workers=workers, start=stamps[-1], end=NOW)
    assert (fake.at_start | fake.changed) - set(keys) - {r["id"] for r in later} == set()


def test_page_numbers_over_a_changing_window_do_lose_rows():
    """The fake really drifts: a plain page-number read of it misses rows."""
    fake = FakeList(2000, mutate_every=3)
    seen, page = set(), 1
    while True:
        rows = fake.fetch(PageRequest(Window(T0, END), page), page_size=20, keyset=True)
        seen.update(r["id"] for r in rows)
        if len(rows) < 20:
            break
        page += 1
    assert fake.at_start - fake.changed - seen


def test_keyset_reads_close_to_one_request_per_page():
    fake = FakeList(5000)
    emitted, reader = read_all(fake, keyset=True, page_size=100)
    assert len(emitted) == 5000
    assert reader.requests <= 1.1 * (5000 / 100)


@pytest.mark.parametrize("count", [1001, 1200, 1500, 2000, 3000])
def test_idle_workers_cost_two_requests_and_a_tenth_at_most(count):
    # Each piece a window is shared into ends on a short page: a few pages shared
    # among four workers used to cost half as many requests again.
    fake = FakeList(count, seed=count)
    emitted, reader = read_all(fake, keyset=True, workers=4, page_size=200)
    assert len(emitted) == count
    pages = -(-count // 200)
    assert reader.requests <= 1.1 * pages + 2


@pytest.mark.parametrize("count", [2000, 3000, 5000])
def test_a_history_crowded_towards_the_present_is_shared_once(count):
    # Sharing the tail again after each keyset restart cost a short page each time.
    fake = FakeList(0)
    rng = random.Random(2)
    fake.rows = {
        i: T0 + timedelta(seconds=int(30 * 86400 * rng.random() ** 0.2)) for i in range(count)
    }
    emitted, reader = read_all(fake, keyset=True, workers=4, page_size=200)
    assert len(emitted) == count
    assert reader.requests <= 1.1 * -(-count // 200) + 2


def test_a_counted_list_is_read_by_page_numbers_close_to_one_request_per_page():
    fake = FakeList(1500)
    emitted, reader = read_all(fake, keyset=False, workers=4, page_size=100, counted=True)
    assert sorted(r["id"] for r in emitted) == list(range(1500))
    # One request of the whole range, its pages, and the last two seconds whole.
    assert reader.requests <= 1.1 * 1500 / 100 + 3


@pytest.mark.parametrize("moved_to", [NOW, END], ids=["past the range", "into its last second"])
def test_a_counted_list_loses_nothing_while_rows_move(moved_to):
    # The list orders by date: a row that moves shifts the pages after it.
    fake = FakeList(600, mutate_every=3, moved_to=moved_to)
    emitted, _ = read_all(fake, keyset=False, workers=4, page_size=50, counted=True)
    assert fake.changed, "the data did not change during the read"
    # A moved row is read again by the next run, from the range's end on.
    assert fake.at_start - fake.changed - {r["id"] for r in emitted} == set()


def test_sparse_history_costs_few_requests():
    fake = FakeList(0)
    fake.rows = {1: T0 + timedelta(days=29), 2: T0 + timedelta(days=29, seconds=5)}
    fake.at_start = set(fake.rows)
    emitted, reader = read_all(fake, keyset=False)
    assert [r["id"] for r in emitted] == [1, 2]
    assert reader.requests == 1


def test_a_second_crowded_past_a_page_is_read_whole():
    fake = FakeList(0, crowded=95, mutate_every=2)
    emitted, _ = read_all(fake, keyset=True, page_size=20)
    assert fake.at_start - fake.changed - {r["id"] for r in emitted} == set()


def test_windows_share_their_boundary_second():
    pieces = Window(T0, T0 + timedelta(seconds=10)).pieces(3)
    assert pieces[0].start == T0 and pieces[-1].end == T0 + timedelta(seconds=10)
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))


def test_requests_go_on_while_the_caller_emits():
    """A keyset restart is sent at once, not when the caller asks for more."""
    fake = FakeList(0)
    fake.rows = {i: T0 + timedelta(seconds=i) for i in range(100)}
    started: list[float] = []

    def fetch(request):
        started.append(time.monotonic())
        return fake.fetch(request, page_size=20, keyset=True)

    reader = WindowReader(
        fetch, page_size=20, keyset=True, key=lambda r: r["id"], timestamp=lambda r: r["ts"]
    )
    windows = reader.read(T0, END)
    first = next(windows)[1]
    time.sleep(0.5)  # the caller emitting the first page's records
    resumed = time.monotonic()
    rest = [r for _, records in windows for r in records]
    assert [r["id"] for r in first + rest] == list(range(100))
    assert len(started) > 5
    assert max(started) < resumed, "the reader waited for the caller"


def test_a_failed_request_ends_the_read_in_the_callers_thread():
    def fetch(request):
        if request.window.start > T0:
            raise RuntimeError("HTTP 500 after every retry")
        return [{"id": i, "ts": T0 + timedelta(seconds=i)} for i in range(20)]

    reader = WindowReader(
        fetch, page_size=20, keyset=True, key=lambda r: r["id"], timestamp=lambda r: r["ts"]
    )
    with pytest.raises(RuntimeError, match="HTTP 500"):
        list(reader.read(T0, END))


def test_the_rest_of_a_range_is_shared_among_idle_workers():
    """Rows crowd towards the present: the first page underestimates the density,
    yet the requests after it go out together, not one keyset restart at a time."""
    fake = FakeList(0)
    rng = random.Random(3)
    fake.rows = {
        i: T0 + timedelta(seconds=int(30 * 86400 * rng.random() ** 0.2)) for i in range(2000)
    }
    in_flight, overlapping, lock = [0], [], threading.Lock()

    def fetch(request):
        with lock:
            in_flight[0] += 1
            overlapping.append(in_flight[0])
        time.sleep(0.02)
        try:
            return fake.fetch(request, page_size=100, keyset=True)
        finally:
            with lock:
                in_flight[0] -= 1

    reader = WindowReader(
        fetch, page_size=100, keyset=True, key=lambda r: r["id"], timestamp=lambda r: r["ts"],
        workers=4,
    )  # fmt: skip
    emitted = [r["id"] for _, records in reader.read(T0, END) for r in records]
    assert sorted(emitted) == list(range(2000))
    assert max(overlapping[1:4]) >= 3, overlapping[:8]
