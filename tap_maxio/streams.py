"""The streams, each declared by one table of streams.toml."""

from __future__ import annotations

import sys
import typing as t
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_maxio.client import MaxioStream

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMAS = SchemaDirectory(resources.files("tap_maxio") / "schemas")
REPLICATIONS = ("updated_at", "since_id", "window", "full_table")


def declarations() -> dict[str, dict[str, t.Any]]:
    """The tables of streams.toml, in file order."""
    text = (resources.files("tap_maxio") / "streams.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def declare(name: str, spec: dict[str, t.Any]) -> type[MaxioStream]:
    """Build the stream class a table of streams.toml declares."""
    replication = spec.get("replication", "full_table")
    if replication not in REPLICATIONS:
        msg = f"streams.toml: {name}.replication must be one of {REPLICATIONS}"
        raise ValueError(msg)
    attrs: dict[str, t.Any] = {
        "__doc__": f"The `{spec['path']}` list.",
        "__module__": __name__,
        "name": name,
        "path": spec["path"],
        "primary_keys": tuple(spec["primary_key"]),
        "replication_key": {"updated_at": "updated_at", "since_id": "id"}.get(replication),
        "replication": replication,
        "wrapper": spec.get("wrapper"),
        "records_key": spec.get("records_key"),
        "sort_param": spec.get("sort_param", {}),
        "tie_param": spec.get("tie_param", {}),
        "params": spec.get("params", {}),
        "invoicing": spec.get("invoicing"),
        "since_id_inclusive": spec.get("since_id", "inclusive") == "inclusive",
        "id_order": spec.get("id_order", "asc"),
        "paged": spec.get("paged", True),
        "fixed_page_size": spec.get("page_size"),
        "filter_style": spec.get("filter_style", "plain"),
        "scalar": spec.get("scalar"),
        "context_fields": spec.get("context", {}),
        "only_when": spec.get("only_when", {}),
        "partition_list": spec.get("partitions"),
        # A child keeps one bookmark for all parents, unless declared per parent.
        "state_keys": spec.get("state_keys", []) if "parent" in spec else None,
        # Children fan out one request per parent record: the user opts in.
        "selected_by_default": "parent" not in spec,
        # Maxio is not known to touch a parent's updated_at when a child changes
        # (a note added, a code added to a coupon): a selected child has its
        # parent read whole, so that no parent's children are left unread.
        "ignore_parent_replication_key": "parent" in spec,
        "schema": StreamSchema(SCHEMAS, key=name),
    }
    class_name = "".join(part.title() for part in name.split("_")) + "Stream"
    return type(class_name, (MaxioStream,), attrs)


def stream_types() -> list[type[MaxioStream]]:
    """Every declared stream class, children linked to their parents."""
    specs = declarations()
    types = {name: declare(name, spec) for name, spec in specs.items()}
    for name, spec in specs.items():
        if "parent" in spec:
            child = types[name]
            child.parent_stream_type = types[spec["parent"]]
    return list(types.values())


STREAM_TYPES = stream_types()
