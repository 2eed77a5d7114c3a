"""The fake Maxio site behaves the way Maxio's specs (spec/) and the real site do."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from maxio_sandbox import REGISTRY, Sandbox, SandboxConfig
from maxio_sandbox.__main__ import parse_args

KEY = "sandbox-key"
AUTH = (KEY, "x")
HISTORY_END = "2025-06-01T00:00:00+00:00"
ROOT = Path(__file__).resolve().parents[1]


def config(**overrides) -> SandboxConfig:
    values = {
        "api_key": KEY,
        "seed": 11,
        "counts": {"subscriptions": 260, "customers": 120, "invoices": 230},
        "history_end": HISTORY_END,
    }
    values.update(overrides)
    return SandboxConfig(**values)


@pytest.fixture(scope="module")
def site():
    with Sandbox(config()) as sb:
        yield sb


@pytest.fixture(scope="module")
def legacy():
    with Sandbox(config(invoicing="legacy", counts={"transactions": 120})) as sb:
        yield sb


def get(sb: Sandbox, path: str, **params) -> requests.Response:
    return requests.get(sb.url + path, params=params, auth=AUTH, timeout=10)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def walk(sb: Sandbox, path: str, wrapper: str, per_page: int, **params) -> list[dict]:
    """Every page of a list, in order."""
    rows: list[dict] = []
    for page in range(1, 1000):
        got = get(sb, path, page=page, per_page=per_page, **params).json()
        if not got:
            return rows
        rows += [item[wrapper] for item in got]
    raise AssertionError("never reached the end")


# --- auth, routing, envelopes, paging --------------------------------------------------


def test_bad_or_missing_key_gets_plain_text_401(site):
    for auth in (None, ("wrong", "x")):
        r = requests.get(f"{site.url}/subscriptions.json", auth=auth, timeout=10)
        assert r.status_code == 401
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.text == "HTTP Basic: Access denied."
    assert requests.get(f"{site.url}/site.json", auth=(KEY, "any"), timeout=10).status_code == 200


def test_unknown_path_is_an_empty_404(site):
    for path in ("/nope.json", "/subscriptions", "/statements.json", "/transactions.json"):
        r = get(site, path)
        assert (r.status_code, r.content) == (404, b"")


def test_envelopes_and_keys(site):
    assert get(site, "/site.json").json()["site"]["relationship_invoicing_enabled"] is True
    subs = get(site, "/subscriptions.json").json()
    assert len(subs) == 20
    assert all(list(item) == ["subscription"] for item in subs)
    assert isinstance(subs[0]["subscription"]["id"], int)
    customers = get(site, "/customers.json").json()
    assert len(customers) == 50  # customers page by 50
    assert all(list(item) == ["customer"] for item in customers)
    invoices = get(site, "/invoices.json").json()
    assert list(invoices) == ["invoices"]
    row = invoices["invoices"][0]
    assert "id" not in row
    assert re.fullmatch(r"inv_[2-9b-z]{13}", row["uid"])
    assert re.fullmatch(r"\d+\.\d\d", row["total_amount"])


# The keys of each object envelope besides the records, as the spec's responses have them.
PAGING_KEYS = {
    None: [],
    "counts": ["total_count", "current_page", "total_pages", "per_page"],
    "meta": ["meta"],
    "meta_pages": ["meta"],
    "pages": ["page", "per_page", "total_pages"],
    "feature_counts": ["total_count", "archived_count"],
}


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: f"{s.name}-{s.invoicing or 'any'}")
def test_every_registered_list_answers_in_its_envelope(site, legacy, spec):
    sb = legacy if spec.invoicing == "legacy" else site
    body = get(sb, sb.list_path(spec.name), per_page=3).json()
    items = body
    if spec.records_key:
        assert sorted(body) == sorted([spec.records_key, *PAGING_KEYS[spec.page_info]])
        items = body[spec.records_key]
    records = items
    if spec.wrapper:
        assert isinstance(items, list)
        assert items
        assert all(list(item) == [spec.wrapper] for item in items)
        records = [item[spec.wrapper] for item in items]
    assert records
    if spec.scalar:
        assert all(isinstance(code, str) and code for code in records)
        return
    key = spec.factory.key_field
    fields = key if isinstance(key, tuple) else (key,)
    assert all(r[field] is not None for r in records for field in fields)
    if isinstance(key, str):
        assert all(sb.key(spec.name, r) == r[key] for r in records)


def test_per_page_is_capped_at_200(site):
    assert len(get(site, "/subscriptions.json", per_page=500).json()) == 200
    assert len(get(site, "/subscriptions.json", per_page=7).json()) == 7


@pytest.mark.parametrize("page", ["0", "-1", "two"])
def test_bad_page_is_a_422(site, page):
    r = get(site, "/subscriptions.json", page=page)
    assert r.status_code == 422
    assert isinstance(r.json()["errors"][0], str)


def test_past_the_end_is_an_empty_page(site):
    assert get(site, "/subscriptions.json", page=99, per_page=200).json() == []
    assert get(site, "/invoices.json", page=99, per_page=200).json() == {"invoices": []}


def test_invoice_sub_arrays_only_when_asked(site):
    arrays = ("line_items", "discounts", "taxes", "credits", "payments", "refunds", "custom_fields")
    bare = get(site, "/invoices.json").json()["invoices"]
    assert not any(a in row for row in bare for a in arrays)
    some = get(site, "/invoices.json", line_items="true").json()["invoices"]
    assert all("line_items" in row and "taxes" not in row for row in some)
    full = get(site, "/invoices.json", **dict.fromkeys(arrays, "true")).json()["invoices"]
    assert all(all(a in row for a in arrays) for row in full)
    assert all(row["line_items"] for row in full)


def test_subscriptions_reference_existing_customers_and_products(site):
    customers = {c["id"] for c in site.records("customers")}
    for sub in site.records("subscriptions"):
        assert sub["customer"]["id"] in customers
        assert sub["product"]["product_family"]["id"]
        assert ("credit_card" in sub) + ("bank_account" in sub) <= 1


def test_seeding_is_deterministic():
    a = Sandbox(config(counts={"subscriptions": 40, "customers": 20, "invoices": 30}))
    b = Sandbox(config(counts={"subscriptions": 40, "customers": 20, "invoices": 30}))
    c = Sandbox(config(counts={"subscriptions": 40, "customers": 20, "invoices": 30}, seed=12))
    for name in ("subscriptions", "customers", "invoices"):
        assert a.records(name) == b.records(name)
        assert a.records(name) != c.records(name)


# --- dates and time zones -------------------------------------------------------------


def _lonely(sb: Sandbox, collection: str) -> dict:
    """A record whose updated_at second no other record has."""
    records = sb.records(collection)
    counts = Counter(r["updated_at"] for r in records)
    return next(r for r in records if counts[r["updated_at"]] == 1 and r["updated_at"][-6] == "-")


def _ids(sb: Sandbox, start: str, end: str, **params) -> set[int]:
    query = {"date_field": "updated_at", "start_datetime": start, "end_datetime": end}
    got = get(sb, "/subscriptions.json", per_page=200, **query, **params).json()
    return {item["subscription"]["id"] for item in got}


def test_datetime_bounds_are_inclusive_and_offset_aware(site):
    record = _lonely(site, "subscriptions")
    stamp = record["updated_at"]  # rendered in the site's zone, e.g. ...-05:00
    wall = stamp[:19]
    assert record["id"] in _ids(site, stamp, stamp)  # both ends inclusive
    assert record["id"] in _ids(site, wall, wall)  # no offset: the site's own zone
    assert record["id"] not in _ids(site, wall + "+00:00", wall + "+00:00")
    utc = instant(stamp).isoformat()
    assert record["id"] in _ids(site, utc, utc)
    # An unencoded "+" arrives as a space; it still means +00:00.
    raw = f"date_field=updated_at&start_datetime={utc}&end_datetime={utc}&per_page=200"
    got = requests.get(f"{site.url}/subscriptions.json?{raw}", auth=AUTH, timeout=10).json()
    assert record["id"] in {item["subscription"]["id"] for item in got}
    later = datetime.fromtimestamp(instant(stamp).timestamp() + 1, timezone.utc).isoformat()
    assert record["id"] not in _ids(site, later, later)


def test_datetime_bounds_count_milliseconds(site):
    record = next(
        r
        for r in site.records("subscriptions")
        if re.search(r":\d\d\.(?!999)\d{3}-", r["updated_at"])
    )
    stamp = record["updated_at"]  # e.g. 2024-01-02T03:04:05.123-05:00
    second = re.sub(r"\.\d+", "", stamp)
    # Both ends inclusive to the millisecond: the second itself ends before 05.123.
    assert record["id"] in _ids(site, stamp, stamp)
    assert record["id"] in _ids(site, second, stamp)
    assert record["id"] not in _ids(site, second, second)
    assert record["id"] not in _ids(site, stamp.replace(stamp[19:23], ".999"), stamp)


def test_whole_day_filters_use_the_site_zone(site):
    record = _lonely(site, "subscriptions")
    day = record["updated_at"][:10]  # the local date
    got = get(
        site,
        "/subscriptions.json",
        per_page=200,
        date_field="updated_at",
        start_date=day,
        end_date=day,
    )
    rows = [item["subscription"] for item in got.json()]
    assert record["id"] in {r["id"] for r in rows}
    assert all(r["updated_at"][:10] == day for r in rows)


def test_unsupported_date_field_is_ignored(site):
    narrow = {"start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2021-01-01T00:00:01Z"}
    assert get(site, "/subscriptions.json", date_field="updated_at", **narrow).json() == []
    everything = get(
        site, "/subscriptions.json", per_page=200, date_field="nonsense", **narrow
    ).json()
    assert len(everything) == 200
    # Invoices take datetimes only with created_at/updated_at.
    invoices = get(site, "/invoices.json", per_page=200, date_field="issue_date", **narrow).json()
    assert len(invoices["invoices"]) == 200


def test_invoice_day_fields_filter_whole_days(site):
    day = site.records("invoices")[50]["issue_date"]
    got = get(
        site, "/invoices.json", per_page=200, date_field="issue_date", start_date=day, end_date=day
    )
    rows = got.json()["invoices"]
    assert rows
    assert {r["issue_date"] for r in rows} == {day}


def test_offsets_follow_dst_and_records_straddle_it(site):
    # Milliseconds, where a second has them, are not part of what is checked here.
    stamps = [re.sub(r"\.\d+", "", r["updated_at"]) for r in site.records("subscriptions")]
    assert {s[-6:] for s in stamps} == {"-05:00", "-04:00"}
    # Spring forward: 01:59:59 EST is followed by 03:00:00 EDT.
    assert any(s.endswith("T01:59:59-05:00") for s in stamps)
    assert any(s.endswith("T03:00:00-04:00") for s in stamps)
    # Fall back: 01:xx happens twice, once per offset.
    assert any(re.search(r"T01:\d\d:\d\d-04:00$", s) for s in stamps)
    assert any(re.search(r"T01:\d\d:\d\d-05:00$", s) for s in stamps)


def test_tied_batch_shares_one_second(site):
    for name in ("subscriptions", "customers", "invoices"):
        counts = Counter(instant(r["updated_at"]) for r in site.records(name) if "updated_at" in r)
        # One invoice in seven is served without its updated_at.
        assert counts.most_common(1)[0][1] >= (25 if name == "invoices" else 30)


# --- ordering ---------------------------------------------------------------------------


def test_updated_at_sort_is_stable_and_complete(site):
    params = {"sort": "updated_at", "direction": "asc"}
    first = walk(site, "/subscriptions.json", "subscription", 17, **params)
    again = walk(site, "/subscriptions.json", "subscription", 17, **params)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    keys = [(instant(r["updated_at"]), r["id"]) for r in first]
    assert keys == sorted(keys)  # ties broken by id ascending
    assert len(set(keys)) == len(keys) == 260


def test_invoice_ties_break_by_uid(site):
    rows: list[dict] = []
    for page in range(1, 100):
        params = {"sort": "updated_at", "direction": "asc", "per_page": 13, "page": page}
        got = get(site, "/invoices.json", **params).json()["invoices"]
        if not got:
            break
        rows += got
    assert len({r["uid"] for r in rows}) == len(rows) == 230
    # Some invoices are served without updated_at, as in the spec's example.
    keys = [(instant(r["updated_at"]), r["uid"]) for r in rows if "updated_at" in r]
    assert keys == sorted(keys)
    assert len(keys) < len(rows)
    assert max(Counter(k[0] for k in keys).values()) >= 25  # the tie is really exercised


def test_default_orders(site):
    subs = [item["subscription"] for item in get(site, "/subscriptions.json", per_page=200).json()]
    keys = [(-instant(s["created_at"]).timestamp(), s["id"]) for s in subs]
    assert keys == sorted(keys)  # signup date, newest first
    customers = [i["customer"]["id"] for i in get(site, "/customers.json").json()]
    assert customers == sorted(customers)
    newest = [i["customer"]["id"] for i in get(site, "/customers.json", direction="desc").json()]
    assert newest == sorted(newest, reverse=True)
    numbers = [i["sequence_number"] for i in get(site, "/invoices.json").json()["invoices"]]
    assert numbers == sorted(numbers, reverse=True)


# --- legacy site ----------------------------------------------------------------------------


def test_legacy_site_shapes(legacy):
    assert get(legacy, "/site.json").json()["site"]["relationship_invoicing_enabled"] is False
    invoices = get(legacy, "/invoices.json").json()
    assert all(list(item) == ["invoice"] for item in invoices)
    assert all(isinstance(item["invoice"]["id"], int) for item in invoices)
    statements = get(legacy, "/statements.json").json()
    assert statements and all(list(item) == ["statement"] for item in statements)


def test_legacy_transactions_since_id_is_inclusive(legacy):
    newest_first = [i["transaction"]["id"] for i in get(legacy, "/transactions.json").json()]
    assert newest_first == sorted(newest_first, reverse=True)
    pivot = sorted(r["id"] for r in legacy.records("transactions"))[40]
    got = get(legacy, "/transactions.json", since_id=pivot, direction="asc", per_page=10).json()
    ids = [i["transaction"]["id"] for i in got]
    assert ids[0] == pivot
    assert ids == sorted(ids)


def test_events_since_id_and_direction(site):
    newest_first = [i["event"]["id"] for i in get(site, "/events.json").json()]
    assert newest_first == sorted(newest_first, reverse=True)
    pivot = newest_first[5]
    got = get(site, "/events.json", since_id=pivot, direction="asc").json()
    assert [i["event"]["id"] for i in got][:1] == [pivot]
    assert len(get(site, "/events.json", since_id=pivot, per_page=200).json()) == 6


def test_coupons_take_filters_as_filter_brackets(site):
    created = [instant(c["created_at"]) for c in site.records("coupons")]
    start = min(created).isoformat()
    params = {"filter[date_field]": "created_at", "filter[start_datetime]": start}
    assert len(get(site, "/coupons.json", **params).json()) == len(created)
    params["filter[end_datetime]"] = start
    assert len(get(site, "/coupons.json", **params).json()) == created.count(min(created))


def test_credit_notes_sub_arrays_only_when_asked(site):
    bare = get(site, "/credit_notes.json").json()["credit_notes"]
    assert bare and not any("line_items" in r or "applications" in r for r in bare)
    full = get(site, "/credit_notes.json", line_items="true", applications="true").json()
    assert all("line_items" in r and "applications" in r for r in full["credit_notes"])
    assert all(r["uid"].startswith("cn_") for r in full["credit_notes"])


# --- faults ------------------------------------------------------------------------------


def test_fail_next_429_with_retry_after_then_recovers(site):
    site.clear_log()
    site.fail_next(status=429, times=2, retry_after=7)
    for _ in range(2):
        r = get(site, "/site.json")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "7"
        assert r.text == "This request has been rate limited due to a usage violation."
    assert get(site, "/site.json").status_code == 200
    assert [e.status for e in site.requests] == [429, 429, 200]


def test_reset_closes_without_a_response(site):
    site.clear_log()
    site.fail_next(reset=True)
    with pytest.raises(requests.ConnectionError):
        get(site, "/customers.json")
    assert get(site, "/customers.json").status_code == 200
    assert [e.status for e in site.requests] == [0, 200]


def test_random_5xx_cycle_through_gateway_codes():
    with Sandbox(config(rate_5xx=1.0, counts={"subscriptions": 5})) as sb:
        statuses = [get(sb, "/site.json").status_code for _ in range(8)]
    assert statuses == [500, 502, 503, 504, 521, 522, 524, 500]


def test_over_max_in_flight_gets_429():
    with Sandbox(config(max_in_flight=2, latency=0.3, counts={"subscriptions": 5})) as sb:
        results: list[int] = []
        lock = threading.Lock()

        def hit() -> None:
            status = get(sb, "/site.json").status_code
            with lock:
                results.append(status)

        threads = [threading.Thread(target=hit) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results).count(200) >= 2
    assert 429 in results


def test_a_request_stops_counting_as_in_flight_before_its_answer_is_written(monkeypatch):
    # Maxio queues a request over the limit; a client that has read an answer and
    # sends its next request at once must not be refused for the one it just read,
    # however late the server's thread runs again after writing.
    release = Sandbox._release

    def late_release(self: Sandbox) -> None:
        time.sleep(0.05)
        release(self)

    monkeypatch.setattr(Sandbox, "_release", late_release)
    with Sandbox(config(max_in_flight=1, counts={"subscriptions": 5})) as sb:
        # A connection each, as a client with several connections open would.
        statuses = [get(sb, "/site.json").status_code for _ in range(5)]
    assert statuses == [200] * 5


def test_expected_host_mismatch_is_404():
    with Sandbox(config(expected_host="acme.chargify.com", counts={"subscriptions": 5})) as sb:
        wrong = get(sb, "/site.json")
        assert (wrong.status_code, wrong.content) == (404, b"")
        right = requests.get(
            f"{sb.url}/site.json", auth=AUTH, headers={"Host": "acme.chargify.com"}, timeout=10
        )
        assert right.status_code == 200


# --- a changing site --------------------------------------------------------------------


def test_mutate_bumps_updated_at_to_now_and_is_reported():
    with Sandbox(config()) as sb:
        before = sb.snapshot()
        started = int(time.time())
        touched = sb.mutate(updates=4, creates=2, collection="subscriptions")
        finished = int(time.time())
        changed = sb.changed_since(before)
        assert changed["subscriptions"] == touched["subscriptions"]
        assert len(touched["subscriptions"]) == 6
        assert not changed["customers"]
        assert len(touched["subscriptions"] - before.keys["subscriptions"]) == 2
        by_id = {r["id"]: r for r in sb.records("subscriptions")}
        for key in touched["subscriptions"]:
            stamp = by_id[key]["updated_at"]
            assert stamp[-6:] in ("-05:00", "-04:00")  # still rendered in the site's zone
            # The second of the change, with that second's milliseconds.
            assert started <= instant(stamp).timestamp() < finished + 1


def test_mutate_every_kth_list_request():
    with Sandbox(config(mutate_every=2)) as sb:
        before = sb.snapshot()
        get(sb, "/customers.json")
        get(sb, "/site.json")  # not a list: not counted
        assert not any(sb.changed_since(before).values())
        get(sb, "/customers.json")
        assert sb.changed_since(before)["customers"]


# --- the command line ---------------------------------------------------------------------


def test_cli_serves_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "maxio_sandbox", "--port", "0", "--api-key", "K",
         "--subscriptions", "30", "--customers", "10", "--invoices", "20"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(
            r"Maxio sandbox for site 'acme' at (http://127\.0\.0\.1:\d+) \(api key: K\)\n", line
        )
        assert m, line
        site = requests.get(f"{m[1]}/site.json", auth=("K", "x"), timeout=10)
        assert site.json()["site"]["subdomain"] == "acme"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_cli_names_the_invoicing_model_as_the_tap_does():
    assert parse_args([]).invoicing == "relationship"
    assert parse_args(["--invoicing", "legacy"]).invoicing == "legacy"


def test_the_sandbox_and_the_tap_import_nothing_of_each_other():
    for package, other in (("maxio_sandbox", "tap_maxio"), ("tap_maxio.tap", "maxio_sandbox")):
        code = f"import sys, {package}; print([m for m in sys.modules if m.startswith({other!r})])"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout == "[]\n", package


def test_records_are_json_ready(site):
    json.dumps(site.records("subscriptions")[:5])


# --- catalog, components and the lists around subscriptions ------------------------------


def _window(stamp: str) -> dict[str, str]:
    """A one-second window, bounds in UTC."""
    utc = instant(stamp).isoformat()
    return {"start_datetime": utc, "end_datetime": utc}


@pytest.mark.parametrize("path", ["/products_price_points.json", "/components_price_points.json"])
def test_price_points_filter_only_with_the_bracket_spelling(site, path):
    name = "product_price_points" if path.startswith("/products") else "component_price_points"
    records = site.records(name)
    target = Counter(r["updated_at"] for r in records).most_common()[-1][0]
    expected = {r["id"] for r in records if r["updated_at"] == target}
    window = _window(target)
    bracketed = {"filter[date_field]": "updated_at"}
    bracketed.update({f"filter[{k}]": v for k, v in window.items()})
    got = get(site, path, per_page=200, **bracketed).json()["price_points"]
    assert {r["id"] for r in got} == expected
    assert len(expected) < len(records)
    # The plain spelling is not this endpoint's: ignored, as an unknown parameter is.
    plain = get(site, path, per_page=200, date_field="updated_at", **window).json()
    assert len(plain["price_points"]) == len(records)


def test_components_filter_with_plain_parameters_and_cover_every_kind(site):
    records = site.records("components")
    assert {r["kind"] for r in records} == {
        "metered_component", "quantity_based_component", "on_off_component",
        "prepaid_usage_component", "event_based_component",
    }  # fmt: skip
    assert all(re.fullmatch(r"\d+\.\d\d", r["unit_price"] or "0.00") for r in records)
    target = records[3]["updated_at"]
    got = get(site, "/components.json", date_field="updated_at", **_window(target)).json()
    ids = {item["component"]["id"] for item in got}
    assert ids == {r["id"] for r in records if r.get("updated_at") == target}
    assert any("updated_at" not in r for r in records)  # as in the spec's example
    counts = Counter(r["component_id"] for r in site.records("component_price_points"))
    assert all(r["price_point_count"] == counts[r["id"]] >= 1 for r in records)


def test_invoice_events_since_id_is_exclusive_and_ascending(site):
    every = {"with_change_invoice_status": "true"}
    events = get(site, "/invoices/events.json", per_page=200, **every).json()
    assert [events[k] for k in ("page", "per_page")] == [1, 200]
    ids = [e["id"] for e in events["events"]]
    assert ids == sorted(ids) and len(ids) == len(site.records("invoice_events"))
    pivot = ids[10]
    params = {"since_id": pivot, "direction": "desc", "per_page": 20, **every}
    after = get(site, "/invoices/events.json", **params).json()
    got = [e["id"] for e in after["events"]]
    assert got == ids[11:31]  # exclusive, and ascending whatever the direction
    assert after["total_pages"] == -(-(len(ids) - 11) // 20)
    invoices = {r["uid"] for r in site.records("invoices")}
    for event in events["events"]:
        assert event["invoice"]["uid"] in invoices
        assert set(event) == {"id", "event_type", "event_data", "timestamp", "invoice"}


def test_usages_since_id_is_inclusive(site):
    usages = site.records("usages")
    busiest = Counter((u["subscription_id"], u["component_id"]) for u in usages).most_common(1)
    (sub_id, component_id), n = busiest[0]
    assert n >= 2
    path = f"/subscriptions/{sub_id}/components/{component_id}/usages.json"
    newest_first = [i["usage"]["id"] for i in get(site, path).json()]
    assert newest_first == sorted(newest_first, reverse=True) and len(newest_first) == n
    pivot = min(newest_first)
    # The spec documents no direction for usages: it is ignored.
    got = [i["usage"]["id"] for i in get(site, path, since_id=pivot, direction="asc").json()]
    assert got == newest_first  # the pivot itself comes back
    assert all(u["subscription_id"] == sub_id for u in usages if u["id"] in got)


def test_allocations_and_usages_only_for_their_component_kinds(site):
    kinds = Counter()
    for sc in site.records("subscription_components"):
        base = f"/subscriptions/{sc['subscription_id']}/components/{sc['component_id']}"
        allocations = [i["allocation"] for i in get(site, f"{base}/allocations.json").json()]
        usages = [i["usage"] for i in get(site, f"{base}/usages.json").json()]
        if sc["kind"] not in ("quantity_based_component", "on_off_component"):
            assert allocations == []
        if sc["kind"] not in ("metered_component", "prepaid_usage_component"):
            assert usages == []
        for row in allocations + usages:
            assert (row["subscription_id"], row["component_id"]) == (
                sc["subscription_id"],
                sc["component_id"],
            )
        if allocations:  # newest first; the newest set the current quantity
            assert allocations[0]["quantity"] == sc["allocated_quantity"]
            assert allocations[0]["timestamp"].endswith("Z")
        kinds[sc["kind"]] += bool(allocations or usages)
    assert set(kinds) == {
        "metered_component", "quantity_based_component", "on_off_component",
        "prepaid_usage_component", "event_based_component",
    }  # fmt: skip
    assert kinds["event_based_component"] == 0
    assert all(kinds[k] for k in kinds if k != "event_based_component")


@pytest.mark.parametrize(
    "path",
    [
        "/subscriptions/1/prepayments.json",
        "/subscriptions/1/service_credits/list.json",
        "/subscriptions/1/notes.json",
        "/subscriptions/1/proforma_invoices.json",
        "/subscriptions/abc/notes.json",
        "/coupons/1/codes.json",
        "/subscriptions/1/components/1/usages.json",
    ],
)
def test_child_lists_of_an_unknown_parent_are_404(site, path):
    r = get(site, path)
    assert (r.status_code, r.content) == (404, b"")


def test_allocations_of_a_component_not_on_the_subscription_are_404(site):
    sc = site.records("subscription_components")[0]
    on_it = {
        r["component_id"]
        for r in site.records("subscription_components")
        if r["subscription_id"] == sc["subscription_id"]
    }
    other = next(c["id"] for c in site.records("components") if c["id"] not in on_it)
    base = f"/subscriptions/{sc['subscription_id']}/components"
    assert get(site, f"{base}/{sc['component_id']}/allocations.json").status_code == 200
    assert get(site, f"{base}/{other}/allocations.json").status_code == 404
    assert get(site, f"{base}/{other}/usages.json").status_code == 404


def test_subscription_children_belong_to_their_parent(site):
    for name in ("prepayments", "proforma_invoices"):
        for record in site.records(name, flags=())[:5]:
            rows = get(site, site.list_path(name, record), per_page=200).json()[name]
            assert record in rows
            assert {r["subscription_id"] for r in rows} == {record["subscription_id"]}
    credits = site.records("service_credits")[0]
    rows = get(site, site.list_path("service_credits", credits)).json()["service_credits"]
    assert credits["id"] in {r["id"] for r in rows}
    note = site.records("subscription_notes")[0]
    notes = [i["note"] for i in get(site, site.list_path("subscription_notes", note)).json()]
    assert note in notes and {n["subscription_id"] for n in notes} == {note["subscription_id"]}
    known = {s["id"] for s in site.records("subscriptions")}
    for name in (
        "prepayments",
        "subscription_notes",
        "proforma_invoices",
        "subscription_components",
    ):
        per_parent = Counter(r["subscription_id"] for r in site.records(name))
        assert set(per_parent) <= known
        assert max(per_parent.values()) <= 3


def test_proforma_invoice_envelope_and_flags(site):
    record = site.records("proforma_invoices")[0]
    path = site.list_path("proforma_invoices", record)
    bare = get(site, path).json()
    assert bare["meta"]["status_code"] == 200
    assert bare["meta"]["total_count"] == len(bare["proforma_invoices"]) >= 1
    assert all("line_items" not in r for r in bare["proforma_invoices"])
    full = get(site, path, line_items="true").json()["proforma_invoices"]
    assert all(r["line_items"] and r["uid"].startswith("pf_") for r in full)


def test_coupon_subcodes_are_bare_strings_paged(site):
    codes: dict[int, list[str]] = {}
    for r in site.records("coupon_subcodes"):
        codes.setdefault(r["coupon_id"], []).append(r["code"])
    coupon_id, expected = max(codes.items(), key=lambda item: len(item[1]))
    assert len(expected) >= 2
    walked = []
    for page in range(1, 10):
        got = get(site, f"/coupons/{coupon_id}/codes.json", page=page, per_page=1).json()
        assert list(got) == ["codes"]
        if not got["codes"]:
            break
        walked += got["codes"]
    assert walked == expected
    assert all(re.fullmatch(r"[0-9A-Z]{6}", c) for c in walked)
    bare = next(c["id"] for c in site.records("coupons") if c["id"] not in codes)
    assert get(site, f"/coupons/{bare}/codes.json").json() == {"codes": []}


def test_subscription_components_sort_by_updated_at_and_filter(site):
    rows = []
    for page in range(1, 20):
        params = {"sort": "updated_at", "direction": "asc", "per_page": 7, "page": page}
        got = get(site, "/subscriptions_components.json", **params).json()
        if not got["subscriptions_components"]:
            break
        rows += got["subscriptions_components"]
    keys = [(instant(r["updated_at"]), r["id"]) for r in rows]
    assert keys == sorted(keys) and len(keys) == len(site.records("subscription_components"))
    assert max(Counter(k[0] for k in keys).values()) >= 2  # ties, broken by id
    target = rows[len(rows) // 2]["updated_at"]
    got = get(
        site, "/subscriptions_components.json", date_field="updated_at", per_page=200,
        **_window(target),
    ).json()["subscriptions_components"]  # fmt: skip
    assert {r["id"] for r in got} == {r["id"] for r in rows if r["updated_at"] == target}


def test_subscription_groups_and_metafields_envelopes(site):
    groups = get(site, "/subscription_groups.json", per_page=2, page=2).json()
    n = len(site.records("subscription_groups"))
    assert groups["meta"] == {"current_page": 2, "total_count": n}
    assert all(g["uid"].startswith("grp_") for g in groups["subscription_groups"])
    subs = {s["id"] for s in site.records("subscriptions")}
    for group in site.records("subscription_groups"):
        assert group["primary_subscription_id"] in group["subscription_ids"]
        assert set(group["subscription_ids"]) <= subs
    for resource in ("subscriptions", "customers"):
        body = get(site, f"/{resource}/metafields.json", per_page=2).json()
        n = len(site.records(f"{resource[:-1]}_metafields"))
        assert (body["total_count"], body["current_page"], body["per_page"]) == (n, 1, 2)
        assert body["total_pages"] == -(-n // 2)
        past = get(site, f"/{resource}/metafields.json", per_page=2, page=99).json()
        assert past["metafields"] == [] and past["total_count"] == n


def test_metadata_filter_on_an_updated_at_the_rows_do_not_show():
    with Sandbox(config(counts={"subscriptions": 60, "customers": 30, "invoices": 20})) as sb:
        for name, path in (
            ("subscription_metadata", "/subscriptions/metadata.json"),
            ("customer_metadata", "/customers/metadata.json"),
        ):
            before = sb.snapshot()
            values = {m["id"]: m["value"] for m in sb.records(name)}
            started = int(time.time())
            touched = sb.mutate(updates=3, creates=1, collection=name)[name]
            finished = int(time.time())
            assert sb.changed_since(before)[name] == touched and len(touched) == 4
            now = {m["id"]: m["value"] for m in sb.records(name)}
            assert all(now[k] != values[k] for k in touched & set(values))
            window = {
                "date_field": "updated_at",
                "start_datetime": datetime.fromtimestamp(started, timezone.utc).isoformat(),
                # Changes of the last second are stamped some milliseconds into it.
                "end_datetime": datetime.fromtimestamp(finished + 1, timezone.utc).isoformat(),
            }
            got = get(sb, path, per_page=200, **window).json()
            assert got["total_count"] == 4
            assert {m["id"] for m in got["metadata"]} == touched
            assert all("updated_at" not in m and "created_at" not in m for m in got["metadata"])
            assert all(set(m) == set(sb.records(name)[0]) for m in got["metadata"])
            # Ended a second before the changes: none of them (end bound in the site zone).
            local = datetime.fromtimestamp(started - 1, ZoneInfo("America/New_York"))
            early = get(sb, path, per_page=200, date_field="updated_at",
                        end_datetime=local.strftime("%Y-%m-%dT%H:%M:%S")).json()  # fmt: skip
            assert not touched & {m["id"] for m in early["metadata"]}
            assert early["total_count"] == len(sb.records(name)) - len(touched)
            ids = [m["id"] for m in get(sb, path, per_page=200).json()["metadata"]]
            assert ids == sorted(ids)


def test_mutate_covers_the_new_collections_with_updated_at():
    sb = Sandbox(config(counts={"subscriptions": 60, "customers": 30, "invoices": 20}))
    names = ("components", "product_price_points", "component_price_points",
             "subscription_components", "subscription_notes")  # fmt: skip
    for name in names:
        before = sb.snapshot()
        touched = sb.mutate(updates=2, creates=1, collection=name)[name]
        assert len(touched) == 3
        assert sb.changed_since(before)[name] == touched
        stamps = {sb.key(name, r): r.get("updated_at") for r in sb.records(name)}
        served = [stamps[k] for k in touched if stamps[k] is not None]
        assert served
        assert all(instant(s).timestamp() >= time.time() - 60 for s in served)
    before = sb.snapshot()
    sb.mutate(updates=0, creates=3, collection="invoice_events")
    new = sb.changed_since(before)["invoice_events"]
    assert len(new) == 3 and min(new) > max(before.keys["invoice_events"])


def test_legacy_site_has_no_invoice_events_or_proformas(legacy):
    assert get(legacy, "/invoices/events.json").status_code == 404
    sub = legacy.records("subscriptions")[0]["id"]
    assert get(legacy, f"/subscriptions/{sub}/proforma_invoices.json").status_code == 404
    assert get(legacy, f"/subscriptions/{sub}/notes.json").status_code == 200


def test_every_collection_renders_json_ready_records(site, legacy):
    for sb in (site, legacy):
        for name in sb.specs:
            records = sb.records(name)
            json.dumps(records)
            assert all(sb.key(name, r) is not None for r in records)
