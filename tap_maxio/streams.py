"""The streams, each declared by one table of streams.toml."""

from __future__ import annotations

import typing as t
from functools import cache
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_maxio.client import MaxioStream
from tap_maxio.declaration import StreamSpec, load
from tap_maxio.readers import reader_for

SCHEMAS = SchemaDirectory(resources.files("tap_maxio") / "schemas")


def declare(name: str, spec: StreamSpec) -> type[MaxioStream]:
    """Build the stream class a table of streams.toml declares."""
    is_child = spec.parent is not None
    attrs: dict[str, t.Any] = {
        "__doc__": f"The `{spec.path}` list.",
        "__module__": __name__,
        "name": name,
        "spec": spec,
        "reader_type": reader_for(spec),
        "path": spec.path,
        "primary_keys": tuple(spec.primary_keys),
        "replication_key": spec.replication_key,
        # Children fan out one request per parent record: the user opts in.
        "selected_by_default": not is_child,
        # Maxio is not known to touch a parent's updated_at when a child changes
        # (a note added, a code added to a coupon): a selected child has its
        # parent read whole, so that no parent's children are left unread.
        "ignore_parent_replication_key": is_child,
        "schema": StreamSchema(SCHEMAS, key=name),
    }
    class_name = "".join(part.title() for part in name.split("_")) + "Stream"
    return type(class_name, (MaxioStream,), attrs)


@cache
def stream_types() -> list[type[MaxioStream]]:
    """Every declared stream class, children linked to their parents."""
    specs = load()
    types = {name: declare(name, spec) for name, spec in specs.items()}
    for name, spec in specs.items():
        if spec.parent is not None:
            types[name].parent_stream_type = types[spec.parent]
    return list(types.values())


def __getattr__(name: str) -> t.Any:
    """STREAM_TYPES, built on first use: a bad streams.toml then fails in the CLI's hands."""
    if name == "STREAM_TYPES":
        return stream_types()
    raise AttributeError(name)
