"""Several sites in one Meltano project, the hourly schedule, and the sites list."""

from __future__ import annotations

import json
import os
import time
import typing as t

import dagster as dg
import pytest
from conftest import meltano

from maxio_sandbox import Sandbox, SandboxConfig
from orchestration.definitions import build
from orchestration.meltano import LogReader
from orchestration.sites import (
    DEFAULT_SITES,
    SitesError,
    load_sites,
    meltano_plugins,
    parse_sites,
    plugins_path,
)

if t.TYPE_CHECKING:
    from pathlib import Path

STREAMS = ["subscriptions", "customers"]


def project_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """meltano in this project, with the test's own system database and state."""
    return {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_STATE_BACKEND_URI": f"file://{tmp_path}/state",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        **extra,
    }


def lines(folder: Path, stream: str) -> int:
    """Records target-jsonl wrote for one stream."""
    return sum(len(p.read_text().splitlines()) for p in folder.glob(f"{stream}-*.jsonl"))


def test_two_sites_keep_their_own_bookmarks(tmp_path):
    """The README's US and EU sites, each synced in turn, each from its own state."""
    # No bulk-import second (tied_batch): it could be a bookmark's, read again in full.
    us_site = SandboxConfig(api_key="sk_us_7d1e", subdomain="acme", seed=3, tied_batch=1,
                            counts={"subscriptions": 40, "customers": 20})  # fmt: skip
    eu_site = SandboxConfig(api_key="sk_eu_4b8a", subdomain="acme-eu", seed=4, tied_batch=1,
                            counts={"subscriptions": 25, "customers": 15},
                            site_timezone="Europe/Berlin")  # fmt: skip
    with Sandbox(us_site) as us, Sandbox(eu_site) as eu:
        env = project_env(
            tmp_path,
            # The keys come from the variables sites.toml names, as in production.
            MAXIO_API_KEY_ACME_US="sk_us_7d1e",
            MAXIO_API_KEY_ACME_EU="sk_eu_4b8a",
            TAP_MAXIO_ACME_US_BASE_URL=us.url,
            TAP_MAXIO_ACME_EU_BASE_URL=eu.url,
            TAP_MAXIO_ACME_US__SELECT=json.dumps([f"{s}.*" for s in STREAMS]),
            TAP_MAXIO_ACME_EU__SELECT=json.dumps([f"{s}.*" for s in STREAMS]),
        )
        state = tmp_path / "state"

        def sync(site: str, run: str) -> Path:
            out = tmp_path / run
            out.mkdir()
            env["TARGET_JSONL_DESTINATION_PATH"] = str(out)
            result = meltano("run", f"tap-maxio-acme-{site}", "target-jsonl", env=env)
            assert result.returncode == 0, result.stderr[-3000:]
            assert "sk_us_7d1e" not in result.stderr and "sk_eu_4b8a" not in result.stderr
            return out

        def bookmark(site: str) -> str:
            return (state / f"dev:tap-maxio-acme-{site}-to-target-jsonl" / "state.json").read_text()

        first_us, first_eu = sync("us", "us-1"), sync("eu", "eu-1")
        assert lines(first_us, "subscriptions") == 40
        assert lines(first_eu, "subscriptions") == 25  # all of it: not from the US bookmark
        assert sorted(p.name for p in state.iterdir()) == [
            "dev:tap-maxio-acme-eu-to-target-jsonl",
            "dev:tap-maxio-acme-us-to-target-jsonl",
        ]
        eu_state = bookmark("eu")

        time.sleep(1.01 - time.time() % 1)  # a change in the second a sync starts waits a run
        changed = us.mutate(updates=4, creates=2, collection="subscriptions")["subscriptions"]
        second_us = sync("us", "us-2")
        # Its own changes, and at most its bookmark's second again (the bookmark is inclusive).
        assert len(changed) <= lines(second_us, "subscriptions") <= len(changed) + 1
        assert bookmark("eu") == eu_state  # the US run left the EU state alone

        second_eu = sync("eu", "eu-2")
        assert lines(second_eu, "subscriptions") <= 1  # nothing of the US site's changes


