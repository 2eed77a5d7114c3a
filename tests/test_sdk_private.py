"""The SDK's private members the tap relies on: these fail when an SDK release changes one."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from singer_sdk import Stream

import tap_maxio

#: Each private method of the SDK's Stream the tap overrides or calls, with its parameters.
PINNED = {
    "_increment_stream_state": ["latest_record", "context"],
    "_write_activate_version_message": ["full_table_version"],
    "_write_record_message": ["record"],
    "_write_schema_message": [],
    "_write_starting_replication_value": ["context"],
    "_write_state_message": [],
}


def test_the_private_methods_the_tap_uses_are_the_pinned_ones():
    used: set[str] = set()
    for path in Path(tap_maxio.__file__).parent.glob("*.py"):
        used |= set(re.findall(r"\b(_[a-z]\w*)\b", path.read_text()))
    assert {name for name in used if hasattr(Stream, name)} == set(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_each_pinned_method_keeps_its_parameters(name):
    assert list(inspect.signature(getattr(Stream, name)).parameters)[1:] == PINNED[name]


def test_records_carry_the_version_the_tap_sets():
    # The tap sets _stream_version before a full-table read; the SDK puts it on each
    # RECORD it writes (where the catalog deselects a property, see _write_record_message).
    assert "self._stream_version" in inspect.getsource(Stream.__init__)
    assert "self._stream_version" in inspect.getsource(Stream._generate_record_messages)
    assert "_generate_record_messages" in inspect.getsource(Stream._write_record_message)
