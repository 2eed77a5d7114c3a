"""Singer messages out: records in blocks, every other message at once."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder, serialize_jsonl
from singer_sdk.singerlib import Message, RecordMessage, StateMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from datetime import datetime

#: Bytes of RECORD messages held before they are written.
BLOCK = 1 << 16


class Output(MsgSpecWriter):
    """The SDK's msgspec writer, with RECORD messages written in blocks.

    The SDK flushes stdout after each message: one write for each record, an
    eighth of the tap's CPU over a whole site. Records wait here until they fill
    a block or another message comes, so a STATE still follows every record it
    covers. The tap also flushes after each stream and before it fails on an
    error; a process killed loses only records no STATE had covered yet.
    """

    def __init__(self) -> None:
        """Hold nothing yet."""
        super().__init__()
        self._held = bytearray()

    @override
    def serialize_message(self, message: Message) -> bytearray:
        """A message as a line; a STATE without the deep copy the SDK makes of it first."""
        if isinstance(message, StateMessage):
            return serialize_jsonl({"type": "STATE", "value": message.value})
        return super().serialize_message(message)

    @override
    def write_message(self, message: Message) -> None:
        """Hold a RECORD; write the held ones with any other message at once."""
        if isinstance(message, RecordMessage):
            record, version = message.record, message.version
            self.write_record(message.stream, record, version, message.time_extracted)
            return
        self._held += self.format_message(message)
        self.flush()

    def write_record(
        self, stream: str, record: dict, version: int | None, time_extracted: datetime | None
    ) -> None:
        """Hold a RECORD message, as the SDK's RecordMessage would serialise, without one.

        The held ones are written once they fill a block.
        """
        message: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        if time_extracted is not None:
            message["time_extracted"] = time_extracted
        encoder.encode_into(message, self._held, -1)
        self._held += b"\n"
        if len(self._held) >= BLOCK:
            self.flush()

    def flush(self) -> None:
        """Write what is held."""
        if self._held:
            sys.stdout.buffer.write(self._held)
            sys.stdout.flush()
            self._held.clear()