def test_the_hourly_schedule_runs_the_job(shared_sandbox, tmp_path):
    env = project_env(
        tmp_path,
        TAP_MAXIO_BASE_URL=shared_sandbox.url,
        TAP_MAXIO_API_KEY="sk_test_9f3b2c1d8e7a6b5c",
        TAP_MAXIO__SELECT=json.dumps(["subscriptions.*"]),
        TARGET_DUCKDB_FILEPATH=str(tmp_path / "warehouse.duckdb"),
    )
    listed = meltano("schedule", "list", "--format=json", env=env)
    assert listed.returncode == 0, listed.stderr[-3000:]
    (schedule,) = json.loads(listed.stdout)["schedules"]["job"]
    assert (schedule["name"], schedule["interval"], schedule["job"]["name"]) == (
        "maxio-to-duckdb-hourly",
        "@hourly",
        "maxio-to-duckdb",
    )
    assert schedule["job"]["tasks"] == ["tap-maxio target-duckdb"]
    result = meltano("schedule", "run", "maxio-to-duckdb-hourly", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        row = db.execute("SELECT count(*) FROM tap_maxio.subscriptions").fetchone()
    assert row == (len(shared_sandbox.records("subscriptions")),)
    assert (tmp_path / "state" / "dev:tap-maxio-to-target-duckdb" / "state.json").exists()


# The list of sites


def test_the_included_extractors_are_those_of_the_sites_list():
    """sites.meltano.yml is written from sites.toml: `python -m orchestration.sites`."""
    written = plugins_path(DEFAULT_SITES).read_text()
    assert written == meltano_plugins(load_sites(DEFAULT_SITES))
    assert 'api_key: "$MAXIO_API_KEY_ACME_US"' in written  # a reference, not a key


def site(**overrides: object) -> dict:
    return {"name": "acme-us", "subdomain": "acme", **overrides}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sites": []}, "'sites' must list at least one"),
        ({"sites": [site(name="Acme US")]}, "'name' 'Acme US' must be lower-case"),
        ({"sites": [site(subdomain=None)]}, "'subdomain' must be a non-empty string"),
        ({"sites": [{"name": "x"}]}, "site 1 (x): 'subdomain' is required"),
        ({"sites": [site(environment="de")]}, "'environment' must be 'us' or 'eu'"),
        ({"sites": [site(api_key="sk_live")]}, "unknown setting 'api_key'"),
        ({"sites": [site(api_key_env="my key")]}, "'api_key_env' 'my key' is not"),
        ({"sites": [site(), site(subdomain="other")]}, "two sites have the name 'acme-us'"),
        ({"sites": [site(), site(name="b", api_key_env="MAXIO_API_KEY_ACME_US")]},
         "two sites have the api_key_env 'MAXIO_API_KEY_ACME_US'"),
        ({"sites": [site()], "max_parallel": 0}, "'max_parallel' must be a number of at least 1"),
    ],
)  # fmt: skip
def test_a_wrong_sites_list_is_one_line_naming_the_setting(data, message):
    with pytest.raises(SitesError) as raised:
        parse_sites({k: v for k, v in data.items()})
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_each_site_gets_its_own_extractor_schema_and_key_variable():
    site_list = parse_sites({"sites": [site(), site(name="acme-eu", environment="eu")]})
    us, eu = site_list.sites
    assert (us.extractor, us.ident, us.api_key_env) == (
        "tap-maxio-acme-us",
        "maxio_acme_us",
        "MAXIO_API_KEY_ACME_US",
    )
    assert (eu.extractor, eu.ident, eu.api_key_env) == (
        "tap-maxio-acme-eu",
        "maxio_acme_eu",
        "MAXIO_API_KEY_ACME_EU",
    )


