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


class StreamSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One table of streams.toml; the file's header says what each key means."""

    path: str
    primary_keys: list[str]
    replication: Replication = "full_table"
    wrapper: str | None = None
    records_key: str | None = None
    scalar: str | None = None
    paged: bool = True
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

    @property
    def replication_key(self) -> str | None:
        """The record field the bookmark is kept on, in the SDK's terms."""
        return {"updated_at": "updated_at", "since_id": "id"}.get(self.replication)


def allowed(key: str) -> str:
    """What a key of a table may hold, for an error message."""
    hints = t.get_type_hints(StreamSpec)
    if key not in hints:
        return "keys: " + ", ".join(StreamSpec.__struct_fields__)
    hint = hints[key]
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
        if message.startswith("Object contains unknown field"):
            hint = allowed("")
        else:
            where = message.rpartition(" - at `$.")[2].rstrip("`")
            hint = allowed(where.split(".")[0].split("[")[0])
        raise DeclarationError(f"streams.toml [{name}]: {message}; allowed {hint}") from None
    if spec.parent is not None and spec.parent not in names:
        message = f"streams.toml [{name}]: parent {spec.parent!r} is not a stream"
        raise DeclarationError(message)
    if spec.wrapper is None and spec.records_key is None:
        message = f"streams.toml [{name}]: give wrapper, records_key or both"
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
