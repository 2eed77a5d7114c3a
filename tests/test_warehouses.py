"""`meltano run` into real warehouses: sync, change the site, sync again, query."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import typing as t
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import API_KEY, meltano, sandbox_config

from maxio_sandbox import Sandbox
from tap_maxio.client import parse_timestamp
from tap_maxio.streams import STREAM_TYPES

PRIMARY_KEYS = {stream.name: list(stream.primary_keys or []) for stream in STREAM_TYPES}
#: CI installs every warehouse the tests need (.ci/run); elsewhere one may be missing.
REQUIRED = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Fail in CI, where nothing may be missing; skip elsewhere."""
    if REQUIRED:
        pytest.fail(f"{what} (CI must install it: see .ci/run)")
    pytest.skip(what)


def utc(value: t.Any) -> datetime:
    """A timestamp as the site or a warehouse gives it, as an aware UTC datetime."""
    if isinstance(value, str):
        return parse_timestamp(value)
    # Naive warehouse timestamps are UTC: the loaders are made to write UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Warehouse(t.Protocol):
    """A loader's settings and the queries the test asks of its tables."""

    loader: str

    def env(self) -> dict[str, str]:
        """Environment variables that point the loader at the warehouse."""
        ...

    def tables(self) -> set[str]:
        """The tables the loader created."""
        ...

    def query(self, sql: str) -> list[tuple]:
        """Rows of a query on the tap's schema (`{schema}` is filled in)."""
        ...


def sync_twice(warehouse: Warehouse, tmp_path: Path) -> dict[str, list[dict]]:
    """Run meltano, change the site, run again from the saved state; return the truth."""
    with Sandbox(sandbox_config()) as site:
        env = {
            **os.environ,
            **warehouse.env(),
            "TAP_MAXIO_BASE_URL": site.url,
            "TAP_MAXIO_API_KEY": API_KEY,
            "TAP_MAXIO_SUBDOMAIN": "acme",
            "TAP_MAXIO__SELECT": json.dumps(["*.*"]),  # the children too
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            # The test's state stays out of the project's .meltano/.
            "MELTANO_STATE_BACKEND_URI": f"file://{tmp_path}/state",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        }
        for run in ("first", "second"):
            result = meltano("run", "tap-maxio", warehouse.loader, env=env)
            assert result.returncode == 0, f"{run} run: {result.stderr[-3000:]}"
            assert API_KEY not in result.stdout + result.stderr
            if run == "first":
                changed = site.mutate(updates=5, creates=2)
                assert changed["subscriptions"], "the site did not change"
        return {table: site.stream_records(table) for table in warehouse.tables()}


def assert_latest_versions(warehouse: Warehouse, site_truth: dict[str, list[dict]]) -> None:
    """Each table holds each record once, in its latest version."""
    for table in warehouse.tables():
        expected = site_truth[table]
        keys = PRIMARY_KEYS[table]
        columns = ", ".join(f'"{k}"' for k in keys)
        ((rows, distinct),) = warehouse.query(
            f'SELECT count(*), count(DISTINCT ({columns})) FROM {{schema}}."{table}"'
        )
        assert rows == distinct == len(expected), (table, rows, distinct, len(expected))
        if not any("updated_at" in r for r in expected):
            continue
        if not all(k in expected[0] for k in keys):
            continue
        stored = {
            tuple(row[:-1]): row[-1] and utc(row[-1])
            for row in warehouse.query(f'SELECT {columns}, updated_at FROM {{schema}}."{table}"')
        }
        # Maxio leaves updated_at out of some records: the warehouse holds a null.
        latest = {
            tuple(r[k] for k in keys): r.get("updated_at") and utc(r["updated_at"])
            for r in expected
        }
        assert stored == latest, f"{table}: a row is not in its latest version"


# DuckDB, with target-duckdb


class DuckDB:
    """A DuckDB file, loaded by target-duckdb."""

    loader = "target-duckdb"
    schema = "tap_maxio"

    def __init__(self, path: Path) -> None:
        self.path = path

    def env(self) -> dict[str, str]:
        return {"TARGET_DUCKDB_FILEPATH": str(self.path)}

    def query(self, sql: str) -> list[tuple]:
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as db:
            return db.execute(sql.format(schema=self.schema)).fetchall()

    def tables(self) -> set[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
        )
        return {name for (name,) in rows}


