"""streams.toml, read into one typed declaration per stream.

The tap and `scripts/generate_schemas.py` both read the file through `load()`,
so a misspelled key or value stops both on one line that names the stream, the
key and what is allowed, instead of being silently ignored.
"""

from __future__ import annotations

import sys
import typing as t
from importlib import resources

import msgspec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if t.TYPE_CHECKING:
    from pathlib import Path

Replication = t.Literal["updated_at", "since_id", "window", "full_table"]


class DeclarationError(ValueError):
    """A table of streams.toml that the tap cannot read."""


class Backfill(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a first sync reads a list that cannot sort by updated_at: by an immutable date.

    Rows never leave a window of their creation time when they change, so such
    windows, read in that order with keyset restarts, are drift-free.
    """

    date_field: t.Literal["created_at"]
    sort_param: t.Annotated[dict[str, str], msgspec.Meta(min_length=1)]
    #: "keyset": in windows restarted from the last date read; "pages": one window
    #: read by page numbers, several at once, where the order is immutable too.
    read: t.Literal["keyset", "pages"] = "keyset"


class StreamSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One table of streams.toml; the file's header says what each key means."""

    path: str
    primary_keys: list[str]
    replication: Replication = "full_table"
    wrapper: str | None = None
    records_key: str | None = None
    scalar: str | None = None
    paged: bool = True
    newest_first: bool = False
    page_size: int | None = None
    params: dict[str, str | list[str]] = {}
    sort_param: dict[str, str] = {}
    tie_param: dict[str, str] = {}
    filter_style: t.Literal["plain", "filter"] = "plain"
    since_id: t.Literal["inclusive", "exclusive"] = "inclusive"
    id_order: t.Literal["asc", "any"] = "asc"
    id_ranges: bool = False
    invoicing: t.Literal["relationship", "legacy"] | None = None
    parent: str | None = None
    context: dict[str, str] = {}
    only_when: dict[str, list[str]] = {}
    state_keys: list[str] | None = None
    partitions: list[dict[str, str]] | None = None
    feature: bool = False
    schema: str | None = None
    schema_source: t.Literal["default", "legacy"] = "default"
    omit: list[str] = []
    fields: dict[str, str] = {}
    tombstones: dict[str, t.Literal["customer_id", "subscription_id"]] = {}
    deleted_field: str | None = None
    backfill: Backfill | None = None
    count_key: str | None = None

    @property
    def replication_key(self) -> str | None:
        """The record field the bookmark is kept on, in the SDK's terms."""
        return {"updated_at": "updated_at", "since_id": "id"}.get(self.replication)

    def order(self, date_field: str, *, tie: bool) -> dict[str, str]:
        """How to ask for a window of `date_field` in order (`tie`: one crowded second)."""
        if self.backfill is not None and date_field == self.backfill.date_field:
            # Creation order is also a stable order within one second.
            return self.backfill.sort_param
        return self.tie_param if tie else self.sort_param


def allowed(where: str) -> str:
    """What the key at `where` (`paged`, `backfill.date_field`) may hold, for an error message.

    A table, or a key that is not one, is answered with the keys of the table.
    """
    struct: t.Any = StreamSpec
    hint: t.Any = None
    for key in (part.split("[")[0] for part in where.split(".") if part):
        hints = t.get_type_hints(struct)
        hint = hints.get(key)
        inner = [o for o in (hint, *t.get_args(hint)) if isinstance(o, type)]
        tables = [o for o in inner if issubclass(o, msgspec.Struct)]
        if not tables:
            break
        struct, hint = tables[0], None
    if hint is None:
        return "keys: " + ", ".join(struct.__struct_fields__)
    options = [hint] if t.get_origin(hint) is t.Literal else t.get_args(hint)
    literals = [v for o in options if t.get_origin(o) is t.Literal for v in t.get_args(o)]
    if literals:
        return "values: " + ", ".join(literals)
    return f"type: {getattr(hint, '__name__', hint)}"


def parse(name: str, table: dict[str, t.Any], names: t.Container[str]) -> StreamSpec:
    """One table as a StreamSpec; DeclarationError names the stream, key and what fits."""
    try:
        spec = msgspec.convert(table, StreamSpec)
    except msgspec.ValidationError as exc:
        message = str(exc)
        _, at, where = message.rpartition(" - at `$")
        hint = allowed(where.rstrip("`") if at else "")
        raise DeclarationError(f"streams.toml [{name}]: {message}; allowed {hint}") from None
    if spec.parent is not None and spec.parent not in names:
        message = f"streams.toml [{name}]: parent {spec.parent!r} is not a stream"
        raise DeclarationError(message)
    if spec.wrapper is None and spec.records_key is None:
        message = f"streams.toml [{name}]: give wrapper, records_key or both"
        raise DeclarationError(message)
    backfill = spec.backfill
    pages = backfill is not None and backfill.read == "pages"
    # Keyset restarts need the records' own dates, which a "window" list lacks.
    if (
        backfill is not None
        and spec.replication != "updated_at"
        and not (pages and spec.replication == "window")
    ):
        message = f'streams.toml [{name}]: backfill needs replication = "updated_at"'
        raise DeclarationError(message + ' (or "window" with read = "pages")')
    if spec.count_key is not None and spec.records_key is None:
        message = f"streams.toml [{name}]: count_key needs records_key (the count is beside it)"
        raise DeclarationError(message)
    if spec.tombstones and len(spec.primary_keys) != 1:
        message = f"streams.toml [{name}]: tombstones need a primary key of one field"
        raise DeclarationError(message)
    return spec


def load(path: Path | None = None) -> dict[str, StreamSpec]:
    """Every stream declared in streams.toml (or `path`), in file order."""
    source = path or resources.files("tap_maxio") / "streams.toml"
    tables = tomllib.loads(source.read_text(encoding="utf-8"))
    return {name: parse(name, table, tables) for name, table in tables.items()}
