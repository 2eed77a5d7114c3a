"""The tap against what Maxio documents, where it is less kind than our own guesses.

Records without their bookmark field or their key, allocations in pages of 50,
usages in no documented order, and bodies that are not what the spec promises.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

import pytest
from conftest import run_cli, run_tap, sandbox_config, select_all, tap_config

from maxio_sandbox import Sandbox
from tap_maxio.client import utc_iso
from tap_maxio.tap import TapMaxio


def only(catalog: dict, *streams: str) -> dict:
    """The catalog with just these streams selected."""
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return [m for m in messages if text in m]


def test_records_without_updated_at_are_emitted_with_one_warning(shared_sandbox, caplog):
    run = run_tap(tap_config(shared_sandbox))
    for stream, key in (("invoices", "uid"), ("components", "id")):
        served = shared_sandbox.records(stream)
        assert any("updated_at" not in r for r in served), f"{stream}: all records dated"
        assert run.keys(stream, key) == {r[key] for r in served}
        undated = sum(1 for r in run.records[stream] if r.get("updated_at") is None)
        assert undated == sum(1 for r in served if "updated_at" not in r)
        assert len(warnings_about(caplog, f"{stream}: {undated} records had no updated_at")) == 1
        stamps = [r["updated_at"] for r in run.records[stream] if r.get("updated_at")]
        assert run.state["bookmarks"][stream]["replication_key_value"] == max(stamps)
    assert not warnings_about(caplog, "New replication value is null")


def test_a_bookmark_moves_forward_only_and_never_past_the_sync(shared_sandbox):
    # A row changed while it was read can come back dated after the sync's upper
    # bound: past it, rows changed during the sync would be skipped next time.
    tap = TapMaxio(config=tap_config(shared_sandbox))
    stream = tap.streams["customers"]
    bound = utc_iso(tap.sync_started_at)
    stream._increment_stream_state({"id": 1, "updated_at": "2024-01-01T00:00:05.5+00:00"})
    stream._increment_stream_state({"id": 2, "updated_at": "2024-01-01T00:00:05+00:00"})
    assert stream.stream_state["replication_key_value"] == "2024-01-01T00:00:05.5+00:00"
    stream._increment_stream_state({"id": 3, "updated_at": "2999-01-01T00:00:00+00:00"})
    assert stream.stream_state["replication_key_value"] == bound
    stream._increment_stream_state({"id": 4})
    assert stream.stream_state["replication_key_value"] == bound


def test_allocations_are_read_in_pages_of_50_with_only_page():
    with Sandbox(sandbox_config()) as site:
        path = site.crowd("allocations", 137)
        # Pages of 200 asked for: a page of 50 must still count as full.
        config = tap_config(site, page_size=200)
        run = run_tap(config, catalog=select_all(config))
        served = site.records("allocations")
        assert sum(1 for r in served if "allocation_id" not in r) > 0
        keys = {site.key("allocations", r) for r in run.records["allocations"]}
        assert keys == {site.key("allocations", r) for r in served}
        mine = [r for r in site.requests if r.path == path]
        assert all(list(r.query) == ["page"] for r in mine)
        # Pages after the first are asked for several at once: past the short
        # page 3, at most the 3 other requests in flight are read for nothing.
        pages = sorted(int(r.query["page"][0]) for r in mine)
        assert pages == list(range(1, len(pages) + 1))
        assert 3 <= len(pages) <= 3 + 3
        sub_id, component_id = int(path.split("/")[2]), int(path.split("/")[4])
        crowded = [
            r
            for r in run.records["allocations"]
            if (r["subscription_id"], r["component_id"]) == (sub_id, component_id)
        ]
        assert len(crowded) >= 137


def test_usages_are_read_whole_whatever_their_order():
    with Sandbox(sandbox_config()) as site:
        path = site.crowd("usages", 60)
        config = tap_config(site)  # pages of 25: the crowded component spans three
        catalog = select_all(config)
        first = run_tap(config, catalog=catalog)
        served = site.records("usages")
        assert first.keys("usages") == {r["id"] for r in served}
        assert len(first.records["usages"]) == len(served), "a usage emitted twice"
        sub_id, component_id = int(path.split("/")[2]), int(path.split("/")[4])
        (partition,) = [
            p
            for p in first.state["bookmarks"]["usages"]["partitions"]
            if p["context"] == {"subscription_id": sub_id, "component_id": component_id}
        ]
        ids = [r["id"] for r in served if r["component_id"] == component_id]
        assert partition["replication_key_value"] == max(ids)
        new = site.crowd("usages", 3)
        second = run_tap(config, state=first.state, catalog=catalog)
        assert second.keys("usages") == {
            r["id"] for r in site.records("usages") if r["id"] not in first.keys("usages")
        }
        assert new


HTML = "<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (HTML, "/customers.json"),
        ('[{"customer": {"id": 1, "first_na', "/customers.json"),
        (HTML, "/payment_profiles.json"),
        ('{"invoices": [{"uid": "inv_1", "numb', "/invoices.json"),
    ],
    ids=["html-window", "truncated-window", "html-full-table", "truncated-envelope"],
)
def test_a_body_that_is_not_json_is_retried(sandbox, caplog, body, path):
    sandbox.fail_next(status=200, body=body, times=2, path=path)
    stream = {"/customers.json": "customers", "/payment_profiles.json": "payment_profiles"}.get(
        path, "invoices"
    )
    run = run_tap(tap_config(sandbox))
    key = "uid" if stream == "invoices" else "id"
    assert run.keys(stream, key) == {r[key] for r in sandbox.records(stream)}
    assert [r.status for r in sandbox.requests if r.path == path][:2] == [200, 200]
    assert len(warnings_about(caplog, "the response is not JSON")) == 2


@pytest.mark.parametrize(
    ("body", "path", "shown"),
    [
        (HTML, "/customers.json", "the response is not JSON"),
        ('{"customers": []}', "/customers.json", "unexpected response"),
        ('{"something": []}', "/invoices.json", "missing required field `invoices`"),
        ('[{"invoices": []}]', "/invoices.json", "unexpected response"),
        ("[1, 2, 3]", "/payment_profiles.json", "expected every item"),
        ('{"events": [1]}', "/invoices/events.json", "expected every record"),
        ('{"subscription_groups": {"uid": "grp_1"}}', "/subscription_groups.json", "list"),
        ('{"meta": {}}', "/offers.json", "expected an object with `offers`"),
    ],
    ids=[
        "html-always",
        "object-for-list",
        "no-records-key",
        "list-for-object",
        "scalar-items",
        "scalar-records",
        "object-for-records",
        "no-records-key-full-table",
    ],
)
def test_a_bad_body_ends_on_one_line_that_names_the_stream(sandbox, tmp_path, body, path, shown):
    # Every try gets the bad body: retried (not JSON) or not (the wrong shape).
    sandbox.fail_next(status=200, body=body, times=9, path=path)
    stream = {
        "/customers.json": "customers",
        "/invoices.json": "invoices",
        "/payment_profiles.json": "payment_profiles",
        "/invoices/events.json": "invoice_events",
        "/subscription_groups.json": "subscription_groups",
        "/offers.json": "offers",
    }[path]
    result = run_cli(tap_config(sandbox, max_retries=2), tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"{stream}: HTTP 200 from 127.0.0.1{path}" in last
    assert shown in last
    # What was committed before the failure stands: each STATE line is whole.
    states = [json.loads(line) for line in result.stdout.splitlines() if '"STATE"' in line]
    assert states
    tries = Counter(r.path for r in sandbox.requests)[path]
    assert tries == (3 if "not JSON" in shown else 1)


def test_no_allocation_or_usage_lost_while_the_component_grows():
    with Sandbox(sandbox_config()) as site:
        paths = {"allocations": site.crowd("allocations", 137), "usages": site.crowd("usages", 60)}
        at_start = {c: {site.key(c, r) for r in site.records(c)} for c in paths}
        # Before each page is served, the component gains a record: newest first,
        # every later page shifts by one.
        for collection, path in paths.items():
            site.before_each(path, lambda c=collection, p=path: site.crowd(c, 1, path=p))
        config = tap_config(site, page_size=25)
        catalog = only(select_all(config), "subscription_components", "allocations", "usages")
        first = run_tap(config, catalog=catalog)
        for path in paths.values():
            site.before_each(path, None)
        second = run_tap(config, state=first.state, catalog=catalog)
        for collection in paths:
            read = Counter(site.key(collection, r) for r in first.records[collection])
            assert at_start[collection] <= set(read), f"{collection}: a record lost"
            now = {site.key(collection, r) for r in site.records(collection)}
            assert len(now) > len(at_start[collection]), f"{collection} did not grow"
            again = {site.key(collection, r) for r in second.records[collection]}
            assert now <= set(read) | again
        # Shifted pages repeat usages; each is emitted once all the same.
        assert max(Counter(r["id"] for r in first.records["usages"]).values()) == 1


def test_no_allocation_lost_when_a_later_page_is_answered_first():
    # Allocations come newest first: each one added shifts the later pages down.
    # Page 2 answered last, after pages 3 and 4 were, would skip the rows between.
    with Sandbox(sandbox_config()) as site:
        path = site.crowd("allocations", 180)
        at_start = {site.key("allocations", r) for r in site.records("allocations")}
        requests: list[int] = []

        def grow() -> None:
            requests.append(1)
            if len(requests) == 2:
                time.sleep(0.3)
            site.crowd("allocations", 1, path=path)

        site.before_each(path, grow)
        config = tap_config(site)
        run = run_tap(
            config, catalog=only(select_all(config), "subscription_components", "allocations")
        )
        read = {site.key("allocations", r) for r in run.records["allocations"]}
        assert at_start <= read


def test_every_request_is_counted_in_the_sdk_metrics(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    config = tap_config(sandbox)
    run_tap(config, catalog=select_all(config))
    counted = 0
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("METRIC: ") and '"http_request_count"' in message:
            counted += json.loads(message.removeprefix("METRIC: "))["value"]
    assert counted == len(sandbox.requests) > 100
