"""`make sites`: 20 sandbox Maxio sites loaded into DuckDB by Dagster, at most 4 at once.

Starts 20 sandbox sites on loopback (each its own port, key and data; every fourth one
EU), writes their list and their 20 inherited extractors into a scratch Meltano project
(output/sites/, using this project's installed plugins), runs the Dagster job over them,
and checks every site's tables against the site. Then it changes 3 sites, runs again and
shows that only those 3 loaded new rows.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from maxio_sandbox import Sandbox, SandboxConfig
from orchestration.definitions import JOB
from orchestration.meltano import meltano_executable
from orchestration.sites import load_sites, meltano_plugins, plugins_path
from tap_maxio.streams import STREAM_TYPES

ROOT = Path(__file__).resolve().parent.parent
PRIMARY_KEYS = {stream.name: list(stream.primary_keys or []) for stream in STREAM_TYPES}
#: What the asset logs when a site is done (orchestration/definitions.py).
DONE = re.compile(r" - maxio_\w+ - ([\w-]+): (\d+) rows: ")
#: How Dagster prefixes the message of an exception: its class.
EXCEPTION_CLASS = re.compile(r"^[\w.]+: ")


@dataclass
class SiteResult:
    """How one site's step ended in a Dagster run."""

    ok: bool
    rows: int = 0
    error: str = ""


