"""Tests for scripts/generate_schemas.py and the committed tap_maxio/schemas/*.json."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import sandbox_config, site_records
from jsonschema import Draft7Validator, FormatChecker

from maxio_sandbox import Sandbox
from tap_maxio.declaration import load

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = ROOT / "tap_maxio" / "schemas"
STREAMS = load()
CORE = ("subscriptions", "customers", "invoices")


def _load_generator() -> ModuleType:
    # scripts/ is not a package, so import the file by path.
    spec = importlib.util.spec_from_file_location(
        "generate_schemas", ROOT / "scripts" / "generate_schemas.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    # Fresh output, so these tests check the generator; the committed files
    # are tied to it by test_regeneration_is_byte_identical.
    result: dict[str, dict[str, Any]] = gen.generate_all()
    return result


def _types(prop: dict[str, Any]) -> list[str]:
    t = prop.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    assert gen.main(["--out", str(tmp_path)]) == 0
    for name in STREAMS:
        committed = (SCHEMAS_DIR / f"{name}.json").read_bytes()
        assert (tmp_path / f"{name}.json").read_bytes() == committed, f"{name}.json is stale"


def test_check_flags_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "customers.json").write_text("{}\n", encoding="utf-8")
    assert gen.main(["--out", str(tmp_path), "--check"]) == 1
    assert "customers.json" in capsys.readouterr().err


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_schema_is_valid_draft7(schemas: dict[str, dict[str, Any]], stream: str) -> None:
    Draft7Validator.check_schema(schemas[stream])


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_only_primary_key_is_non_null(schemas: dict[str, dict[str, Any]], stream: str) -> None:
    pk = STREAMS[stream].primary_keys
    schema = schemas[stream]
    assert schema["required"] == pk
    for name, prop in schema["properties"].items():
        nullable = "null" in _types(prop) or any("null" in _types(b) for b in prop.get("anyOf", []))
        assert nullable is (name not in pk), name


def _walk_properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, schema) of every property at any depth, through arrays and unions."""
    found = []
    for name, prop in schema.get("properties", {}).items():
        found += [(name, prop), *_walk_properties(prop)]
    for sub in [*([schema["items"]] if "items" in schema else []), *schema.get("anyOf", [])]:
        found += _walk_properties(sub)
    return found


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_nested_rules(schemas: dict[str, dict[str, Any]], stream: str) -> None:
    top = schemas[stream]["properties"]
    props = _walk_properties(schemas[stream])
    for name, prop in props:
        # The one description is the tap's own: where _sdc_deleted_at comes from.
        kept = {"description"} if name == "_sdc_deleted_at" else set()
        assert not {"required", "enum", "description", "example"} - kept & set(prop), name
        if name.endswith("_in_cents") and "type" in prop and stream in CORE:
            # Elsewhere the spec itself types a few as strings (event data).
            assert set(_types(prop)) <= {"integer", "null"}, name
        if name.endswith("_at") and "string" in _types(prop):
            assert prop.get("format") in ("date-time", "date"), (
                name
            )  # date only if the spec says so
        if top.get(name) is not prop:  # nested: always nullable
            assert "null" in _types(prop) or {"type": "null"} in prop.get("anyOf", []), name


def _nulled_at(value: Any, depth: int, at: int = 1) -> Any:
    """A copy of a record with every property `depth` levels down made null.

    The record's own properties are level 1; array items are not properties.
    """
    if isinstance(value, list):
        return [_nulled_at(item, depth, at) for item in value]
    if not isinstance(value, dict):
        return value
    return {k: None if at == depth else _nulled_at(v, depth, at + 1) for k, v in value.items()}


def _depth(value: Any) -> int:
    """How many levels of properties a record has."""
    if isinstance(value, list):
        return max(map(_depth, value), default=0)
    if not isinstance(value, dict):
        return 0
    return 1 + max(map(_depth, value.values()), default=0)


