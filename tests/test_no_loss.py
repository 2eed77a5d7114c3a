"""No record is lost while the site changes, throttles, fails or the tap is killed."""

from __future__ import annotations

import json
import typing as t

import pytest
from conftest import (
    API_KEY,
    run_tap,
    run_until_killed,
    sandbox_config,
    tap_config,
    wait_for_the_next_second,
)

from maxio_sandbox import Sandbox
from tap_maxio.retries import Throttle

if t.TYPE_CHECKING:
    from tap_maxio.tap import TapMaxio

STREAMS = {"subscriptions": "id", "customers": "id", "invoices": "uid", "customer_metadata": "id"}
BIG = {"subscriptions": 1500, "customers": 600, "invoices": 900, "customer_metadata": 900}


def all_keys(site: Sandbox, stream: str) -> set:
    return {site.key(stream, r) for r in site.records(stream)}


def test_nothing_lost_while_the_site_changes_every_5_requests():
    with Sandbox(sandbox_config(counts=BIG, mutate_every=5)) as site:
        at_start = site.snapshot()
        first = run_tap(tap_config(site, max_concurrent_requests=4))
        changed = site.changed_since(at_start)
        after_first = {stream: all_keys(site, stream) for stream in STREAMS}
        assert sum(len(keys) for keys in changed.values()) > 20, "the site barely changed"
        wait_for_the_next_second()
        before_second = site.snapshot()
        second = run_tap(tap_config(site), state=first.state)
        changed_again = site.changed_since(before_second)
        for stream, key in STREAMS.items():
            # Rows untouched during the sync are all in the run itself...
            unchanged = after_first[stream] - changed.get(stream, set())
            assert unchanged <= first.keys(stream, key)
            # ...and the next run brings every row changed during it (unless it
            # changed yet again while that run was reading).
            expected = all_keys(site, stream) - changed_again.get(stream, set())
            assert expected <= first.keys(stream, key) | second.keys(stream, key)


@pytest.mark.parametrize("fault", ["rate_429", "rate_5xx", "rate_reset"])
def test_nothing_lost_with_5_percent_faults(fault):
    with Sandbox(sandbox_config(counts=BIG, **{fault: 0.05})) as site:
        run = run_tap(tap_config(site))
        faults = [r for r in site.requests if r.status != 200]
        assert faults, "no fault was injected"
        for stream, key in STREAMS.items():
            assert run.keys(stream, key) == all_keys(site, stream)


def test_concurrency_stays_within_the_site_limit():
    # The default concurrency is Maxio's limit, used to the full and never past it.
    with Sandbox(sandbox_config(counts=BIG, latency=0.02, max_in_flight=4)) as site:
        run = run_tap(tap_config(site))
        assert [r.status for r in site.requests if r.status == 429] == []
        assert site.peak_in_flight == 4
        assert run.keys("subscriptions") == all_keys(site, "subscriptions")


def test_more_workers_than_the_throttle_allows_stay_within_it():
    # Eight workers share a throttle of four, as four workers share two once a 429
    # has halved the limit: the throttle alone keeps the site within its limit.
    def eight_workers_four_slots(tap: TapMaxio) -> None:
        tap.throttle = Throttle(4)

    with Sandbox(sandbox_config(latency=0.02, max_in_flight=4)) as site:
        run = run_tap(tap_config(site, max_concurrent_requests=8), prepare=eight_workers_four_slots)
        assert [r.status for r in site.requests if r.status == 429] == []
        assert site.peak_in_flight == 4
        assert run.keys("subscriptions") == all_keys(site, "subscriptions")


def test_too_much_concurrency_backs_off_and_finishes():
    with Sandbox(sandbox_config(counts=BIG, latency=0.02, max_in_flight=2)) as site:
        run = run_tap(tap_config(site, max_concurrent_requests=8))
        assert any(r.status == 429 for r in site.requests)
        for stream, key in STREAMS.items():
            assert run.keys(stream, key) == all_keys(site, stream)


def keys_until_killed(config_path, state_path, kill_after: int) -> tuple[set, dict | None]:
    """Run the tap, kill -9 it after `kill_after` records; return keys and last state."""
    args = ["--config", str(config_path)]
    if state_path is not None:
        args += ["--state", str(state_path)]
    records, state = run_until_killed(args, lambda m: m["stream"] in STREAMS, kill_after)
    keys = {(m["stream"], m["record"][STREAMS[m["stream"]]]) for m in records}
    return keys, state


@pytest.mark.parametrize("kill_after", [137, 1700])
def test_kill_9_and_resume_loses_nothing(tmp_path, kill_after):
    with Sandbox(sandbox_config(counts=BIG, latency=0.005)) as site:
        config = tmp_path / "config.json"
        config.write_text(json.dumps(tap_config(site, api_key=API_KEY)))
        first, state = keys_until_killed(config, None, kill_after)
        assert state is not None, "no STATE before the kill"
        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
        second, _ = keys_until_killed(config, state_path, kill_after=-1)
        for stream in STREAMS:
            expected = {(stream, k) for k in all_keys(site, stream)}
            assert expected <= first | second