class Trial:
    """A scratch Meltano project: this one's meltano.yml and plugins, a sites list of its own.

    `sites` are [[sites]] entries of orchestration/sites.toml; `keys` the value of each
    entry's api_key_env, handed to Dagster through its environment only.
    """

    def __init__(
        self,
        folder: Path,
        sites: list[dict[str, str]],
        keys: dict[str, str],
        **settings: t.Any,
    ) -> None:
        """Write the project into `folder` (emptied first); `settings` top the sites list."""
        self.folder = folder
        self.keys = keys
        self.events: t.Sequence[t.Any] = ()
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "orchestration").mkdir(parents=True)
        (folder / "output").mkdir()
        (folder / "dagster").mkdir()
        # Dagster's instance: runs and events in this folder, and no usage statistics sent.
        (folder / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        shutil.copy(ROOT / "meltano.yml", folder / "meltano.yml")
        self.sites_file = folder / "orchestration" / "sites.toml"
        lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        for entry in sites:
            lines += ["", "[[sites]]", *(f"{k} = {json.dumps(v)}" for k, v in entry.items())]
        self.sites_file.write_text("\n".join(lines) + "\n")
        self.site_list = load_sites(self.sites_file)
        plugins_path(self.sites_file).write_text(meltano_plugins(self.site_list))
        # Meltano creates its system database on first use: once, before sites race to.
        subprocess.run(
            [meltano_executable(), "state", "list"], cwd=folder, env=self.env(),
            check=True, capture_output=True,
        )  # fmt: skip

    def env(self, **extra: str) -> dict[str, str]:
        """Dagster's environment: the scratch project, its own state, the sites' keys."""
        return {
            **os.environ,
            **self.keys,
            "MAXIO_SITES": str(self.sites_file),
            "MELTANO_PROJECT_ROOT": str(self.folder),
            # The plugins installed in this project, used as they are.
            "MELTANO_SYS_DIR_ROOT": str(ROOT / ".meltano"),
            "MELTANO_DATABASE_URI": f"sqlite:///{self.folder}/meltano.db",
            "MELTANO_STATE_BACKEND_URI": f"file://{self.folder}/state",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DAGSTER_HOME": str(self.folder / "dagster"),
            **extra,
        }

    def run(
        self, log: Path, say: t.Callable[[str], None] = print, **env: str
    ) -> dict[str, SiteResult]:
        """Run the Dagster job once; every site's result, by site name."""
        command = [
            str(Path(sys.executable).parent / "dagster"), "job", "execute",
            "-m", "orchestration.definitions", "-j", JOB,
        ]  # fmt: skip
        with log.open("w") as out, subprocess.Popen(
            command, cwd=ROOT, env=self.env(**env), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        ) as process:  # fmt: skip
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                done = DONE.search(line)
                if done:
                    say(f"  {done.group(1)}: {done.group(2)} rows read")
        return self.results()

    def results(self) -> dict[str, SiteResult]:
        """Each site's outcome in the latest run, read from the Dagster instance."""
        instance = dg.DagsterInstance.from_config(str(self.folder / "dagster"))
        try:
            (record,) = instance.get_run_records(limit=1)
            events = instance.all_logs(record.dagster_run.run_id)
        finally:
            instance.dispose()
        self.events = events
        by_step = {site.ident: site.name for site in self.site_list.sites}
        results: dict[str, SiteResult] = {}
        for event in events:
            dagster_event = event.dagster_event
            name = by_step.get(event.step_key or "")
            if dagster_event is None or name is None:
                continue
            if dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                rows = dagster_event.step_materialization_data.materialization.metadata["rows"]
                results[name] = SiteResult(ok=True, rows=int(t.cast("t.Any", rows).value))
            elif dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE:
                # Past its retries a step fails with "Exceeded max_retries": the cause says why.
                error = cause(dagster_event.step_failure_data.error)
                results[name] = SiteResult(ok=False, error=error)
        return results

    def retried(self) -> dict[str, str]:
        """The sites that Dagster retried in the latest run, each with its first failure."""
        by_step = {site.ident: site.name for site in self.site_list.sites}
        retried: dict[str, str] = {}
        for event in self.events:
            dagster_event = event.dagster_event
            if (
                dagster_event is not None
                and dagster_event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
                and event.step_key in by_step
            ):
                error = getattr(dagster_event.event_specific_data, "error", None)
                retried.setdefault(by_step[event.step_key], cause(error) or event.message)
        return retried

    def most_at_once(self) -> int:
        """The most sites that ran at one time in the latest run, from its step events."""
        starts = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED}
        ends = {
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_UP_FOR_RETRY,
        }
        changes = sorted(
            # At one instant an end comes before a start: those two did not overlap.
            (event.timestamp, 1 if kind in starts else -1)
            for event in self.events
            if event.dagster_event is not None
            and (kind := event.dagster_event.event_type) in starts | ends
        )
        running = most = 0
        for _, change in changes:
            running += change
            most = max(most, running)
        return most

    def warehouse(self, site: str) -> Path:
        """The DuckDB file of one site (target-duckdb-per-site in meltano.yml)."""
        (ident,) = (s.ident for s in self.site_list.sites if s.name == site)
        return self.folder / "output" / f"{ident}.duckdb"

    def versions(self, site: str) -> set[tuple]:
        """Every row the site's warehouse holds, as (table, key..., updated_at)."""
        path = self.warehouse(site)
        if not path.exists():
            return set()
        schema = path.stem
        rows: set[tuple] = set()
        with duckdb.connect(str(path), read_only=True) as db:
            for table, columns in tables(db, schema).items():
                keys = [f'"{k}"' for k in PRIMARY_KEYS[table]]
                stamp = '"updated_at"' if "updated_at" in columns else "NULL"
                sql = f'SELECT {", ".join(keys)}, {stamp} FROM "{schema}"."{schema}"."{table}"'  # noqa: S608
                rows.update((table, *row) for row in db.execute(sql).fetchall())
        return rows

    def counts(self, site: str) -> dict[str, int]:
        """Rows per table in the site's warehouse."""
        counts: dict[str, int] = {}
        for table, *_ in self.versions(site):
            counts[table] = counts.get(table, 0) + 1
        return counts


def cause(error: t.Any) -> str:
    """The message of a Dagster error's innermost cause, without its exception class."""
    while error is not None and error.cause is not None:
        error = error.cause
    return EXCEPTION_CLASS.sub("", error.message.strip()) if error is not None else ""


