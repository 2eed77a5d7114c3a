"""Deletes, archives and status changes reach a client the way Maxio shows them (issue 10)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests

from maxio_sandbox import Sandbox, SandboxConfig

KEY = "sandbox-key"
COUNTS = {"subscriptions": 120, "customers": 40, "invoices": 80, "events": 150}


@pytest.fixture
def sb():
    config = SandboxConfig(
        api_key=KEY, seed=7, counts=COUNTS, history_end="2025-06-01T00:00:00+00:00"
    )
    with Sandbox(config) as site:
        yield site


def get(sb: Sandbox, path: str, **params) -> requests.Response:
    return requests.get(sb.url + path, params=params, auth=(KEY, "x"), timeout=10)


def walk(sb: Sandbox, path: str, per_page: int, unwrap, **params) -> list[dict]:
    """Every page of a list, in order."""
    rows: list[dict] = []
    for page in range(1, 1000):
        got = unwrap(get(sb, path, page=page, per_page=per_page, **params).json())
        if not got:
            return rows
        rows += got
    raise AssertionError("never reached the end")


def wrapped(name: str):
    return lambda body: [item[name] for item in body]


def keyed(name: str):
    return lambda body: body[name]


def since(seconds_ago: int) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, timezone.utc).isoformat()


def _customer_with_subscriptions(sb: Sandbox, at_least: int) -> int:
    subs = sb.records("subscriptions", flags=())
    per_customer: dict[int, int] = {}
    for s in subs:
        per_customer[s["customer"]["id"]] = per_customer.get(s["customer"]["id"], 0) + 1
    # One in the middle of the id order, so that rows after it shift pages.
    ids = sorted(c for c, n in per_customer.items() if n >= at_least)
    return ids[len(ids) // 2]


def test_deleting_a_customer_takes_its_subscriptions_off_every_page(sb):
    customer = _customer_with_subscriptions(sb, 2)
    subs = {s["id"] for s in sb.records("subscriptions") if s["customer"]["id"] == customer}
    profiles = {p["id"] for p in sb.records("payment_profiles") if p["customer_id"] == customer}
    before = {s["id"] for s in sb.records("subscriptions")}
    deleted = sb.delete("customers", customer)
    assert deleted["customers"] == {customer}
    assert deleted["subscriptions"] == subs
    assert deleted.get("payment_profiles", set()) == profiles
    for sort in ("created_at", "id", "updated_at"):
        served = walk(sb, "/subscriptions.json", 7, wrapped("subscription"), sort=sort)
        ids = [s["id"] for s in served]
        assert len(ids) == len(set(ids)), "a row repeated across pages"
        assert set(ids) == before - subs, "a row skipped, or a deleted one served"
    customers = [c["id"] for c in walk(sb, "/customers.json", 9, wrapped("customer"))]
    assert customer not in customers and len(customers) == len(set(customers)) == 39
    assert {c["id"] for c in sb.records("customers")} == set(customers)
    pp = walk(sb, "/payment_profiles.json", 11, wrapped("payment_profile"))
    assert not profiles & {p["id"] for p in pp}
    assert customer not in {s["customer"]["id"] for s in sb.records("subscriptions")}
    # Counts in envelopes leave the deleted records out too.
    for hidden in ({}, {"with_deleted": "true"}):  # two ways through the table
        metadata = get(sb, "/subscriptions/metadata.json", per_page=3, **hidden).json()
        assert metadata["total_count"] == len(sb.records("subscription_metadata"))
        assert metadata["total_pages"] == -(-metadata["total_count"] // 3)
    assert deleted["subscription_metadata"], "the test needs a deleted subscription's metadata"


def test_deletions_log_events_that_filter_and_since_id_find(sb):
    newest = get(sb, "/events.json", direction="desc", per_page=1).json()[0]["event"]["id"]
    customer = _customer_with_subscriptions(sb, 2)
    subs = sorted(s["id"] for s in sb.records("subscriptions") if s["customer"]["id"] == customer)
    sb.delete("customers", customer)
    params = {"filter": "customer_delete,subscription_deletion", "since_id": newest,
              "direction": "asc"}  # fmt: skip
    events = walk(sb, "/events.json", 2, wrapped("event"), **params)
    assert [e["key"] for e in events] == ["subscription_deletion"] * len(subs) + ["customer_delete"]
    assert [e["subscription_id"] for e in events] == [*subs, None]
    assert {e["customer_id"] for e in events} == {customer}
    assert all(e["event_specific_data"] is None for e in events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and ids[0] > newest
    # The same through repeated filter[] values; none of the other keys.
    repeated = get(sb, "/events.json", per_page=200, since_id=newest, direction="asc",
                   **{"filter[]": ["customer_delete", "subscription_deletion"]}).json()  # fmt: skip
    assert [e["event"]["id"] for e in repeated] == ids
    only = get(sb, "/events.json", filter="customer_delete", per_page=200).json()
    assert [e["event"]["id"] for e in only] == ids[-1:]
    assert get(sb, "/events.json", filter="payment_success", since_id=ids[0]).json() == []
    # The newest event, then every event newest first, a page of one at a time.
    assert get(sb, "/events.json", direction="desc", per_page=1).json()[0]["event"]["id"] == ids[-1]
    desc = walk(sb, "/events.json", 1, wrapped("event"), **{**params, "direction": "desc"})
    assert [e["id"] for e in desc] == ids[::-1]
    assert get(sb, "/events.json", since_id=newest, per_page=1).json()[0]["event"]["id"] == ids[-1]
    assert {e["id"] for e in sb.records("events")} >= set(ids)


def test_a_deleted_subscription_is_a_404_as_a_parent_and_gets_no_new_records(sb):
    note = sb.records("subscription_notes")[0]
    sub = note["subscription_id"]
    path = f"/subscriptions/{sub}/notes.json"
    assert get(sb, path).status_code == 200
    customer = next(s["customer"]["id"] for s in sb.records("subscriptions") if s["id"] == sub)
    newest = max(e["id"] for e in sb.records("events"))
    deleted = sb.delete("subscriptions", sub)
    assert deleted["subscriptions"] == {sub} and note["id"] in deleted["subscription_notes"]
    assert get(sb, path).status_code == 404
    assert sub not in {n["subscription_id"] for n in sb.records("subscription_notes")}
    event = get(sb, "/events.json", since_id=newest + 1, direction="asc").json()[0]["event"]
    assert (event["key"], event["subscription_id"], event["customer_id"]) == (
        "subscription_deletion", sub, customer
    )  # fmt: skip
    with pytest.raises(KeyError):  # as for any unknown parent
        sb.crowd("subscription_notes", 2, path=path)
    before = sb.snapshot()
    for _ in range(5):
        sb.mutate(updates=40, creates=30)
        sb.mutate(updates=10, creates=10, collection="subscription_notes")
    changed = sb.changed_since(before)
    assert sub not in changed["subscriptions"]
    for name in ("events", "invoices", "credit_notes", "subscription_notes"):
        new = changed[name] - before.keys[name]
        records = [r for r in sb.records(name) if sb.key(name, r) in new]
        assert records and all(r["subscription_id"] != sub for r in records), name
    with pytest.raises(KeyError):
        sb.delete("subscriptions", sub)


def test_only_what_maxio_deletes_can_be_deleted(sb):
    for name in ("events", "invoices", "credit_notes", "products"):
        record = sb.records(name)[0]
        with pytest.raises(ValueError):
            sb.delete(name, sb.key(name, record))
    profile = sb.records("payment_profiles")[3]
    assert sb.delete("payment_profiles", profile["id"]) == {"payment_profiles": {profile["id"]}}
    served = walk(sb, "/payment_profiles.json", 200, wrapped("payment_profile"))
    assert profile["id"] not in {p["id"] for p in served}
    assert len(served) == len(sb.records("payment_profiles")) == COUNTS.get("payment_profiles", 99)


@pytest.mark.parametrize(
    ("name", "path"),
    [("subscription_metadata", "/subscriptions/metadata.json"),
     ("customer_metadata", "/customers/metadata.json")],
)  # fmt: skip
def test_deleted_metadata_shows_only_with_deleted(sb, name, path):
    everything = sb.records(name)
    gone = everything[len(everything) // 2]
    assert sb.delete(name, gone["id"]) == {name: {gone["id"]}}
    shown = get(sb, path, per_page=200).json()
    assert gone["id"] not in {m["id"] for m in shown["metadata"]}
    assert shown["total_count"] == len(everything) - 1
    with_deleted = get(sb, path, per_page=200, with_deleted="true").json()
    assert with_deleted["total_count"] == len(everything)
    served = {m["id"]: m for m in with_deleted["metadata"]}
    assert served[gone["id"]]["deleted_at"] is not None
    assert all(m["deleted_at"] is None for k, m in served.items() if k != gone["id"])
    recent = {"date_field": "updated_at", "start_datetime": since(60)}
    assert [m["id"] for m in get(sb, path, with_deleted="true", **recent).json()["metadata"]] == [
        gone["id"]
    ]
    assert get(sb, path, **recent).json()["metadata"] == []
    assert {m["id"]: m["deleted_at"] for m in sb.records(name)}[gone["id"]] is not None
    before = sb.snapshot()
    sb.mutate(updates=len(everything), creates=0, collection=name)
    assert gone["id"] not in sb.changed_since(before)[name]


def test_archived_catalog_items_show_only_when_asked(sb):
    lists = [
        ("coupons", "/coupons.json", wrapped("coupon"), "filter[include_archived]"),
        ("products", "/products.json", wrapped("product"), "include_archived"),
        ("components", "/components.json", wrapped("component"), "include_archived"),
        ("offers", "/offers.json", keyed("offers"), "include_archived"),
    ]
    for name, path, unwrap, flag in lists:
        every = [r["id"] for r in unwrap(get(sb, path, per_page=200).json())]
        assert len(every) == len(sb.records(name)), "seeded with nothing archived"
        sb.archive(name, every[1])
        shown = [r["id"] for r in walk(sb, path, 2, unwrap)]
        assert shown == every[:1] + every[2:], name
        asked = {r["id"]: r for r in walk(sb, path, 2, unwrap, **{flag: "true"})}
        assert list(asked) == every and asked[every[1]]["archived_at"] is not None, name
        assert instant(asked[every[1]]["updated_at"]) >= instant(since(60)), name
        with pytest.raises(ValueError):
            sb.archive(name, every[1])
    # Price point lists filter on archived_at only when asked: archived ones show.
    points = sb.records("product_price_points")
    sb.archive("product_price_points", next(p["id"] for p in points if not p["archived_at"]))
    served = walk(sb, "/products_price_points.json", 200, keyed("price_points"))
    assert len(served) == len(points)
    with pytest.raises(ValueError):
        sb.archive("customers", sb.records("customers")[0]["id"])


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_status_change_events_come_only_with_their_flag(sb):
    flag = {"with_change_invoice_status": "true"}
    seeded = get(sb, "/invoices/events.json", per_page=200, **flag).json()["events"]
    last = max(e["id"] for e in seeded)
    ids = [sb.change_invoice_status() for _ in range(3)]
    assert ids == sorted(ids) and ids[0] > last
    unflagged = walk(sb, "/invoices/events.json", 4, keyed("events"))
    assert all(e["event_type"] != "change_invoice_status" for e in unflagged)
    assert not set(ids) & {e["id"] for e in unflagged}
    flagged = walk(sb, "/invoices/events.json", 4, keyed("events"), **flag)
    everything = [e["id"] for e in flagged]
    assert everything == sorted(everything) and everything[-3:] == ids
    assert len(everything) == len(sb.records("invoice_events"))
    kept = [e["id"] for e in flagged if e["event_type"] != "change_invoice_status"]
    assert [e["id"] for e in unflagged] == kept
    assert len(kept) < len(everything) - 3, "seeded status changes hide too"
    pivot = unflagged[len(unflagged) // 2]["id"]
    after = walk(sb, "/invoices/events.json", 3, keyed("events"), since_id=pivot)
    assert [e["id"] for e in after] == [e["id"] for e in unflagged if e["id"] > pivot]
    page = get(sb, "/invoices/events.json", per_page=4).json()
    assert page["total_pages"] == -(-len(unflagged) // 4)
    event = flagged[-1]
    data = event["event_data"]
    assert event["event_type"] == "change_invoice_status"
    assert (data["from_status"], data["to_status"]) in {
        ("draft", "open"), ("pending", "open"), ("open", "processing"), ("processing", "paid")
    }  # fmt: skip
    assert event["invoice"]["status"] == data["to_status"]
    assert instant(event["invoice"]["updated_at"]) >= instant(since(60))
    typed = get(sb, "/invoices/events.json", event_types="change_invoice_status", **flag).json()
    assert [e["id"] for e in typed["events"]][-3:] == ids


def test_status_change_of_a_given_invoice(sb):
    invoice = next(i for i in sb.records("invoices") if i["status"] == "open")
    event_id = sb.change_invoice_status(invoice["uid"])
    got = get(sb, "/invoices/events.json", since_id=event_id - 1,
              with_change_invoice_status="true").json()["events"]  # fmt: skip
    assert [(e["id"], e["invoice"]["uid"]) for e in got] == [(event_id, invoice["uid"])]
    assert got[0]["event_data"]["from_status"] == "open"
    assert got[0]["event_data"]["to_status"] == "processing"
    paid = next(i for i in sb.records("invoices") if i["status"] == "paid")
    with pytest.raises(ValueError):
        sb.change_invoice_status(paid["uid"])


def test_credit_notes_filter_on_the_updated_at_they_do_not_show(sb):
    touched = sb.mutate(updates=3, creates=1, collection="credit_notes")["credit_notes"]
    assert len(touched) == 4
    notes = {n["uid"]: n for n in sb.records("credit_notes")}
    assert all("updated_at" not in n for n in notes.values()), "not in the spec's CreditNote"
    window = {"start_datetime": since(60)}
    updated = get(sb, "/credit_notes.json", per_page=200, date_field="updated_at", **window)
    assert {n["uid"] for n in updated.json()["credit_notes"]} == touched
    created = get(sb, "/credit_notes.json", per_page=200, **window).json()["credit_notes"]
    assert len(created) == 1 and created[0]["uid"] in touched


def test_new_child_records_go_to_live_parents_only(sb):
    subs = [s["id"] for s in sb.records("subscriptions")]
    for sub in subs[:-2]:
        sb.delete("subscriptions", sub)
    live = set(subs[-2:])
    before = sb.snapshot()
    sb.mutate(updates=0, creates=20, collection="subscription_notes")
    path = sb.crowd("subscription_notes", 3)
    new = sb.changed_since(before)["subscription_notes"]
    notes = [n for n in sb.records("subscription_notes") if n["id"] in new]
    assert len(notes) >= 3 and {n["subscription_id"] for n in notes} <= live
    assert int(path.split("/")[2]) in live
