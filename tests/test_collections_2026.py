"""The 2026 spec's collections: feature templates, component features, scheduled
renewals and subscription group prepayments, against the sandbox."""

from __future__ import annotations

import re
import typing as t

import pytest
import requests
from conftest import API_KEY, run_tap, sandbox_config, select_all, tap_config
from test_documented_behaviour import only, warnings_about

from maxio_sandbox import Sandbox
from maxio_sandbox.__main__ import parse_args
from tap_maxio.client import MaxioAPIError
from tap_maxio.tap import TapMaxio

if t.TYPE_CHECKING:
    from tap_maxio.client import MaxioStream

NEW = ("features", "component_features", "scheduled_renewals", "subscription_group_prepayments")
CHILDREN = NEW[1:]
#: Each child's parent path parameter, and the field of the child's record naming it.
PARENT_IN_PATH = {"component_features": "component_id"}


@pytest.fixture(scope="module")
def site() -> t.Iterator[Sandbox]:
    with Sandbox(sandbox_config()) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def run(site: Sandbox):
    config = tap_config(site)
    site.clear_log()
    return run_tap(config, catalog=only(select_all(config), *NEW))


def expected(site: Sandbox, stream: str) -> dict[int, dict]:
    """The site's records of a stream, made records as the tap makes them."""
    tap_stream = t.cast("MaxioStream", TapMaxio(config=tap_config(site)).streams[stream])
    records = {}
    for record in site.records(stream):
        context = None
        if stream in PARENT_IN_PATH:
            parent = re.search(r"/(\d+)/", site.list_path(stream, record))
            context = {PARENT_IN_PATH[stream]: int(parent.group(1))} if parent else None
        made = tap_stream.post_process(dict(record), context)
        assert made is not None
        records[made["id"]] = made
    return records


@pytest.mark.parametrize("stream", NEW)
def test_records_equal_the_sites(site, run, stream):
    wanted = expected(site, stream)
    assert wanted, f"the sandbox has no {stream}"
    got = run.records[stream]
    assert len(got) == len(wanted), f"{stream}: a record emitted twice, or one missing"
    assert {r["id"]: r for r in got} == wanted


def test_features_are_read_whole_in_one_request_archived_ones_included(site, run):
    archived = [r for r in site.records("features") if r["archived_at"]]
    assert archived, "the sandbox archived no feature template"
    assert {r["id"] for r in archived} <= {r["id"] for r in run.records["features"]}
    asked = [r for r in site.requests if r.path == "/features.json"]
    # Without page and per_page the spec returns the whole set: one snapshot.
    assert [r.query for r in asked] == [{"status": ["all"]}]


def test_group_prepayments_are_read_by_the_groups_uid(site, run):
    groups = {r["uid"] for r in site.records("subscription_groups")}
    paths = {r.path for r in site.requests if r.path.endswith("/prepayments.json")}
    assert paths == {f"/subscription_groups/{uid}/prepayments.json" for uid in groups}


@pytest.mark.parametrize("status", [403, 422])
@pytest.mark.parametrize("stream", NEW)
def test_a_feature_not_enabled_skips_its_stream_with_one_warning(stream, status, caplog):
    with Sandbox(sandbox_config()) as site:
        site.disable(stream, status)
        config = tap_config(site)
        run = run_tap(config, catalog=only(select_all(config), stream, "subscriptions"))
        refused = [r for r in site.requests if r.status == status]
    assert run.records[stream] == []
    assert len(warnings_about(caplog, f"{stream}: skipped, {stream}: HTTP {status}")) == 1
    # The stream is off for the run: a child does not ask again under every parent.
    assert len(refused) == 1
    assert len(run.records["subscriptions"]) == len(site.records("subscriptions"))


def test_a_403_still_stops_the_run_on_a_stream_that_is_not_a_feature():
    # A key that may not read subscriptions (or their notes) must fail loudly.
    with Sandbox(sandbox_config()) as site:
        site.disable("subscription_notes", 403)
        config = tap_config(site)
        with pytest.raises(MaxioAPIError, match="HTTP 403"):
            run_tap(config, catalog=only(select_all(config), "subscription_notes"))


def test_a_404_under_one_parent_skips_only_that_parent(caplog):
    # A parent deleted during the sync: its siblings are still read.
    with Sandbox(sandbox_config()) as site:
        config = tap_config(site)
        first = site.records("scheduled_renewals")[0]
        site.fail_next(status=404, path=site.list_path("scheduled_renewals", first))
        run = run_tap(config, catalog=only(select_all(config), "scheduled_renewals"))
        others = {r["id"] for r in site.records("scheduled_renewals")} - {first["id"]}
    assert others <= {r["id"] for r in run.records["scheduled_renewals"]}
    assert len(warnings_about(caplog, "scheduled_renewals: skipped")) == 1