def test_duckdb_holds_every_record_in_its_latest_version(tmp_path):
    warehouse = DuckDB(tmp_path / "warehouse.duckdb")
    site_truth = sync_twice(warehouse, tmp_path)
    assert {"subscriptions", "customers", "invoices", "coupon_subcodes"} <= set(site_truth)
    assert_latest_versions(warehouse, site_truth)


# PostgreSQL, with meltanolabs-target-postgres


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or in Debian's versioned folder."""
    found = shutil.which("initdb")
    if found is None:
        versions = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        )
        found = str(versions[-1]) if versions else None
    return Path(found).resolve().parent if found else None


@pytest.fixture(scope="module")
def postgres() -> t.Iterator[dict[str, t.Any]]:
    """A PostgreSQL server of the tests' own, in a temporary folder, on a free port."""
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    assert bindir is not None
    # initdb and postgres refuse to run as root.
    user = "postgres" if os.geteuid() == 0 else None
    # Not tmp_path: the postgres user cannot enter pytest's private folders.
    root = Path(tempfile.mkdtemp(prefix="tap-maxio-pg-"))
    if user:
        shutil.chown(root, user, user)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"

    def pg(*args: t.Any) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, cwd=root, timeout=120)

    try:
        pg(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
            "-c timezone=UTC -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        pg(bindir / "pg_ctl", "-D", data, "-l", root / "log", "-w", "start", "-o", options)
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        subprocess.run(
            [bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            check=False, capture_output=True, user=user, cwd=root, timeout=120,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


class Postgres:
    """One database of the test server, loaded by target-postgres."""

    loader = "target-postgres"
    #: meltano.yml names the schema after the extractor's namespace.
    schema = "tap_maxio"

    def __init__(self, server: dict[str, t.Any], database: str, *, hard_delete: bool = False):
        self.server = server
        self.database = database
        self.hard_delete = hard_delete

    def env(self) -> dict[str, str]:
        return {
            "TARGET_POSTGRES_HOST": self.server["host"],
            "TARGET_POSTGRES_PORT": str(self.server["port"]),
            "TARGET_POSTGRES_USER": self.server["user"],
            "TARGET_POSTGRES_PASSWORD": "unused",  # trust auth, but the target wants one
            "TARGET_POSTGRES_DATABASE": self.database,
            "TARGET_POSTGRES_HARD_DELETE": str(self.hard_delete).lower(),
        }

    def query(self, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(**self.server, dbname=self.database) as db:
            return db.execute(sql.format(schema=self.schema)).fetchall()

    def tables(self) -> set[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
        )
        return {name for (name,) in rows}


def test_postgres_holds_every_record_in_its_latest_version(postgres, tmp_path):
    import psycopg

    database = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**postgres, dbname="postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {database}")
    warehouse = Postgres(postgres, database)
    site_truth = sync_twice(warehouse, tmp_path)
    assert {"subscriptions", "customers", "invoices", "coupon_subcodes"} <= set(site_truth)
    assert_latest_versions(warehouse, site_truth)


# Deletes, archives and status changes


#: What the second run of the deletes test is about; every other table must not change.
TOUCHED = {
    "customers", "subscriptions", "coupons", "subscription_metadata", "payment_profiles",
    "invoices", "invoice_events", "events",
}  # fmt: skip


def keys_of(warehouse: Warehouse, table: str, *, live: bool = False) -> set[tuple]:
    """The primary keys a table holds (only rows not marked deleted, when `live`)."""
    columns = ", ".join(f'"{k}"' for k in PRIMARY_KEYS[table])
    where = " WHERE _sdc_deleted_at IS NULL" if live else ""
    return set(warehouse.query(f'SELECT {columns} FROM {{schema}}."{table}"{where}'))


def snapshot(warehouse: Warehouse) -> dict[str, set[tuple]]:
    """Every table's rows: key, and updated_at where the table has one."""
    out = {}
    for table in warehouse.tables():
        columns = ", ".join(f'"{k}"' for k in PRIMARY_KEYS[table])
        (has_updated_at,) = warehouse.query(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{schema}' "
            f"AND table_name = '{table}' AND column_name = 'updated_at'"
        )[0]
        if has_updated_at:
            columns += ", updated_at"
        out[table] = set(warehouse.query(f'SELECT {columns} FROM {{schema}}."{table}"'))
    return out


def delete_and_change(site: Sandbox) -> dict[str, t.Any]:
    """The issue's edits: 3 customers and 3 more subscriptions purged, and the rest."""
    customers = [c["id"] for c in site.records("customers")[:3]]
    purged: dict[str, set] = {}
    for customer in customers:
        for collection, keys in site.delete("customers", customer).items():
            purged.setdefault(collection, set()).update(keys)
    alone = [s["id"] for s in site.records("subscriptions")[-3:]]
    for subscription in alone:
        for collection, keys in site.delete("subscriptions", subscription).items():
            purged.setdefault(collection, set()).update(keys)
    coupon = site.records("coupons")[0]["id"]
    site.archive("coupons", coupon)
    metadata = site.records("subscription_metadata")[0]["id"]
    site.delete("subscription_metadata", metadata)
    profile = site.records("payment_profiles")[0]["id"]
    site.delete("payment_profiles", profile)
    status_event = site.change_invoice_status()
    return {
        "purged": purged, "coupon": coupon, "metadata": metadata, "profile": profile,
        "status_event": status_event,
    }  # fmt: skip


def sync_with_deletes(
    warehouse: Warehouse, tmp_path: Path
) -> tuple[dict[str, t.Any], dict[str, set[tuple]], dict[str, set[tuple]]]:
    """Sync, delete and change, sync again; the edits and both runs' tables."""
    with Sandbox(sandbox_config()) as site:
        env = {
            **os.environ,
            **warehouse.env(),
            "TAP_MAXIO_BASE_URL": site.url,
            "TAP_MAXIO_API_KEY": API_KEY,
            "TAP_MAXIO_SUBDOMAIN": "acme",
            "TAP_MAXIO_EMIT_ACTIVATE_VERSION_MESSAGES": "true",
            "TAP_MAXIO__SELECT": json.dumps(["*.*"]),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_STATE_BACKEND_URI": f"file://{tmp_path}/state",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        }
        result = meltano("run", "tap-maxio", warehouse.loader, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        before = snapshot(warehouse)
        edits = delete_and_change(site)
        result = meltano("run", "tap-maxio", warehouse.loader, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        edits["truth"] = {table: site.stream_records(table) for table in warehouse.tables()}
        return edits, before, snapshot(warehouse)


def assert_deletes_arrived(
    warehouse: Warehouse, edits: dict[str, t.Any], before: dict, after: dict
) -> None:
    """Each delete, archive and status change is in the warehouse; nothing else changed."""
    purged = edits["purged"]
    for table in ("customers", "subscriptions"):
        deleted = {(key,) for key in purged[table]}
        assert deleted, table
        assert deleted <= keys_of(warehouse, table), f"{table}: a tombstone is missing"
        assert not deleted & keys_of(warehouse, table, live=True), f"{table}: not marked"
        live = {(r["id"],) for r in edits["truth"][table]}
        assert keys_of(warehouse, table, live=True) == live, table
    rows = warehouse.query(
        f'SELECT archived_at FROM {{schema}}."coupons" WHERE id = {edits["coupon"]}'
    )
    assert rows and rows[0][0] is not None, "the archived coupon has no archived_at"
    assert (edits["metadata"],) not in keys_of(warehouse, "subscription_metadata", live=True)
    assert (edits["metadata"],) in keys_of(warehouse, "subscription_metadata")
    (status,) = warehouse.query(
        f'SELECT event_type FROM {{schema}}."invoice_events" WHERE id = {edits["status_event"]}'
    )
    assert status == ("change_invoice_status",)
    children = {c for c in purged if c not in ("customers", "subscriptions")}
    for table in set(after) - TOUCHED - children - {"allocations", "usages"}:
        assert after[table] == before[table], f"{table} changed"


def test_duckdb_marks_deletes_and_archives(tmp_path):
    warehouse = DuckDB(tmp_path / "warehouse.duckdb")
    edits, before, after = sync_with_deletes(warehouse, tmp_path)
    assert_deletes_arrived(warehouse, edits, before, after)
    # target-duckdb ignores ACTIVATE_VERSION: a removed payment profile stays (README).
    assert (edits["profile"],) in keys_of(warehouse, "payment_profiles", live=True)


def test_postgres_marks_deletes_and_drops_removed_rows(postgres, tmp_path):
    import psycopg

    database = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**postgres, dbname="postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {database}")
    warehouse = Postgres(postgres, database, hard_delete=True)
    edits, before, after = sync_with_deletes(warehouse, tmp_path)
    assert_deletes_arrived(warehouse, edits, before, after)
    # ACTIVATE_VERSION, hard delete: the removed payment profile is gone.
    assert (edits["profile"],) not in keys_of(warehouse, "payment_profiles")
    live = {(r["id"],) for r in edits["truth"]["payment_profiles"]}
    assert keys_of(warehouse, "payment_profiles") == live
