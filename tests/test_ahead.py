"""Streams read ahead of their turn: what they change waits for the turn, in order."""

from __future__ import annotations

import json
import logging
import threading
import time
import typing as t

import pytest
from conftest import API_KEY, run_tap, run_until_killed, sandbox_config, tap_config

from maxio_sandbox import Sandbox
from tap_maxio.ahead import ReadsAhead

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from tap_maxio.ahead import Read


def records(*ids: int) -> list[dict]:
    return [{"id": i} for i in ids]


def begin(
    reads: ReadsAhead, **generators: Callable[[Read], Generator[dict, None, None]]
) -> dict[str, Read]:
    """Ask for the reads, begin them, and take each (their turns come now)."""
    reads.ask(generators)
    reads.go()
    taken = {name: reads.take(name) for name in generators}
    assert all(taken.values())
    return t.cast("dict[str, Read]", taken)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_changes_are_done_in_the_turn_in_their_place_among_the_records():
    done: list[object] = []
    threads: list[str] = []

    def read(read: Read) -> Generator[dict, None, None]:
        yield from records(1, 2)
        read.count(2)
        read.defer(
            lambda: (done.append("commit 2"), threads.append(threading.current_thread().name))
        )
        yield from records(3)
        read.defer(lambda: done.append("commit 3"))

    taken = begin(ReadsAhead(), s=read)["s"]
    counted: list[int] = []
    for record in taken.take(counted.append, lambda: iter(())):
        done.append(record["id"])
    assert done == [1, 2, "commit 2", 3, "commit 3"]
    assert threads == [threading.current_thread().name]
    assert sum(counted) == 2


def test_a_read_changes_nothing_before_its_turn():
    done: list[str] = []

    def read(read: Read) -> Generator[dict, None, None]:
        yield from records(1)
        read.defer(lambda: done.append("commit"))

    reads = ReadsAhead()
    reads.ask({"s": read})
    reads.go()
    time.sleep(0.2)
    assert done == []
    taken = reads.take("s")
    assert taken is not None
    assert [r["id"] for r in taken.take(lambda _: None, lambda: iter(()))] == [1]
    assert done == ["commit"]


def test_an_error_is_raised_in_the_turn_after_the_records_before_it():
    def read(read: Read) -> Generator[dict, None, None]:
        yield from records(1)
        read.defer(lambda: None)
        yield from records(2)
        raise RuntimeError("HTTP 500")

    taken = begin(ReadsAhead(), s=read)["s"]
    got: list[int] = []
    with pytest.raises(RuntimeError, match="HTTP 500"):
        got.extend(r["id"] for r in taken.take(lambda _: None, lambda: iter(())))
    assert got == [1, 2]


def test_a_list_without_safe_points_longer_than_whole_is_read_again_in_its_turn():
    def read(read: Read) -> Generator[dict, None, None]:
        read.count(1)
        yield from records(*range(10))

    taken = begin(ReadsAhead(whole=5), s=read)["s"]
    counted: list[int] = []
    again = taken.take(counted.append, lambda: iter(records(7, 8)))
    assert [r["id"] for r in again] == [7, 8]
    assert sum(counted) == 1, "the requests of the dropped read are counted"


def test_reads_wait_at_safe_points_while_the_budget_is_spent_and_go_on_once_taken():
    passed: list[int] = []

    def read(read: Read) -> Generator[dict, None, None]:
        for i in range(10):
            yield from records(i)
            read.defer(lambda i=i: None)
            passed.append(i)

    reads = ReadsAhead(budget=3)
    reads.ask({"s": read})
    reads.go()
    wait_until(lambda: len(passed) >= 2)
    time.sleep(0.1)
    assert passed == [0, 1], "the read went past its budget (3 records held) before its turn"
    taken = reads.take("s")
    assert taken is not None
    assert [r["id"] for r in taken.take(lambda _: None, lambda: iter(()))] == list(range(10))


def test_reads_begin_in_the_order_of_their_turns_a_few_at_once():
    begun: list[str] = []
    release = threading.Event()

    def slow(name: str) -> Callable[[Read], Generator[dict, None, None]]:
        def read(read: Read) -> Generator[dict, None, None]:
            begun.append(name)
            release.wait(5)
            yield from records(1)

        return read

    reads = ReadsAhead(at_once=2)
    reads.ask({name: slow(name) for name in "abcd"})
    reads.go()
    wait_until(lambda: len(begun) == 2)
    time.sleep(0.1)
    assert begun == ["a", "b"]
    release.set()
    wait_until(lambda: len(begun) == 4)
    assert begun == ["a", "b", "c", "d"]
    reads.stop()


COUNTS = {
    "customers": 400, "subscriptions": 600, "invoices": 300, "events": 900,
    "customer_metadata": 600, "credit_notes": 300,
}  # fmt: skip
CHECKED = (*COUNTS,)


def whole_site() -> Sandbox:
    counts = {**sandbox_config().counts, **COUNTS}
    return Sandbox(sandbox_config(counts=counts, latency=0.01, max_in_flight=4))


def ids(rows: list[dict]) -> set:
    return {row.get("id", row.get("uid")) for row in rows}


def rows(records: list[dict]) -> set[str]:
    return {json.dumps(record, sort_keys=True) for record in records}


def test_a_sync_with_reads_ahead_gives_what_one_request_at_a_time_gives():
    with whole_site() as site:
        ahead = run_tap(tap_config(site, page_size=50))
        assert site.peak_in_flight == 4
        one = run_tap(tap_config(site, page_size=50, max_concurrent_requests=1))
        assert {s: rows(r) for s, r in ahead.records.items()} == {
            s: rows(r) for s, r in one.records.items()
        }
        for stream in CHECKED:
            assert ids(ahead.records[stream]) == ids(site.records(stream)), stream
        bookmarks = {s: b.get("replication_key_value") for s, b in ahead.state["bookmarks"].items()}
        assert bookmarks == {
            s: b.get("replication_key_value") for s, b in one.state["bookmarks"].items()
        }


@pytest.mark.parametrize("kill_after", [300, 1500])
def test_kill_9_while_streams_are_read_ahead_resumes_without_loss(tmp_path, kill_after):
    with whole_site() as site:
        config = tap_config(site, page_size=50, api_key=API_KEY)
        paths = {name: tmp_path / f"{name}.json" for name in ("config", "state")}
        paths["config"].write_text(json.dumps(config))
        args = ["--config", str(paths["config"])]
        first, state = run_until_killed(args, lambda m: True, kill_after)
        assert state is not None, "no STATE before the kill"
        paths["state"].write_text(json.dumps(state))
        second, _ = run_until_killed([*args, "--state", str(paths["state"])], lambda m: True, -1)
        for stream in CHECKED:
            got = ids([m["record"] for m in first + second if m["stream"] == stream])
            assert got == ids(site.records(stream)), stream


def test_a_stream_read_ahead_tells_its_progress_in_its_turn(caplog):
    caplog.set_level(logging.INFO)
    with whole_site() as site:
        run_tap(tap_config(site, page_size=50))
    began: dict[str, int] = {}
    for index, record in enumerate(caplog.records):
        message = record.getMessage()
        if message.startswith("Beginning "):
            began[message.split("'")[1]] = index
        elif " records in " in message or message.endswith(" records"):
            stream = message.split(":")[0]
            assert stream in began, f"{stream} told its progress before its turn: {message}"
    assert {"customers", "subscriptions", "events", "invoices"} <= set(began)