@pytest.mark.parametrize("stream", NEW)
def test_the_catalog_says_each_is_read_whole_by_its_id(stream):
    catalog = TapMaxio(config={"subdomain": "acme", "api_key": "k"}).catalog_dict
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    metadata = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
    assert entry["replication_method"] == metadata["forced-replication-method"] == "FULL_TABLE"
    assert "valid-replication-keys" not in metadata
    assert entry.get("replication_key") is None
    assert list(metadata["table-key-properties"]) == ["id"]
    # Children cost a request per parent: the user opts in.
    assert metadata["selected-by-default"] is (stream not in CHILDREN)


# --- the sandbox's side of these endpoints ------------------------------------------------


def get(site: Sandbox, path: str, **params: t.Any) -> requests.Response:
    return requests.get(site.url + path, params=params, auth=(API_KEY, "x"), timeout=10)


def test_the_sandbox_lists_active_templates_unless_asked(site):
    served = site.records("features")
    active = [r["id"] for r in served if r["archived_at"] is None]
    archived = [r["id"] for r in served if r["archived_at"] is not None]
    body = get(site, "/features.json").json()
    assert [r["id"] for r in body["items"]] == active
    assert body["total_count"] == len(active)
    body = get(site, "/features.json", status="archived").json()
    assert [r["id"] for r in body["items"]] == archived
    assert body["archived_count"] == len(archived)
    assert len(get(site, "/features.json", status="all").json()["items"]) == len(served)
    assert get(site, "/features.json", status="deleted").status_code == 422


def test_the_sandbox_pages_templates_only_when_asked(site):
    served = len(site.records("features"))
    assert served > 20  # more than the default page
    assert len(get(site, "/features.json", status="all").json()["items"]) == served
    assert len(get(site, "/features.json", status="all", page=1).json()["items"]) == 20
    pages = [
        get(site, "/features.json", status="all", per_page=5, page=n).json()["items"]
        for n in range(1, served // 5 + 2)
    ]
    assert [len(p) for p in pages] == [5] * (served // 5) + [served % 5]
    assert len({r["id"] for p in pages for r in p}) == served


def test_the_sandbox_sorts_and_filters_templates_by_updated_day(site):
    served = site.records("features")
    days = sorted({r["updated_at"][:10] for r in served})
    low, high = days[len(days) // 3], days[2 * len(days) // 3]
    body = get(
        site, "/features.json", status="all", updated_from=low, updated_to=high,
        sort_by="updated_at", sort_direction="desc",
    ).json()  # fmt: skip
    stamps = [r["updated_at"] for r in body["items"]]
    assert {s[:10] for s in stamps} <= {d for d in days if low <= d <= high}
    assert len(stamps) == sum(1 for r in served if low <= r["updated_at"][:10] <= high)
    assert stamps == sorted(stamps, reverse=True)


def test_the_sandbox_filters_renewals_by_status(site):
    renewal = site.records("scheduled_renewals")[0]
    path = site.list_path("scheduled_renewals", renewal)
    key = "scheduled_renewal_configurations"
    every = get(site, path).json()[key]
    assert renewal in every
    mine = get(site, path, status=renewal["status"]).json()[key]
    assert renewal in mine
    assert all(r["status"] == renewal["status"] for r in mine)
    assert get(site, path, status="sleeping").status_code == 422


def test_the_sandbox_serves_group_prepayments_by_uid_in_wrappers(site):
    prepayment = site.records("subscription_group_prepayments")[0]
    path = site.list_path("subscription_group_prepayments", prepayment)
    assert path == f"/subscription_groups/{prepayment['subscription_group_uid']}/prepayments.json"
    body = get(site, path, per_page=1, page=1).json()
    assert body == {"prepayments": [{"prepayment": body["prepayments"][0]["prepayment"]}]}
    assert get(site, "/subscription_groups/grp_nosuchgroup2/prepayments.json").status_code == 404


def test_the_sandbox_can_turn_a_feature_off_and_on(site):
    site.disable("features", 403)
    refused = get(site, "/features.json")
    site.disable("features", None)
    assert refused.status_code == 403
    assert refused.json() == {"errors": ["This feature is not enabled for this site."]}
    assert get(site, "/features.json").status_code == 200


def test_the_sandbox_command_line_turns_features_off():
    config = parse_args(["--disable", "features", "--disable", "scheduled_renewals=422"])
    assert config.disabled == {"features": 403, "scheduled_renewals": 422}
    assert parse_args([]).disabled == {}
