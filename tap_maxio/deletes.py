"""Tombstones: records Maxio purged, found in the events their purge left.

No list returns a deleted customer or subscription; `/events.json` keeps a
`customer_delete` or `subscription_deletion` event naming its id. A stream that
declares `tombstones` reads those events after its own records, with an id
bookmark of its own, and emits each as its primary key, `_sdc_deleted_at` and
every other field null: the Singer soft-delete convention loaders understand.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

import msgspec

from tap_maxio.windows import parse_timestamp, utc_iso

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    import requests
    from singer_sdk.helpers.types import Context

#: The field loaders read a soft delete from.
DELETED_AT = "_sdc_deleted_at"
#: The stream state's key of the last delete event read.
STATE_KEY = "deletes_after_id"
#: Where purges leave their events.
EVENTS_PATH = "/events.json"


class _Event(msgspec.Struct):
    id: int
    key: str
    created_at: str
    customer_id: int | None = None
    subscription_id: int | None = None


class _Item(msgspec.Struct):
    event: _Event


_EVENTS = list[_Item]


@dataclass(frozen=True)
class EventsRequest:
    """A request of `/events.json`: delete events after an id, or the newest event."""

    keys: tuple[str, ...] = ()
    since_id: int = 0
    per_page: int = 200

    def params(self) -> dict[str, t.Any]:
        """Only parameters the spec documents for `/events.json`."""
        if not self.keys:  # the newest event of any kind: where a first sync starts
            return {"direction": "desc", "per_page": 1, "page": 1}
        return {
            "filter": ",".join(self.keys),
            "since_id": self.since_id,
            "direction": "asc",
            "per_page": self.per_page,
            "page": 1,
        }


def parse_events(response: requests.Response) -> list[_Event]:
    """The events of a response; msgspec.ValidationError when not Maxio's shape."""
    return [item.event for item in msgspec.json.decode(response.content, type=_EVENTS)]


class Host(t.Protocol):
    """What tombstones need of their stream."""

    def send(
        self, context: Context | None, token: t.Any, parse: Callable[[requests.Response], t.Any]
    ) -> t.Any:
        """Send one request, parsed within its retries."""
        ...

    def get_context_state(self, context: Context | None) -> dict:
        """The stream's state."""
        ...

    def remember(self, context: Context | None, key: str, value: t.Any) -> None:
        """Keep a value in the stream's state, written with its next STATE."""
        ...


class Tombstones:
    """The records purged since the last run, as tombstones of one stream.

    `events` maps an event key to the event field that holds the record's id.
    """

    def __init__(self, host: Host, events: Mapping[str, str], key: str, page_size: int) -> None:
        """Tombstones keyed `key`, from the events `events` names."""
        self.host = host
        self.events = events
        self.key = key
        self.page_size = page_size

    def begin(self, context: Context | None) -> None:
        """On a first sync, note the newest event: purges after it are read next run.

        Nothing in the warehouse can be deleted yet, so older purges are not read.
        """
        if STATE_KEY in self.host.get_context_state(context):
            return
        newest = self.host.send(context, EventsRequest(), parse_events)
        self.host.remember(context, STATE_KEY, newest[0].id if newest else 0)

    def read(self, context: Context | None, fields: t.Iterable[str]) -> Iterator[dict]:
        """A tombstone per purge event after the bookmark, in event order."""
        last: int = self.host.get_context_state(context)[STATE_KEY]
        empty = dict.fromkeys(fields)
        keys = tuple(self.events)
        while True:
            request, first = EventsRequest(keys, last + 1, self.page_size), last
            page = self.host.send(context, request, parse_events)
            for event in sorted((e for e in page if e.id > last), key=lambda e: e.id):
                record_id = getattr(event, self.events.get(event.key, ""), None)
                if record_id is not None:
                    when = utc_iso(parse_timestamp(event.created_at))
                    yield {**empty, self.key: record_id, DELETED_AT: when}
                last = event.id
            self.host.remember(context, STATE_KEY, last)
            # A full page of nothing new (since_id not honoured) would be asked for forever.
            if len(page) < self.page_size or last == first:
                return
