"""Dagster over sandbox sites: a wrong key and a 5xx fail their own site alone; all resume."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import typing as t

from conftest import ROOT

from maxio_sandbox import Sandbox, SandboxConfig

COUNTS = {"subscriptions": 40, "customers": 20, "invoices": 30}
#: Read in this order; the flaky site fails on the last, after the others' state is saved.
STREAMS = ["customers", "invoices", "subscriptions"]
SITES = ("east", "west", "wrong", "flaky")


def load_script() -> t.Any:
    # scripts/ is not a package, so import the file by path.
    spec = importlib.util.spec_from_file_location("sites_script", ROOT / "scripts" / "sites.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sites_script = load_script()


def test_a_failing_site_fails_alone_and_every_site_resumes_from_its_own_state(tmp_path):
    sandboxes = {
        name: Sandbox(
            # No bulk-import second: it could be a bookmark's, read again in full.
            SandboxConfig(
                api_key=f"sk_{name}_2f9c", subdomain=name, seed=i, counts=COUNTS, tied_batch=1
            )
        ).start()
        for i, name in enumerate(SITES)
    }
    try:
        entries = [
            {"name": name, "subdomain": name, "base_url": site.url,
             "api_key_env": f"TEST_KEY_{name.upper()}"}
            for name, site in sandboxes.items()
        ]  # fmt: skip
        keys = {f"TEST_KEY_{name.upper()}": f"sk_{name}_2f9c" for name in SITES}
        keys["TEST_KEY_WRONG"] = "sk_not_this_sites_key"
        trial = sites_script.Trial(
            tmp_path / "project", entries, keys, max_parallel=2, retries=1, retry_delay=1
        )
        env = {
            # Three streams are enough to see rows and state; the tap's tests cover the rest.
            **{f"TAP_MAXIO_{n.upper()}__SELECT": json.dumps([f"{s}.*" for s in STREAMS])
               for n in SITES},
            # The flaky site's 5xx outlasts the tap's retries at once.
            "TAP_MAXIO_FLAKY_MAX_RETRIES": "1",
        }  # fmt: skip
        sandboxes["flaky"].fail_next(503, times=1000, path="/subscriptions.json")

        first = trial.run(tmp_path / "run-1.log", say=lambda _: None, **env)
        assert first["east"].ok and first["west"].ok, first
        assert trial.most_at_once() == 2  # side by side, and no more than max_parallel
        assert not first["wrong"].ok
        assert "HTTP 401" in first["wrong"].error and "refused the API key" in first["wrong"].error
        assert not first["flaky"].ok
        assert "subscriptions: HTTP 503" in first["flaky"].error, first["flaky"]
        # A 5xx is retried by Dagster too; a refused key is not: no retry can mend it.
        # A healthy site may be retried too: CI once retried one, for a cause not
        # reproduced since (retried() now says it); a Meltano BrokenPipeError
        # between the tap and the target was seen once on a loaded machine.
        retried = trial.retried()
        assert "subscriptions: HTTP 503" in retried["flaky"], retried
        assert "wrong" not in retried, retried
        run_log = "\n".join(event.message for event in trial.events)
        assert not [key for key in keys.values() if key in run_log]  # Dagster's own log
        for name in ("east", "west"):
            if name not in retried:  # a retry resumes from what the failed try saved
                assert first[name].rows == sum(COUNTS.values())
            assert trial.counts(name) == COUNTS
        states = sorted(p.name for p in (tmp_path / "project" / "state").iterdir())
        assert states == [
            f"dev:tap-maxio-{n}-to-target-duckdb-per-site" for n in ("east", "flaky", "west")
        ]

        time.sleep(1.01 - time.time() % 1)  # a change in the second a sync starts waits a run
        changed = {
            "east": sandboxes["east"].mutate(updates=2, creates=1),
            "west": sandboxes["west"].mutate(updates=6, creates=3),
        }
        sandboxes["flaky"].clear_faults()
        trial.keys["TEST_KEY_WRONG"] = "sk_wrong_2f9c"  # the key fixed
        second = trial.run(tmp_path / "run-2.log", say=lambda _: None, **env)
        assert all(result.ok for result in second.values()), second
        run_log = "\n".join(event.message for event in trial.events)
        assert not [key for key in keys.values() if key in run_log]
        for name in ("east", "west"):
            # Each resumed from its own bookmarks: its own changes, and at most the rows of
            # each bookmark's second again (inclusive bookmarks), not the whole site.
            touched = sum(len(changed[name][s]) for s in STREAMS)
            assert touched <= second[name].rows <= touched + 2 * len(STREAMS), (name, second)
            assert trial.counts(name) == {s: len(sandboxes[name].records(s)) for s in STREAMS}
        # The flaky site resumed from what its failed run saved: only subscriptions in full.
        assert COUNTS["subscriptions"] <= second["flaky"].rows <= COUNTS["subscriptions"] + 4
        assert trial.counts("flaky") == COUNTS
        assert second["wrong"].rows == sum(COUNTS.values())  # its first complete run
        for run in ("run-1.log", "run-2.log"):
            text = (tmp_path / run).read_text()
            assert not [key for key in keys.values() if key in text]
    finally:
        for site in sandboxes.values():
            site.stop()
