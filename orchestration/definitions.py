"""Dagster definitions: each Maxio site an asset, synced by its own `meltano run`.

    dagster dev -m orchestration.definitions                 # UI, schedule and daemon
    dagster job execute -m orchestration.definitions -j maxio_sites

MAXIO_SITES names the sites file (default: orchestration/sites.toml), and
MELTANO_PROJECT_ROOT the Meltano project (default: this repository). Every site's
API key comes from its own environment variable, which this process must have.
"""

import os
from pathlib import Path

import dagster as dg

from orchestration.meltano import run_meltano
from orchestration.sites import DEFAULT_SITES, Site, SiteList, load_sites

ROOT = Path(__file__).resolve().parent.parent
JOB = "maxio_sites"
GROUP = "maxio_sites"


def site_asset(site: Site, site_list: SiteList, project: Path) -> dg.AssetsDefinition:
    """The asset of one site: `meltano run tap-maxio-<name> <loader>`, retried on failure."""
    loader = site_list.loader

    @dg.asset(
        name=site.ident,
        group_name=GROUP,
        kinds={"meltano"},
        description=f"Maxio site {site.name} ({site.subdomain}): "
        f"meltano run {site.extractor} {loader}",
        retry_policy=dg.RetryPolicy(
            max_retries=site_list.retries,
            delay=site_list.retry_delay,
            backoff=dg.Backoff.EXPONENTIAL,
        ),
    )
    def sync(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        secret = os.environ.get(site.api_key_env, "")
        if not secret:
            raise dg.Failure(
                f"site {site.name}: the environment variable {site.api_key_env} "
                "(api_key_env in the sites file) is not set",
                allow_retries=False,
            )

        def say(line: str) -> None:
            context.log.info(f"{site.name}: {line}")

        say(f"meltano run {site.extractor} {loader}")
        outcome = run_meltano(project, site.extractor, loader, say, secret=secret)
        total = sum(outcome.rows.values())
        if outcome.returncode:
            # Meltano saved the state of what was loaded: a retry resumes from it.
            raise dg.Failure(
                f"site {site.name}: {outcome.error}",
                metadata={"rows": total},
                allow_retries=not outcome.refused,
            )
        counts = ", ".join(f"{stream} {n}" for stream, n in sorted(outcome.rows.items()) if n)
        say(f"{total} rows: {counts or 'nothing new'}")
        return dg.MaterializeResult(
            metadata={
                "rows": total,
                "rows_by_stream": dg.MetadataValue.json(dict(sorted(outcome.rows.items()))),
                "extractor": site.extractor,
            }
        )

    return sync


def build(site_list: SiteList, project: Path) -> dg.Definitions:
    """An asset per site, a job over them all (`max_parallel` at once), and its schedule."""
    assets = [site_asset(site, site_list, project) for site in site_list.sites]
    # Each site is a process of its own; the executor caps how many run at once.
    executor = dg.multiprocess_executor.configured({"max_concurrent": site_list.max_parallel})
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.groups(GROUP))
    schedule = dg.ScheduleDefinition(name=f"{JOB}_schedule", job=job, cron_schedule=site_list.cron)
    return dg.Definitions(assets=assets, jobs=[job], schedules=[schedule], executor=executor)


defs = build(
    load_sites(Path(os.environ.get("MAXIO_SITES") or DEFAULT_SITES)),
    Path(os.environ.get("MELTANO_PROJECT_ROOT") or ROOT),
)
