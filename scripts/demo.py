"""`make demo`: a sandbox Maxio site, synced into DuckDB by Meltano, then counted.

Starts the sandbox on loopback, runs `meltano run tap-maxio target-duckdb` into
output/demo.duckdb, prints each table's row count read back from DuckDB beside
the site's own count, and stops the sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from maxio_sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
DATABASE = ROOT / "output" / "demo.duckdb"
LOG = ROOT / "output" / "demo-meltano.log"
#: The schema meltano.yml gives the loaders: the extractor's namespace.
SCHEMA = "tap_maxio"
API_KEY = "demo-key"


def meltano_env(site: Sandbox, database: Path) -> dict[str, str]:
    """Settings that point tap-maxio at the sandbox and target-duckdb at `database`."""
    return {
        **os.environ,
        "TAP_MAXIO_BASE_URL": site.url,
        "TAP_MAXIO_API_KEY": API_KEY,
        "TAP_MAXIO_SUBDOMAIN": "acme",
        "TARGET_DUCKDB_FILEPATH": str(database),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def table_counts(database: Path) -> dict[str, int]:
    """Rows per table of the schema, read back from the DuckDB file."""
    with duckdb.connect(str(database), read_only=True) as db:
        tables = [
            name
            for (name,) in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "ORDER BY table_name",
                [SCHEMA],
            ).fetchall()
        ]
        counts: dict[str, int] = {}
        for table in tables:
            row = db.execute(f'SELECT count(*) FROM {SCHEMA}."{table}"').fetchone()  # noqa: S608
            counts[table] = row[0] if row else 0
        return counts


def main() -> int:
    """Run the demo; the exit status is Meltano's, or 1 when a count differs."""
    meltano = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
    DATABASE.parent.mkdir(exist_ok=True)
    DATABASE.unlink(missing_ok=True)
    with Sandbox(SandboxConfig(api_key=API_KEY, subdomain="acme")) as site:
        print(f"Sandbox Maxio site 'acme' serving at {site.url}")
        print(f"meltano run tap-maxio target-duckdb (log: {LOG.relative_to(ROOT)}) ...", flush=True)
        with LOG.open("w") as log:
            run = subprocess.run(
                [meltano, "run", "--full-refresh", "tap-maxio", "target-duckdb"],
                cwd=ROOT,
                env=meltano_env(site, DATABASE),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if run.returncode:
            print(LOG.read_text()[-3000:], file=sys.stderr)
            print(f"meltano failed (exit {run.returncode}); the whole log is in {LOG}")
            return run.returncode
        counts = table_counts(DATABASE)
        on_site = {table: len(site.stream_records(table)) for table in counts}
    print(f"\nRows per table in {DATABASE.relative_to(ROOT)} (schema {SCHEMA}):\n")
    width = max(map(len, counts), default=5)
    print(f"{'table':<{width}}  {'rows':>6}  {'on site':>7}")
    for table, count in counts.items():
        mark = "" if count == on_site[table] else "  <- differs"
        print(f"{table:<{width}}  {count:>6}  {on_site[table]:>7}{mark}")
    print(f"{'total':<{width}}  {sum(counts.values()):>6}  {sum(on_site.values()):>7}")
    print("\nThe sandbox is stopped. Query the file, for example:")
    query = f"SELECT state, count(*) FROM {SCHEMA}.subscriptions GROUP BY 1"  # noqa: S608
    print(
        f"  .venv/bin/python -c \"import duckdb; db = duckdb.connect('"
        f"{DATABASE.relative_to(ROOT)}'); db.sql('{query}').show()\""
    )
    return 0 if counts == on_site else 1


if __name__ == "__main__":
    sys.exit(main())
