"""Deletes reach the warehouse: tombstones, versions of full tables, archives, soft deletes."""

from __future__ import annotations

import io
import json
import typing as t
from contextlib import redirect_stderr, redirect_stdout

import pytest
from conftest import Run, run_tap, select_only, tap_config, wait_for_the_next_second

from tap_maxio.tap import TapMaxio

if t.TYPE_CHECKING:
    from maxio_sandbox import Sandbox

VERSIONED = {"payment_profiles", "reason_codes", "prepayments", "subscriptions"}


def run_until_error(config: dict, catalog: dict) -> tuple[Run, Exception | None]:
    """A sync's messages, also when it ends on an error."""
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error: Exception | None = None
    with redirect_stdout(stdout), redirect_stderr(io.StringIO()):
        try:
            TapMaxio(config=config, catalog=catalog).sync_all()
        except Exception as exc:
            error = exc
        stdout.flush()
    stdout.seek(0)
    return Run([json.loads(line) for line in stdout.read().splitlines()], ""), error


def activations(run: Run) -> dict[str, list[int]]:
    """The versions each stream activated, in order."""
    out: dict[str, list[int]] = {}
    for message in run.messages:
        if message["type"] == "ACTIVATE_VERSION":
            out.setdefault(message["stream"], []).append(message["version"])
    return out


def test_a_full_table_is_activated_once_after_its_last_record(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, emit_activate_version_messages=True)
    run = run_tap(config, catalog=select_only(config, VERSIONED))
    versions = activations(run)
    # Incremental streams are never versioned: a loader would drop their older rows.
    assert set(versions) == {"payment_profiles", "reason_codes", "prepayments"}
    for stream, [version] in versions.items():
        positions = [i for i, m in enumerate(run.messages) if m.get("stream") == stream]
        last_record = max(i for i in positions if run.messages[i]["type"] == "RECORD")
        assert run.messages[positions[-1]]["type"] == "ACTIVATE_VERSION", stream
        assert positions[-1] > last_record
        records = [m for m in run.messages if m["type"] == "RECORD" and m["stream"] == stream]
        assert {m.get("version") for m in records} == {version}, stream
    # The child is activated once, after every parent's records, not once per parent.
    assert len(run.records["prepayments"]) == len(sandbox.records("prepayments"))


def test_no_activation_unless_asked(sandbox: Sandbox) -> None:
    config = tap_config(sandbox)
    run = run_tap(config, catalog=select_only(config, VERSIONED))
    assert activations(run) == {}
    assert all("version" not in m for m in run.messages if m["type"] == "RECORD")


def test_a_skipped_stream_is_not_activated(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, emit_activate_version_messages=True)
    sandbox.fail_next(status=404, path="/reason_codes.json")
    run = run_tap(config, catalog=select_only(config, {"reason_codes", "payment_profiles"}))
    assert "reason_codes: skipped" in run.stderr or run.records["reason_codes"] == []
    assert set(activations(run)) == {"payment_profiles"}


def test_a_stream_that_failed_part_way_is_not_activated(sandbox: Sandbox) -> None:
    config = tap_config(sandbox, emit_activate_version_messages=True, max_retries=1)
    path = "/payment_profiles.json"
    served: list[int] = []

    def fail_from_the_second_page() -> None:
        served.append(1)
        if len(served) == 2:
            sandbox.fail_next(status=500, times=100, path=path)  # every try after page 1

    sandbox.before_each(path, fail_from_the_second_page)
    run, error = run_until_error(config, select_only(config, {"payment_profiles"}))
    assert error is not None
    assert 0 < len(run.records["payment_profiles"]) < len(sandbox.records("payment_profiles"))
    assert activations(run) == {}


def tombstones(run: Run, stream: str) -> dict[int, dict]:
    """The tombstones a run emitted for a stream, by id."""
    return {r["id"]: r for r in run.records[stream] if r.get("_sdc_deleted_at")}