# Dagster


def test_each_site_is_an_asset_of_the_job_with_its_retries_and_limit(tmp_path):
    site_list = parse_sites({"sites": [site(), site(name="acme-eu")], "retries": 5,
                             "retry_delay": 7, "cron": "*/15 * * * *",
                             "max_parallel": 7})  # fmt: skip
    defs = build(site_list, tmp_path)
    job = defs.resolve_job_def("maxio_sites")
    assert sorted(node.name for node in job.nodes) == ["maxio_acme_eu", "maxio_acme_us"]
    assert job.executor_def.name == "multiprocess"  # a process per site
    # Unconfigured, the executor would run as many as the machine has cores.
    executor_config = job.executor_def.apply_config_mapping({}).value["config"]
    assert executor_config["max_concurrent"] == 7
    for asset in defs.assets or []:
        policy = asset.op.retry_policy  # type: ignore[union-attr]
        assert (policy.max_retries, policy.delay) == (5, 7)
    (schedule,) = defs.schedules or []
    assert schedule.cron_schedule == "*/15 * * * *"  # type: ignore[union-attr]


def test_a_site_without_its_key_variable_fails_at_once_naming_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MAXIO_API_KEY_ACME_US", raising=False)
    defs = build(parse_sites({"sites": [site()]}), tmp_path)
    (asset,) = defs.assets or []
    result = dg.materialize([asset], raise_on_error=False)  # type: ignore[list-item]
    assert not result.success
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error is not None
    assert "MAXIO_API_KEY_ACME_US (api_key_env in the sites file) is not set" in error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


# Meltano's log


def entry(name: str, event: str, **fields: object) -> str:
    return json.dumps({"name": name, "event": event, "level": "info", **fields})


def metric(stream: str, kind: str, value: float, **tags: object) -> str:
    body = {"type": "counter", "metric": kind, "value": value, "tags": {"stream": stream, **tags}}
    return entry("tap-maxio-acme-us", "METRIC: " + json.dumps(body))


def test_the_log_gives_rows_per_stream_and_the_taps_one_line_error():
    said: list[str] = []
    reader = LogReader("tap-maxio-acme-us", "target-jsonl", said.append)
    for line in [
        metric("subscriptions", "record_count", 200),  # counters restart after each report
        metric("subscriptions", "sync_duration", 1.5),
        metric("subscriptions", "record_count", 60),
        metric("customers", "record_count", 9, context={"id": 1}),
        entry("tap-maxio-acme-us", "customers: HTTP 401 from acme.chargify.com/customers.json: "
              "Maxio refused the API key; check api_key, subdomain and environment"),
        entry("target-jsonl", "all good"),
        json.dumps({"event": "Extractor failed", "level": "error"}),
        json.dumps({"event": "Block run completed", "err": "Extractor failed", "level": "error"}),
        "not json at all",
    ]:  # fmt: skip
        reader.feed(line + "\n")
    assert dict(reader.outcome.rows) == {"subscriptions": 260, "customers": 9}
    assert said == ["subscriptions: 260 rows"]
    assert reader.outcome.error == (
        "Extractor failed: customers: HTTP 401 from acme.chargify.com/customers.json: "
        "Maxio refused the API key; check api_key, subdomain and environment"
    )
    assert reader.outcome.refused


def test_the_log_blames_the_loader_when_the_loader_fails():
    reader = LogReader("tap-maxio-acme-us", "target-jsonl", lambda _: None)
    for line in [
        entry("tap-maxio-acme-us", "subscriptions: 10 records so far"),
        entry("target-jsonl", "PermissionError: output"),
        json.dumps({"event": "Block run completed", "err": "Loader failed", "level": "error"}),
    ]:
        reader.feed(line)
    assert reader.outcome.error == "Loader failed: PermissionError: output"
    assert not reader.outcome.refused
