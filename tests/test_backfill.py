"""A first sync of customers reads them by creation: few requests, nothing lost or stale."""

from __future__ import annotations

import json
import math
import typing as t

import pytest
from conftest import Run, run_tap, sandbox_config, select_only, tap_config, wait_for_the_next_second

from maxio_sandbox import Sandbox
from tap_maxio.readers import BACKFILL
from tap_maxio.windows import parse_timestamp

PATH = "/customers.json"


def first_sync_config(site: Sandbox, **overrides: t.Any) -> dict:
    """Settings of a first sync that backfills: no start_date."""
    config = tap_config(site, **overrides)
    del config["start_date"]
    return config


def sync(site: Sandbox, config: dict, state: dict | None = None) -> Run:
    return run_tap(config, state=state, catalog=select_only(config, {"customers"}))


def site_view(site: Sandbox) -> dict[int, t.Any]:
    """Each customer of the site: its updated_at, as an instant."""
    return {r["id"]: parse_timestamp(r["updated_at"]) for r in site.records("customers")}


def loaded(*runs: Run) -> dict[int, t.Any]:
    """What a loader holds after the runs: each record's last version, tombstones applied."""
    view: dict[int, t.Any] = {}
    for run in runs:
        for record in run.records["customers"]:
            if record.get("_sdc_deleted_at"):
                view.pop(record["id"], None)
            else:
                view[record["id"]] = parse_timestamp(record["updated_at"])
    return view


def windows(site: Sandbox) -> list[dict[str, list[str]]]:
    return [r.query for r in site.requests if r.path == PATH]


@pytest.mark.parametrize(
    ("customers", "tied", "seed"), [(5000, 30, 7), (5000, 300, 3), (1200, 30, 1), (3000, 0, 5)]
)
def test_a_first_sync_reads_by_creation_in_close_to_one_request_per_page(customers, tied, seed):
    counts = {"customers": customers, "subscriptions": 10, "invoices": 10}
    with Sandbox(sandbox_config(counts=counts, tied_batch=tied, seed=seed)) as site:
        config = first_sync_config(site, page_size=200)
        first = sync(site, config)
        assert loaded(first) == site_view(site)
        queries = windows(site)
        assert {(q["date_field"][0], q["direction"][0]) for q in queries} == {("created_at", "asc")}
        assert len(queries) <= 1.1 * math.ceil(customers / 200) + 2
        state = first.state["bookmarks"]["customers"]
        assert BACKFILL not in state
        # The next run reads what changed since the first began.
        site.mutate(updates=20, creates=5, collection="customers")
        wait_for_the_next_second()
        site.clear_log()
        second = sync(site, config, first.state)
        assert {q["date_field"][0] for q in windows(site)} == {"updated_at"}
        assert windows(site)[0]["start_datetime"] == [state["replication_key_value"]]
        assert loaded(first, second) == site_view(site)
        assert len(second.records["customers"]) < 40


def change_customers(site: Sandbox) -> t.Callable[[], None]:
    """Before every third request: customers updated, created and deleted."""
    count = [0]

    def action() -> None:
        count[0] += 1
        if count[0] % 3:
            return
        site.mutate(updates=4, creates=2, collection="customers")
        live = sorted(r["id"] for r in site.records("customers"))
        site.delete("customers", live[(count[0] * 37) % len(live)])

    return action


def test_changes_during_a_backfill_are_neither_lost_nor_left_stale():
    counts = {"customers": 1500, "subscriptions": 10, "invoices": 10}
    with Sandbox(sandbox_config(counts=counts)) as site:
        # A bulk import: one second created more customers than a page holds.
        site.mutate(updates=0, creates=120, collection="customers")
        wait_for_the_next_second()
        config = first_sync_config(site, page_size=50)
        at_start = site_view(site)
        site.before_each(PATH, change_customers(site))
        first = sync(site, config)
        site.before_each(PATH, None)
        changed = {k for k, v in site_view(site).items() if at_start.get(k) != v}
        assert len(changed) > 20, "the site barely changed"
        assert {q["date_field"][0] for q in windows(site)} == {"created_at"}
        assert any(q.get("page") != ["1"] for q in windows(site)), "no crowded second"
        wait_for_the_next_second()
        second = sync(site, config, first.state)
        assert loaded(first, second) == site_view(site)


