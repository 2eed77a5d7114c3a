"""streams.toml is read into a typed declaration: a mistake in it stops on one line."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timezone

import msgspec
import pytest
import requests
from conftest import run_cli

from tap_maxio.declaration import DeclarationError, load, parse
from tap_maxio.streams import declare
from tap_maxio.tap import TapMaxio

GOOD = {"path": "/x.json", "primary_keys": ["id"], "wrapper": "x"}


def test_every_shipped_stream_is_declared():
    specs = load()
    assert len(specs) == 35
    assert specs["usages"].replication_key == "id"
    assert specs["customers"].replication_key == "updated_at"
    assert specs["site"].replication_key is None


@pytest.mark.parametrize(
    ("table", "shown"),
    [
        ({"replicaton": "updated_at"}, "unknown field `replicaton`; allowed keys: path,"),
        ({"sort_parm": {"sort": "updated_at"}}, "unknown field `sort_parm`"),
        ({"replication": "updatedat"}, "allowed values: updated_at, since_id, window, full_table"),
        ({"since_id": "Inclusive"}, "'Inclusive' - at `$.since_id`; allowed values: inclusive"),
        ({"filter_style": "brackets"}, "allowed values: plain, filter"),
        ({"invoicing": "ri"}, "allowed values: relationship, legacy"),
        ({"paged": "no"}, "`$.paged`; allowed type: bool"),
        ({"parent": "nowhere"}, "parent 'nowhere' is not a stream"),
        ({"wrapper": None}, "give wrapper, records_key or both"),
        ({"count_key": "total_count"}, "count_key needs records_key"),
        ({"backfill": {"date_field": "created_at"}}, "`$.backfill`; allowed keys: date_field,"),
        (
            {"backfill": {"date_field": "updated_at", "sort_param": {"direction": "asc"}}},
            "`$.backfill.date_field`; allowed values: created_at",
        ),
        (
            {"backfill": {"date_field": "created_at", "sort_param": {}}},
            "length >= 1 - at `$.backfill.sort_param`",
        ),
        (
            {"backfill": {"date_field": "created_at", "sort_param": {"direction": "asc"}}},
            'backfill needs replication = "updated_at"',
        ),
    ],
)
def test_a_mistake_names_the_stream_the_key_and_what_is_allowed(table, shown):
    with pytest.raises(DeclarationError) as caught:
        parse("coupons", {**GOOD, **table}, {"coupons"})
    assert str(caught.value).startswith("streams.toml [coupons]: ")
    assert shown in str(caught.value)


def test_a_backfill_is_declared_and_asks_for_its_order():
    specs = load()
    backfill = specs["customers"].backfill
    assert backfill is not None
    assert (backfill.date_field, backfill.sort_param) == ("created_at", {"direction": "asc"})
    assert specs["customers"].order("created_at", tie=True) == {"direction": "asc"}
    assert specs["customers"].order("updated_at", tie=False) == {}
    assert specs["subscriptions"].order("updated_at", tie=True) == {
        "sort": "id",
        "direction": "asc",
    }


def test_a_misspelled_key_stops_discovery_on_one_line(tmp_path):
    bad = tmp_path / "streams.toml"
    bad.write_text('[customers]\npath = "/customers.json"\nprimary_keys = ["id"]\n'
                   'wrapper = "customer"\nreplicaton = "updated_at"\n')  # fmt: skip
    # The CLI, with streams.toml swapped for the bad one.
    script = textwrap.dedent(f"""
        import pathlib, tap_maxio.declaration as d, tap_maxio.streams as s
        s.load = lambda path=None: d.load(pathlib.Path({str(bad)!r}))
        from tap_maxio.tap import TapMaxio
        TapMaxio.cli()
    """)
    config = {"subdomain": "acme", "api_key": "k"}
    result = run_cli(config, tmp_path, "--discover", script=script, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "streams.toml [customers]: Object contains unknown field `replicaton`" in last


def test_the_catalog_states_how_each_stream_reads():
    specs = load()
    catalog = TapMaxio(config={"subdomain": "acme", "api_key": "k"}).catalog_dict
    for entry in catalog["streams"]:
        spec = specs[entry["tap_stream_id"]]
        method = "FULL_TABLE" if spec.replication == "full_table" else "INCREMENTAL"
        assert entry["replication_method"] == method, entry["tap_stream_id"]


def test_records_key_with_wrapper_reads_an_object_holding_wrappers():
    # /subscription_groups/{uid}/prepayments.json: {"prepayments": [{"prepayment": {...}}]}
    table = {**GOOD, "records_key": "prepayments", "wrapper": "prepayment"}
    spec = parse("subscription_group_prepayments", {**table, "replication": "updated_at"}, ())
    tap = TapMaxio(config={"subdomain": "acme", "api_key": "k"})
    stream = declare("subscription_group_prepayments", spec)(tap=tap)
    records = [{"id": 1, "updated_at": "2024-01-01T00:00:00-05:00"}, {"id": 2}]
    body = {"prepayments": [{"prepayment": r} for r in records]}
    assert stream.extract_records(body) == records
    response = requests.Response()
    response._content = json.dumps(body).encode()
    page = stream.page_stamps(response)
    assert page.stamps() == [datetime(2024, 1, 1, 5, tzinfo=timezone.utc), None]
    assert page.records() == records
    for shape in (
        {"prepayments": records},  # not wrapped
        [{"prepayment": records[0]}],  # no envelope
        {"prepayments": {"prepayment": records[0]}},  # one wrapper, not an array
    ):
        with pytest.raises(msgspec.ValidationError):
            stream.extract_records(shape)


def test_the_catalog_forces_what_a_stream_cannot_change():
    # A full-table stream cannot be read incrementally, nor a window stream whole.
    specs = load()
    catalog = TapMaxio(config={"subdomain": "acme", "api_key": "k"}).catalog_dict
    forced = {"full_table": "FULL_TABLE", "window": "INCREMENTAL"}
    for entry in catalog["streams"]:
        spec = specs[entry["tap_stream_id"]]
        metadata = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
        assert metadata.get("forced-replication-method") == forced.get(spec.replication), spec
        keys = [spec.replication_key] if spec.replication_key else None
        assert metadata.get("valid-replication-keys") == keys, spec
        assert list(metadata["table-key-properties"]) == spec.primary_keys, spec