def tables(db: duckdb.DuckDBPyConnection, schema: str) -> dict[str, set[str]]:
    """The tables of a schema, with their columns."""
    found: dict[str, set[str]] = {}
    for table, column in db.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?",
        [schema],
    ).fetchall():
        found.setdefault(table, set()).add(column)
    return found


def mismatches(trial: Trial, name: str, site: Sandbox) -> list[str]:
    """Tables whose row count differs from the site's."""
    counts = trial.counts(name)
    return [
        f"{table} {count} (site {len(site.stream_records(table))})"
        for table, count in sorted(counts.items())
        if count != len(site.stream_records(table))
    ] or ([] if counts else ["no tables"])


SITES = 20
CHANGED = ("site-03", "site-10", "site-17")


def main() -> int:
    """Run the whole show; 0 when every site is complete and only the changed ones moved."""
    folder = ROOT / "output" / "sites"
    started = time.monotonic()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, even piped
    entries, keys, sandboxes = [], {}, {}
    try:
        for n in range(1, SITES + 1):
            name, region = f"site-{n:02d}", "eu" if n % 4 == 0 else "us"
            variable = f"MAXIO_API_KEY_SITE_{n:02d}"
            keys[variable] = secrets.token_hex(12)
            config = SandboxConfig(
                api_key=keys[variable], subdomain=name, seed=1000 + n,
                site_timezone="Europe/Berlin" if region == "eu" else "America/New_York",
            )  # fmt: skip
            sandboxes[name] = Sandbox(config).start()
            entries.append({"name": name, "subdomain": name, "environment": region,
                            "api_key_env": variable, "base_url": sandboxes[name].url})  # fmt: skip
        eu = sum(e["environment"] == "eu" for e in entries)
        print(f"{SITES} sandbox sites on loopback ({eu} EU), each with its own port, key and data")
        trial = Trial(folder, entries, keys, max_parallel=4, retries=1, retry_delay=5)
        print(f"{SITES} inherited extractors in {plugins_path(trial.sites_file).relative_to(ROOT)}")
        print("Dagster job maxio_sites, at most 4 sites at once (log: output/sites/run-1.log)")
        first = run_and_check(trial, sandboxes, folder / "run-1.log")
        print(f"  at most {trial.most_at_once()} sites at once")
        print(f"{first} of {SITES} sites complete in {time.monotonic() - started:.0f} s")
        before = {name: trial.versions(name) for name in sandboxes}
        time.sleep(1.01 - time.time() % 1)  # a change in the second a sync starts waits a run
        for name in CHANGED:
            sandboxes[name].mutate(updates=5, creates=2)
        print(f"\nChanged {', '.join(CHANGED)}; running again (log: output/sites/run-2.log)")
        again = time.monotonic()
        second = run_and_check(trial, sandboxes, folder / "run-2.log")
        # Full-table streams are read whole on every run: what is new is what a site's
        # warehouse did not hold before, a row or a newer version of it.
        new = {name: len(trial.versions(name) - before[name]) for name in sandboxes}
        moved = sorted(name for name, n in new.items() if n)
        for name in moved:
            print(f"  {name}: {new[name]} new or changed rows in its warehouse")
        print(f"{second} of {SITES} sites complete in {time.monotonic() - again:.0f} s; "
              f"new rows at {len(moved)} sites: {', '.join(moved) or 'none'}")  # fmt: skip
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
    return 0 if first == second == SITES and moved == sorted(CHANGED) else 1


def run_and_check(trial: Trial, sandboxes: dict[str, Sandbox], log: Path) -> int:
    """One run; the number of sites that succeeded with every table as on the site."""
    results = trial.run(log)
    complete = 0
    for name, site in sandboxes.items():
        result = results.get(name, SiteResult(ok=False, error="did not run"))
        wrong = mismatches(trial, name, site) if result.ok else []
        if result.ok and not wrong:
            complete += 1
        else:
            print(f"  {name}: INCOMPLETE: {result.error or '; '.join(wrong)}")
    return complete


if __name__ == "__main__":
    sys.exit(main())