def cut_midway(run: Run) -> tuple[Run, dict]:
    """The run as if killed halfway through its customers: what it emitted, its STATE."""
    states = [
        i
        for i, m in enumerate(run.messages)
        if m["type"] == "STATE" and BACKFILL in m["value"]["bookmarks"].get("customers", {})
    ]
    cut = states[len(states) // 2]
    return Run(run.messages[:cut], ""), run.messages[cut]["value"]


def test_a_backfill_killed_midway_resumes_and_loses_nothing():
    counts = {"customers": 1500, "subscriptions": 10, "invoices": 10}
    with Sandbox(sandbox_config(counts=counts)) as site:
        config = first_sync_config(site, page_size=50)
        killed, state = cut_midway(sync(site, config))
        reached = state["bookmarks"]["customers"][BACKFILL]
        assert 100 < len(killed.records["customers"]) < 1400
        # Customers already emitted change before the run resumes.
        for record in killed.records["customers"][::50]:
            site.delete("customers", record["id"])
        site.mutate(updates=30, creates=5, collection="customers")
        wait_for_the_next_second()
        site.clear_log()
        resumed = sync(site, config, state)
        queries = windows(site)
        assert queries[0]["date_field"] == ["created_at"]
        assert queries[0]["start_datetime"] == [reached]
        assert queries[-1]["date_field"] == ["updated_at"]
        assert len(resumed.records["customers"]) < 1500
        assert loaded(killed, resumed) == site_view(site)
        assert BACKFILL not in resumed.state["bookmarks"]["customers"]


def test_start_date_keeps_the_first_sync_on_updated_at():
    # Records updated since start_date are not a range of creation times.
    with Sandbox(sandbox_config()) as site:
        config = tap_config(site, start_date="2024-01-01T00:00:00Z")
        run = sync(site, config)
        assert {q["date_field"][0] for q in windows(site)} == {"updated_at"}
        since = parse_timestamp(config["start_date"])
        expected = {k for k, v in site_view(site).items() if v >= since}
        assert set(loaded(run)) == expected


CREDIT_NOTES = "/credit_notes.json"


def credit_notes_view(site: Sandbox) -> dict[str, str]:
    """Each credit note of the site: its status, which changes as it is applied."""
    return {r["uid"]: json.dumps(r, sort_keys=True) for r in site.records("credit_notes")}


def test_credit_notes_are_read_by_creation_in_pages_at_once_and_changes_reach_the_next_run():
    # The spec sorts credit notes by sequence_number, and filters them on created_at:
    # the rows created before the sync keep their pages whatever changes.
    counts = {"credit_notes": 1000, "subscriptions": 200, "invoices": 50}
    with Sandbox(sandbox_config(counts=counts, latency=0.01, max_in_flight=4)) as site:
        config = first_sync_config(site, page_size=50)
        catalog = select_only(config, {"credit_notes"})
        changes = [0]

        def change() -> None:
            changes[0] += 1
            if changes[0] % 3 == 0:
                site.mutate(updates=5, creates=2, collection="credit_notes")

        site.before_each(CREDIT_NOTES, change)
        first = run_tap(config, catalog=catalog)
        site.before_each(CREDIT_NOTES, None)
        queries = [r.query for r in site.requests if r.path == CREDIT_NOTES]
        assert {(q["date_field"][0], q["direction"][0]) for q in queries} == {("created_at", "asc")}
        assert len(queries) <= math.ceil(1000 / 50) + 4
        assert site.peak_in_flight >= 3
        wait_for_the_next_second()
        second = run_tap(config, state=first.state, catalog=catalog)
        view: dict[str, str] = {}
        for run in (first, second):
            for record in run.records["credit_notes"]:
                view[record["uid"]] = json.dumps(record, sort_keys=True)
        assert view == credit_notes_view(site)