@pytest.fixture(scope="module")
def site_records_by_stream() -> dict[str, list[dict[str, Any]]]:
    """A few records of each stream, as the sandbox serves them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for invoicing in ("relationship", "legacy"):
        site = Sandbox(sandbox_config(invoicing=invoicing))
        for stream in STREAMS:
            # A stream of every site is read from the relationship-invoicing one.
            if (STREAMS[stream].invoicing or "relationship") != invoicing:
                continue
            found[stream] = [record for record, _ in site_records(site, stream)]
    return found


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_null_nested_values_fit_the_generated_schema(
    schemas: dict[str, dict[str, Any]],
    site_records_by_stream: dict[str, list[dict[str, Any]]],
    stream: str,
) -> None:
    """A loader must take a record with any nested object or value null."""
    records = site_records_by_stream[stream]
    assert records, f"the sandbox has no {stream}"
    # Keys and top-level nullability are checked above; nested levels here.
    validator = Draft7Validator({k: v for k, v in schemas[stream].items() if k != "required"})
    samples = [*records, *(_nulled_at(r, d) for r in records[:20] for d in range(2, _depth(r) + 1))]
    for record in samples:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
        assert not errors, errors[:3]


def test_the_sandbox_sends_null_nested_objects(
    site_records_by_stream: dict[str, list[dict[str, Any]]],
) -> None:
    # Without them, only the nulls made up above would test the schemas.
    invoices = site_records_by_stream["invoices"]
    assert any(r["shipping_address"] is None for r in invoices)
    assert any(r["shipping_address"] is not None for r in invoices)
    assert any(r["customer"]["organization"] is None for r in invoices)


def test_subscriptions_key_fields(schemas: dict[str, dict[str, Any]]) -> None:
    props = schemas["subscriptions"]["properties"]
    assert props["id"] == {"type": "integer"}
    assert props["updated_at"]["format"] == "date-time"
    assert "string" in _types(props["updated_at"])
    customer = props["customer"]
    assert _types(customer) == ["object", "null"]
    assert "surcharging" in customer["properties"] and "id" in customer["properties"]
    assert _types(props["balance_in_cents"]) == ["integer", "null"]
    assert _types(props["signup_revenue"]) == ["string", "null"]
    # `oneOf: [{nullable: true}, {$ref: <string enum>}]` collapses to a plain nullable string.
    assert props["cancellation_method"] == {"type": ["string", "null"]}


def test_customers_newer_fields(schemas: dict[str, dict[str, Any]]) -> None:
    props = schemas["customers"]["properties"]
    expected = {
        "surcharging": "boolean",
        "salesforce_id": "string",
        "tax_exempt_reason": "string",
        "default_auto_renewal_profile_id": "integer",
        "maxioid": "string",
        "branding_theme_id": "integer",
    }
    for name, type_ in expected.items():
        assert _types(props[name]) == [type_, "null"], name


def test_invoices_key_fields(schemas: dict[str, dict[str, Any]]) -> None:
    schema = schemas["invoices"]
    props = schema["properties"]
    assert props["uid"] == {"type": "string"} and schema["required"] == ["uid"]
    for money in ("total_amount", "due_amount", "debit_amount"):
        assert _types(props[money]) == ["string", "null"], money
    line_items = props["line_items"]
    assert _types(line_items) == ["array", "null"]
    assert (
        _types(line_items["items"]) == ["object"]
        and "total_amount" in line_items["items"]["properties"]
    )
    assert _types(props["debits"]) == ["array", "null"]
    assert _types(props["avatax_details"]) == ["object", "null"]
    assert props["public_url_expires_on"] == {"type": ["string", "null"], "format": "date"}
    assert _types(props["branding_theme_id"]) == ["integer", "null"]


def _examples(content: dict[str, Any]) -> list[Any]:
    """Every example the spec gives for one response body, wherever it is put."""
    schema = content.get("schema", {})
    found = [e["value"] for e in content.get("examples", {}).values() if "value" in e]
    found += [c["example"] for c in (content, schema, *schema.get("allOf", [])) if "example" in c]
    return found


def _records(stream: str) -> list[dict[str, Any]]:
    """Example records for a stream from its list and read endpoints, envelopes removed."""
    paths = json.loads((ROOT / "spec" / "openapi-2026.json").read_text(encoding="utf-8"))["paths"]
    conf = STREAMS[stream]
    base = conf.path.removesuffix(".json")
    records: dict[str, dict[str, Any]] = {}  # keyed by JSON: the same example is often given twice
    for path, item in paths.items():
        is_list = path == conf.path
        if (
            not (is_list or re.fullmatch(re.escape(base) + r"/\{[^/}]+\}\.json", path))
            or "get" not in item
        ):
            continue
        content = (
            item["get"]["responses"].get("200", {}).get("content", {}).get("application/json", {})
        )
        for example in _examples(content):
            batch = example if isinstance(example, list) else [example]
            if is_list and conf.records_key is not None:
                batch = example[conf.records_key]
            for wrapped in batch:
                record = wrapped[conf.wrapper] if conf.wrapper is not None else wrapped
                records[json.dumps(record, sort_keys=True)] = record
    return list(records.values())


def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(
        re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", value)
    )


# Streams whose records are the spec's own objects, with an example in the 2026
# spec (the legacy spec's examples are checked by the test below; records the
# tap adds fields to, or builds from bare values, have no example to compare).
EXAMPLE_STREAMS = sorted(
    name
    for name, conf in STREAMS.items()
    if conf.schema_source == "default"
    and not conf.fields
    and conf.scalar is None
    and _records(name)
)


def test_the_core_streams_have_examples() -> None:
    assert set(CORE) <= set(EXAMPLE_STREAMS)
    assert len(EXAMPLE_STREAMS) >= 15


@pytest.mark.parametrize("stream", EXAMPLE_STREAMS)
def test_spec_examples_validate(schemas: dict[str, dict[str, Any]], stream: str) -> None:
    records = _records(stream)
    assert records, f"no example for {stream} in the spec"
    checker = FormatChecker()
    checker.checks("date-time")(
        _date_time
    )  # jsonschema checks date-time only with an extra package
    # Some examples leave out the key (allocations); the sandbox tests check keys.
    schema = {k: v for k, v in schemas[stream].items() if k != "required"}
    validator = Draft7Validator(schema, format_checker=checker)
    for record in records:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
        assert not errors, errors


@pytest.mark.parametrize("source", sorted(gen.SPEC_PATHS))
def test_every_component_converts(source: str) -> None:
    spec = gen.load_spec(gen.SPEC_PATHS[source])
    for name in spec["components"]["schemas"]:
        schema = gen.convert({"$ref": f"#/components/schemas/{name}"}, spec)
        Draft7Validator.check_schema(gen.finish(schema))
        if "properties" in schema or "anyOf" in schema:
            Draft7Validator.check_schema(gen.record_schema(schema, []))


# Responses whose `*_at` fields hold status text ("Not Invited") or filler, not timestamps.
NOT_TIMESTAMPS = {
    "/portal/customers/{customer_id}/invitations/invite.json",
    "/portal/customers/{customer_id}/invitations/revoke.json",
}


@pytest.mark.parametrize("source", sorted(gen.SPEC_PATHS))
def test_every_response_example_validates(source: str) -> None:
    """Beyond the streams: the converter must accept every example body either spec gives."""
    spec = gen.load_spec(gen.SPEC_PATHS[source])
    checker = FormatChecker()
    checker.checks("date-time")(_date_time)
    checked = 0
    for path, item in spec["paths"].items():
        for op in item.values():
            for response in op.get("responses", {}).values() if isinstance(op, dict) else []:
                content = response.get("content", {}).get("application/json", {})
                if "schema" not in content or path in NOT_TIMESTAMPS:
                    continue
                validator = Draft7Validator(
                    gen.finish(gen.convert(content["schema"], spec)), format_checker=checker
                )
                for example in _examples(content):
                    checked += 1
                    errors = [
                        f"{path} {list(e.absolute_path)}: {e.message}"
                        for e in validator.iter_errors(example)
                    ]
                    assert not errors, errors
    assert checked > 10


COMPONENTS = {
    "Self": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "parent": {"$ref": "#/components/schemas/Self"}},
    },
    "Kind": {"type": "string", "enum": ["a", "b"]},
    "Thing": {"type": "object", "properties": {"id": {"type": "integer"}}},
}


@pytest.mark.parametrize(
    ("openapi", "expected"),
    [
        (
            {"oneOf": [{"nullable": True}, {"$ref": "#/components/schemas/Kind"}]},
            {"type": ["string", "null"]},
        ),
        (
            {"oneOf": [{"type": "string"}, {"type": "integer", "format": "int32"}]},
            {"type": ["string", "integer"]},
        ),
        ({"oneOf": [{"type": "string"}, {"description": "anything"}]}, {}),
        (
            {"type": ["string", "null"], "format": "date-time"},
            {"type": ["string", "null"], "format": "date-time"},
        ),
        (
            {"allOf": [{"$ref": "#/components/schemas/Kind"}, {"description": "d"}]},
            {"type": ["string"]},
        ),
        (
            {"type": "object", "additionalProperties": {"type": "string"}},
            {"type": ["object"], "additionalProperties": True},
        ),
        (
            {"oneOf": [{"nullable": True}, {"$ref": "#/components/schemas/Thing"}]},
            {"type": ["object", "null"], "properties": {"id": {"type": ["integer"]}}},
        ),
        (
            {
                "anyOf": [
                    {"$ref": "#/components/schemas/Thing"},
                    {"type": "array", "items": {"type": "string"}},
                ]
            },
            {
                "anyOf": [
                    {"type": ["object"], "properties": {"id": {"type": ["integer"]}}},
                    {"type": ["array"], "items": {"type": ["string"]}},
                ]
            },
        ),
        (
            {"$ref": "#/components/schemas/Self"},  # recursion is cut at the repeat
            {"type": ["object"], "properties": {"id": {"type": ["integer"]}, "parent": {}}},
        ),
    ],
)
def test_convert_constructs(openapi: dict[str, Any], expected: dict[str, Any]) -> None:
    assert gen.convert(openapi, {"components": {"schemas": COMPONENTS}}) == expected


def test_record_rules_on_a_synthetic_component() -> None:
    component = gen.convert(
        {
            "type": "object",
            "required": ["uid", "kind"],
            "properties": {
                "uid": {"type": "string"},
                "kind": {"$ref": "#/components/schemas/Kind"},
                "seen_at": {"type": "string"},
                "due_on": {"type": "string"},
                "either": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Thing"},
                        {"type": "array", "items": {"type": "string"}},
                    ]
                },
            },
        },
        {"components": {"schemas": COMPONENTS}},
    )
    assert gen.record_schema(component, ["uid"]) == {
        "type": "object",
        "properties": {
            "uid": {"type": "string"},
            "kind": {"type": ["string", "null"]},
            "seen_at": {"type": ["string", "null"], "format": "date-time"},
            "due_on": {"type": ["string", "null"]},
            "either": {
                "anyOf": [
                    {"type": "object", "properties": {"id": {"type": ["integer", "null"]}}},
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "null"},
                ]
            },
        },
        "required": ["uid"],
    }
