"""The SDK's standard tap tests, against a sandbox site."""

from __future__ import annotations

import atexit

from conftest import sandbox_config, tap_config
from singer_sdk.testing import get_tap_test_class

from tap_maxio.sandbox import Sandbox
from tap_maxio.tap import TapMaxio

# The test class is built at import, so the site must be up before collection.
_SITE = Sandbox(sandbox_config())
_SITE.start()
atexit.register(_SITE.stop)

TestTapMaxio = get_tap_test_class(TapMaxio, config=tap_config(_SITE))
