#!/usr/bin/env python3
"""Generate tap_maxio/schemas/<stream>.json from Maxio's vendored OpenAPI specs.

Each stream in tap_maxio/streams.toml names a component (`schema`), optionally in
the legacy spec (`schema_source = "legacy"`); its JSON schema (draft 7) describes
one unwrapped record. `--out DIR` writes elsewhere; `--check` exits 1 when the
committed files are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import yaml

from tap_maxio.declaration import load
from tap_maxio.deletes import DELETED_AT

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tap_maxio.declaration import StreamSpec

Schema = dict[str, Any]
NULL: Schema = {"type": ["null"]}

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATHS = {
    "default": ROOT / "spec" / "openapi-2026.json",
    "legacy": ROOT / "spec" / "legacy-openapi.yaml",
}
STREAMS_TOML = ROOT / "tap_maxio" / "streams.toml"
SCHEMAS_DIR = ROOT / "tap_maxio" / "schemas"

# Properties the tap must expose although a component lacks them, as OpenAPI
# schemas: {component: {field: schema}}; the spec wins where it has the field.
# Empty because the 2026 export already has every required newer field
# (tests/test_schemas.py checks they stay there).
EXTRA_FIELDS: dict[str, dict[str, Any]] = {}

# int32/int64/email/uri... add nothing for a tap, or would reject real data.
KEPT_FORMATS = ("date-time", "date")


def load_spec(path: Path) -> Any:
    """Read a JSON or YAML spec and add EXTRA_FIELDS to its components."""
    text = path.read_text(encoding="utf-8")
    spec = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    components = spec.get("components", {}).get("schemas", {})
    for name, fields in EXTRA_FIELDS.items():
        if name in components:
            props = components[name].setdefault("properties", {})
            for field, field_schema in fields.items():
                props.setdefault(field, field_schema)
    return spec


def resolve(spec: Any, ref: str) -> Any:
    """Follow a local JSON pointer such as `#/components/schemas/Customer`."""
    if not ref.startswith("#/"):
        # Neither vendored spec has file or URL refs; fail loudly if one appears.
        raise ValueError(f"unsupported non-local $ref: {ref}")
    node = spec
    for part in ref[2:].split("/"):
        node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
    return node


def _types(schema: Schema) -> list[str]:
    types = schema.get("type", [])
    return [types] if isinstance(types, str) else list(types)


def _allows_null(schema: Schema) -> bool:
    return not schema or "null" in _types(schema) or any(map(_allows_null, schema.get("anyOf", [])))


def merge(parts: Sequence[Schema]) -> Schema:
    """Merge converted allOf parts; `null` is additive, as `allOf: [X, {nullable: true}]` means."""
    out: Schema = {}
    nullable = False
    for part in parts:
        for key, value in part.items():
            if key == "type":
                nullable = nullable or "null" in value
                types = _types(out) + [t for t in value if t != "null"]
                out["type"] = list(dict.fromkeys(types))
            elif key == "properties":
                out["properties"] = {**out.get("properties", {}), **value}
            else:
                out.setdefault(key, value)
    if nullable and "anyOf" in out:
        out["anyOf"] = out["anyOf"] if _allows_null(out) else [*out["anyOf"], NULL]
    elif nullable:
        out["type"] = [*_types(out), "null"]
    return out


def union(branches: Sequence[Schema]) -> Schema:
    """Turn oneOf/anyOf branches into the simplest schema accepting any of them."""
    if any(not b for b in branches):
        return {}  # one branch accepts anything, so the union does too
    flat = [x for b in branches for x in (b["anyOf"] if set(b) == {"anyOf"} else [b])]
    unique = [json.loads(s) for s in dict.fromkeys(json.dumps(b) for b in flat)]
    rest = [b for b in unique if b != NULL]
    if all(set(b) == {"type"} for b in rest):
        types = [t for b in rest for t in b["type"] if t != "null"]
        return {"type": list(dict.fromkeys(types + ["null"] * (len(rest) < len(unique))))}
    if len(rest) == 1 and "type" in rest[0]:
        return merge([rest[0], NULL] if NULL in unique else rest)
    return {"anyOf": unique}


def _own_types(node: Schema, composite: bool) -> list[str]:
    """Return the types a node states itself, inferring those OpenAPI leaves implicit."""
    types = _types(node)
    if not types and "properties" in node:
        types = ["object"]
    elif not types and "items" in node:
        types = ["array"]
    if node.get("nullable") is True and (types or not composite) and "null" not in types:
        types.append("null")  # alone, `{nullable: true}` is the spec's "or null" branch
    return types


def convert(node: Any, spec: Any, seen: tuple[str, ...] = ()) -> Schema:
    """Convert an OpenAPI 3.0/3.1 schema to JSON schema, keeping only what a tap needs.

    Everything not rebuilt here (enum, example, description, readOnly, xml,
    discriminator, x-*, validation limits) is dropped: vendor data outside those
    documented limits must not fail the sync. Types are always lists until finish().
    """
    if not isinstance(node, dict):
        return {}
    parts: list[Schema] = []
    if "$ref" in node:
        ref = node["$ref"]
        # A ref already being expanded would recurse forever; cut it with an
        # unconstrained schema. The 2026 spec has no cycles, but nothing forbids them.
        parts.append({} if ref in seen else convert(resolve(spec, ref), spec, (*seen, ref)))
    parts += [convert(p, spec, seen) for p in node.get("allOf", [])]
    for key in ("oneOf", "anyOf"):
        if key in node:
            parts.append(union([convert(b, spec, seen) for b in node[key]]))

    out: Schema = {}
    types = _own_types(node, composite=bool(parts))
    if types:
        out["type"] = types
    if node.get("format") in KEPT_FORMATS:
        out["format"] = node["format"]
    if "properties" in node:
        out["properties"] = {k: convert(v, spec, seen) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = convert(node["items"], spec, seen)
    if node.get("additionalProperties") not in (None, False) and not node.get("properties"):
        out = merge([out, {"type": ["object"], "additionalProperties": True}])
    return merge([*parts, out])


def finish(schema: Schema, name: str = "", nullable: bool = True) -> Schema:
    """Apply the tap's rules: nullable properties, `*_at` timestamps, no nested `required`."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: finish(v, k) for k, v in out["properties"].items()}
    if "items" in out:
        out["items"] = finish(out["items"], nullable=False)
    if "anyOf" in out:
        out["anyOf"] = [finish(b, nullable=False) for b in out["anyOf"]]
        if nullable and not _allows_null(out):
            out["anyOf"].append({"type": "null"})
    types = _types(out)
    if name.endswith("_at") and [t for t in types if t != "null"] == ["string"]:
        out.setdefault("format", "date-time")  # Maxio's *_at fields are timestamps
    if nullable and types and "null" not in types:
        types.append("null")
    if types:
        out["type"] = types[0] if len(types) == 1 else types
    return out


