"""Run the tap: `python -m tap_maxio`."""

from tap_maxio.tap import TapMaxio

TapMaxio.cli()
