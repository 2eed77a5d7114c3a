"""`meltano run tap-maxio target-jsonl` against the sandbox site."""

from __future__ import annotations

import json
import os

import pytest
from conftest import API_KEY, COUNTS, ROOT, meltano
from singer_sdk.exceptions import ConfigValidationError

from tap_maxio.tap import TapMaxio


def test_meltano_run_loads_every_record(shared_sandbox, tmp_path):
    assert (ROOT / ".meltano" / "extractors" / "tap-maxio").is_dir(), (
        "the plugins are not installed: run `make test`, which runs `meltano install`"
    )
    env = {
        **os.environ,
        "TAP_MAXIO_BASE_URL": shared_sandbox.url,
        "TAP_MAXIO_API_KEY": API_KEY,
        "TAP_MAXIO_SUBDOMAIN": "acme",
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = meltano("run", "--no-state-update", "tap-maxio", "target-jsonl", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for stream, count in COUNTS.items():
        (path,) = tmp_path.glob(f"{stream}*.jsonl")
        lines = path.read_text().splitlines()
        assert len(lines) == count
    # Children cost one request per parent: meltano.yml leaves them unselected.
    assert not list(tmp_path.glob("usages*.jsonl"))
    assert not list(tmp_path.glob("prepayments*.jsonl"))
    assert API_KEY not in result.stdout + result.stderr


def test_numeric_settings_can_be_set_in_the_environment():
    # Meltano turns a `kind: decimal` setting from the environment into a Decimal,
    # which it then fails to write as JSON: every command crashed.
    env = {
        **os.environ,
        "TAP_MAXIO_API_KEY": API_KEY,
        "TAP_MAXIO_SUBDOMAIN": "acme",
        "TAP_MAXIO_RETRY_BACKOFF": "0.5",
        "TAP_MAXIO_MAX_RETRIES": "3",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = meltano("invoke", "--dump=config", "tap-maxio", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads(result.stdout)
    tap = TapMaxio(config=config, validate_config=True)
    assert float(tap.config["retry_backoff"]) == 0.5
    assert tap.config["max_retries"] == 3
    with pytest.raises(ConfigValidationError) as refused:
        TapMaxio(config={**config, "retry_backoff": "soon"}, validate_config=True)
    assert any("config['retry_backoff']" in error for error in refused.value.errors)