def record_schema(component: Schema, primary_key: Sequence[str]) -> Schema:
    """Build the top-level record schema: an open object whose keys are non-null and required."""
    # A top-level union (e.g. InvoiceEvent, PaymentProfile) becomes one object
    # holding every branch's properties, since a Singer record needs `properties`.
    branches = component.get("anyOf", [component])
    props: dict[str, Schema] = {}
    for branch in branches:
        for key, value in branch.get("properties", {}).items():
            props[key] = union([props[key], value]) if key in props else value
    missing = [k for k in primary_key if k not in props]
    if missing:
        raise ValueError(f"primary key {missing} not among the component's properties")
    out = finish({"type": ["object"], "properties": props}, nullable=False)
    for key in primary_key:
        pk = out["properties"][key]
        types = [t for t in _types(pk) if t != "null"]
        if not types or "anyOf" in pk:
            raise ValueError(f"primary key {key!r} has no plain type to make non-null")
        pk["type"] = types[0] if len(types) == 1 else types
    out["required"] = list(primary_key)
    return out


def generate_all(
    spec_paths: Mapping[str, Path] = SPEC_PATHS, streams_toml: Path = STREAMS_TOML
) -> dict[str, Schema]:
    """Return {stream name: record schema} for every stream in streams.toml."""
    specs: dict[str, Any] = {}
    schemas: dict[str, Schema] = {}
    for name, stream in load(streams_toml).items():
        # Fields the tap adds (parent ids, partition keys), or a whole schema
        # where the API's records are bare values with no component.
        added = {k: {"type": [v]} for k, v in stream.fields.items()}
        component: Schema = {"type": ["object"], "properties": {}}
        if stream.schema is not None:
            source = stream.schema_source
            if source not in specs:
                specs[source] = load_spec(spec_paths[source])
            component = convert({"$ref": f"#/components/schemas/{stream.schema}"}, specs[source])
        if added:
            branches = component.get("anyOf", [component])
            for branch in branches:
                branch["properties"] = {**added, **branch.get("properties", {})}
        schema = record_schema(component, stream.primary_keys)
        # Fields the spec lists but the API never returns (`omit`), e.g. invoices' id.
        for field in stream.omit:
            del schema["properties"][field]
        if stream.tombstones or stream.deleted_field:
            schema["properties"][DELETED_AT] = deleted_at_schema(stream)
        schemas[name] = schema
    return schemas


def deleted_at_schema(stream: StreamSpec) -> Schema:
    """`_sdc_deleted_at`, saying where a stream's deletes come from (the catalog tells)."""
    if stream.tombstones:
        events = " or ".join(f"`{key}`" for key in stream.tombstones)
        source = (
            f"a tombstone for Maxio's {events} event: the key and this are set, "
            "every other field is null"
        )
    else:
        source = f"the record's own `{stream.deleted_field}`"
    return {
        "type": ["string", "null"],
        "format": "date-time",
        "description": f"When the record was deleted in Maxio, from {source}.",
    }


def render(schema: Schema) -> str:
    """Serialise deterministically, in spec property order."""
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the schemas, or with --check report the ones that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=SCHEMAS_DIR, help="output directory")
    parser.add_argument("--check", action="store_true", help="exit 1 if files are stale")
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    stale = []
    for name, schema in generate_all().items():
        path = out_dir / f"{name}.json"
        text = render(schema)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"out of date: {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
