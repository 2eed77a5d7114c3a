"""`meltano run tap-maxio target-jsonl` against the sandbox site."""

from __future__ import annotations

import os

from conftest import API_KEY, COUNTS, ROOT, meltano


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