def test_purged_customers_and_subscriptions_become_tombstones(sandbox: Sandbox) -> None:
    config = tap_config(sandbox)
    catalog = select_only(config, {"customers", "subscriptions"})
    first = run_tap(config, catalog=catalog)
    assert tombstones(first, "customers") == tombstones(first, "subscriptions") == {}
    customer = sandbox.records("customers")[3]["id"]
    owned = {s["id"] for s in sandbox.records("subscriptions") if s["customer"]["id"] == customer}
    deleted = sandbox.delete("customers", customer)
    alone = next(
        s["id"] for s in sandbox.records("subscriptions") if s["customer"]["id"] != customer
    )
    sandbox.delete("subscriptions", alone)
    wait_for_the_next_second()
    second = run_tap(config, state=first.state, catalog=catalog)
    assert set(tombstones(second, "customers")) == {customer}
    assert set(tombstones(second, "subscriptions")) == owned | {alone}
    assert deleted["subscriptions"] == owned
    for record in [*tombstones(second, "customers").values()]:
        assert {k for k, v in record.items() if v is not None} == {"id", "_sdc_deleted_at"}
    # Read once: a third run finds no new purge.
    third = run_tap(config, state=second.state, catalog=catalog)
    assert tombstones(third, "customers") == tombstones(third, "subscriptions") == {}


def test_tombstones_cost_one_request_per_page_of_delete_events(sandbox: Sandbox) -> None:
    config = tap_config(sandbox)
    catalog = select_only(config, {"customers"})
    first = run_tap(config, catalog=catalog)
    wait_for_the_next_second()
    sandbox.clear_log()
    run_tap(config, state=first.state, catalog=catalog)
    events = [r for r in sandbox.requests if r.path == "/events.json"]
    assert len(events) == 1
    assert events[0].query["filter"] == ["customer_delete"]


@pytest.mark.parametrize("stream", ["customers", "subscriptions"])
def test_the_schema_declares_the_soft_delete(stream: str, sandbox: Sandbox) -> None:
    schema = TapMaxio(config=tap_config(sandbox)).streams[stream].schema
    assert schema["properties"]["_sdc_deleted_at"]["format"] == "date-time"


def test_soft_deletes_archives_and_status_changes_arrive(sandbox: Sandbox) -> None:
    config = tap_config(sandbox)
    streams = {"subscription_metadata", "coupons", "invoice_events", "credit_notes"}
    catalog = select_only(config, streams)
    first = run_tap(config, catalog=catalog)
    assert all(r["_sdc_deleted_at"] is None for r in first.records["subscription_metadata"])
    metadata = sandbox.records("subscription_metadata")[0]["id"]
    sandbox.delete("subscription_metadata", metadata)
    coupon = sandbox.records("coupons")[0]["id"]
    sandbox.archive("coupons", coupon)
    event = sandbox.change_invoice_status()
    changed = sandbox.mutate(updates=2, creates=0, collection="credit_notes")["credit_notes"]
    wait_for_the_next_second()
    second = run_tap(config, state=first.state, catalog=catalog)
    # The bookmark is inclusive: rows of its second may come again, unchanged.
    deleted = {r["id"] for r in second.records["subscription_metadata"] if r["_sdc_deleted_at"]}
    assert deleted == {metadata}
    archived = {r["id"] for r in second.records["coupons"] if r["archived_at"]}
    assert archived == {coupon}
    assert [e["event_type"] for e in second.records["invoice_events"]] == ["change_invoice_status"]
    assert second.records["invoice_events"][0]["id"] == event
    # Credit notes are read in updated_at windows: only the changed ones again.
    assert {r["uid"] for r in second.records["credit_notes"]} == changed


def test_a_server_ignoring_since_id_does_not_loop_forever() -> None:
    from tap_maxio.deletes import STATE_KEY, Tombstones, _Event

    state = {STATE_KEY: 10}
    old = [_Event(id=i, key="customer_delete", created_at="2026-01-01T00:00:00Z") for i in (9, 10)]
    sent: list[object] = []

    class Host:
        def send(self, context: object, token: object, parse: object) -> list:
            sent.append(token)
            assert len(sent) < 5, "asked for the same page again and again"
            return old

        def get_context_state(self, context: object) -> dict:
            return state

        def remember(self, context: object, key: str, value: object) -> None:
            state[key] = value

    tombstones = Tombstones(Host(), {"customer_delete": "customer_id"}, "id", page_size=2)
    assert list(tombstones.read(None, ["id"])) == []
    assert len(sent) == 1
