"""Only the tap's CLI changes anything process-wide; a TapMaxio built in a program does not."""

from __future__ import annotations

import gc
import logging

from conftest import API_KEY, run_cli

from tap_maxio.auth import RedactSecrets
from tap_maxio.tap import TapMaxio


def test_building_a_tap_changes_nothing_process_wide():
    thresholds = gc.get_threshold()
    TapMaxio(config={"subdomain": "acme", "api_key": API_KEY})
    assert gc.get_threshold() == thresholds
    for handler in logging.getLogger().handlers:
        assert not any(isinstance(f, RedactSecrets) for f in handler.filters)


def test_the_cli_tunes_its_own_process(tmp_path):
    script = (
        "import gc, logging, sys\n"
        "from tap_maxio.auth import RedactSecrets\n"
        "from tap_maxio.tap import TapMaxio\n"
        "try:\n"
        "    TapMaxio.cli()\n"
        "except SystemExit:\n"
        "    pass\n"
        "tap = TapMaxio(config={'subdomain': 'acme', 'api_key': 'sk_live_0123'})\n"
        "filters = [f for h in logging.getLogger().handlers for f in h.filters]\n"
        "print(gc.get_threshold()[0], any(isinstance(f, RedactSecrets) for f in filters))\n"
    )
    config = {"subdomain": "acme", "api_key": "sk_live_0123"}
    result = run_cli(config, tmp_path, "--about", script=script, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "100000 True", result.stderr[-2000:]
