"""Maxio's published contract, read from the vendored spec files, for the contract tests.

Two specs: `spec/openapi-2026.json` (every stream), and `spec/legacy-openapi.yaml`,
which on a legacy statement-billing site answers `/statements.json`,
`/transactions.json` and `/invoices.json`. Nothing here copies the spec: every rule
and every response is read from those files.

* `find_operation(path, legacy)` names the GET operation a concrete path asks for.
  Templates are matched segment by segment; a template whose path parameters do not
  fit their types loses to one whose do (`/customers/metadata.json` is
  `/{resource_type}/metadata.json`, not `/customers/{id}.json` with an id
  "metadata"), then the one with more literal segments wins
  (`/invoices/events.json` over `/invoices/{uid}.json`).
* `request_problems(path, query, legacy)` lists what a request sends that the
  operation does not declare, or declares otherwise: an integer is digits within
  minimum/maximum, a boolean `true`/`false`, a date `YYYY-MM-DD`, a date-time
  ISO-8601 with an offset, an enum one of its members. An array parameter may be
  sent as `name` or `name[]`, repeated or comma-separated, each item checked; an
  object parameter as `name[property]` (nested `name[a][b]`). A `name=value` the
  parameter's description writes out ("Use in query `include=a,b`") is declared
  too. Path parameters are checked the same way. `ALLOWED_UNDOCUMENTED` names the
  exceptions, each with its reason.
* `examples(op)` are the example responses of an operation's 200, by name.
* `ExampleServer` answers the tap's GETs with those examples.

Operations without an example response. Four list operations the tap reads have
none: `/subscriptions.json`, `/subscriptions_components.json`,
`/{resource_type}/metadata.json` and `/subscriptions/{subscription_id}/proforma_invoices.json`;
their component schemas carry no `example` either (`Subscription` has three on
single properties, the others none), so no whole record can be built from them.
They get the examples of the spec's other GET operations that return the same
record schema, put in the list's own envelope as its response schema declares it
(e.g. the `SubscriptionResponse` of `GET /subscriptions/{subscription_id}.json` as
a one-item array). Such an example is named "<its name> of GET <its operation>".
An operation with no such example anywhere (proforma invoices) is served its
declared envelope with no records, named `NO_EXAMPLE`: the tap is then shown to
read the envelope, and nothing about its records.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import re
import threading
import typing as t
from dataclasses import dataclass
from functools import cache, cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
#: Undocumented parameters the tap must send: {(path template, parameter): reason}.
ALLOWED_UNDOCUMENTED: dict[tuple[str, str], str] = {}
#: The name of the records-free envelope served where the spec has no example.
NO_EXAMPLE = "no example in the spec: an envelope without records"
ACCESS_DENIED = "HTTP Basic: Access denied."

# A value written out in a parameter's description, e.g. "Use in query `include=a,b`".
_USE_IN_QUERY = re.compile(r"Use in query:?\s*`([^`]+)`")
_QUERY_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"-?\d+")


class Spec:
    """One OpenAPI document: its GET operations, and its $refs resolved."""

    def __init__(self, name: str, document: dict) -> None:
        self.name = name
        self.document = document
        self.operations = [
            Operation(self, template, item)
            for template, item in document["paths"].items()
            if "get" in item
        ]

    def resolve(self, node: t.Any) -> t.Any:
        """Follow a local $ref (and the $refs it leads to)."""
        while isinstance(node, dict) and "$ref" in node:
            target: t.Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def ref_name(self, node: t.Any) -> str | None:
        """The component a schema is, through $ref and allOf (None: an inline schema)."""
        if not isinstance(node, dict):
            return None
        if "$ref" in node:
            return str(node["$ref"]).rsplit("/", 1)[-1]
        names = [self.ref_name(part) for part in node.get("allOf", [])]
        return next((n for n in names if n), None)

    def flatten(self, node: t.Any) -> dict:
        """A schema with its $ref resolved and its allOf parts merged into one."""
        node = self.resolve(node)
        if not isinstance(node, dict):
            return {}
        if "allOf" not in node:
            return node
        merged: dict = {k: v for k, v in node.items() if k != "allOf"}
        for part in node["allOf"]:
            flat = self.flatten(part)
            for key, value in flat.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                else:
                    merged.setdefault(key, value)
        return merged


@dataclass(frozen=True)
class Layout:
    """Where an operation's 200 response keeps its records, per its schema."""

    #: "list" (a bare array), "object" (an object holding the array at `key`) or
    #: "single" (one record, not a list).
    kind: str
    key: str | None
    #: Each record wrapped as {wrapper: record}.
    wrapper: str | None
    #: The record's component schema, e.g. "Subscription".
    record: str | None

    def items(self, body: t.Any) -> list:
        """The items of a response, each still in its wrapper."""
        if self.kind == "list":
            return list(body) if isinstance(body, list) else []
        if self.kind == "object":
            value = body.get(self.key) if isinstance(body, dict) else None
            return list(value) if isinstance(value, list) else []
        return [body]

    def records(self, body: t.Any) -> list:
        """The records of a response, unwrapped."""
        items = self.items(body)
        if self.wrapper is None:
            return items
        return [i[self.wrapper] for i in items if isinstance(i, dict) and self.wrapper in i]

    def wrap(self, records: list, like: t.Any = None) -> t.Any:
        """A response holding these records, shaped like `like` where given."""
        items = [{self.wrapper: r} for r in records] if self.wrapper else list(records)
        if self.kind == "list":
            return items
        if self.kind == "object":
            base = dict(like) if isinstance(like, dict) else {}
            return {**base, str(self.key): items}
        return items[0] if items else like


class Operation:
    """One GET operation of a spec."""

    def __init__(self, spec: Spec, template: str, item: dict) -> None:
        self.spec = spec
        self.template = template
        self.item = item
        self.get = item["get"]
        self.segments = template.strip("/").split("/")
        self.pattern = re.compile(
            "/"
            + "/".join(
                "".join(
                    f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
                    for part in re.split(r"(\{[^}]+\})", segment)
                    if part
                )
                for segment in self.segments
            )
        )
        self.literal_segments = tuple("{" not in s for s in self.segments)

    def __repr__(self) -> str:
        return f"GET {self.template} ({self.spec.name})"

    @cached_property
    def parameters(self) -> dict[tuple[str, str], dict]:
        """(in, name) -> parameter, the path item's and the operation's, resolved."""
        params: dict[tuple[str, str], dict] = {}
        for raw in [*self.item.get("parameters", []), *self.get.get("parameters", [])]:
            param = self.spec.resolve(raw)
            params[(param["in"], param["name"])] = param
        return params

    def query_parameter(self, name: str) -> dict | None:
        """The declared query parameter of that name."""
        return self.parameters.get(("query", name))

    def path_problems(self, path: str) -> list[str]:
        """Path parameters whose values do not fit their declared schema."""
        match = self.pattern.fullmatch(path)
        if match is None:
            return [f"{path} is not {self.template}"]
        problems = []
        for name, value in match.groupdict().items():
            param = self.parameters.get(("path", name))
            if param is None:
                problems.append(f"path parameter {{{name}}} is not declared")
                continue
            reason = value_problem(self.spec, param.get("schema", {}), value)
            if reason:
                problems.append(f"path parameter {{{name}}}={value}: {reason}")
        return problems

    @cached_property
    def response(self) -> dict:
        """The application/json content of the 200 response."""
        response = self.spec.resolve(self.get.get("responses", {}).get("200", {}))
        return t.cast("dict", response.get("content", {}).get("application/json", {}))

    @cached_property
    def layout(self) -> Layout:
        """Where the 200 response keeps its records."""
        return layout_of(self.spec, self.response.get("schema", {}))

    @cached_property
    def own_examples(self) -> dict[str, t.Any]:
        """The examples the operation's 200 response itself gives, by name."""
        found: dict[str, t.Any] = {}
        for name, example in self.response.get("examples", {}).items():
            found[name] = self.spec.resolve(example).get("value")
        if "example" in self.response:
            found.setdefault("example", self.response["example"])
        schema = self.spec.resolve(self.response.get("schema", {}))
        parts = [schema, *schema.get("allOf", [])] if isinstance(schema, dict) else []
        for part in parts:
            if isinstance(part, dict) and "example" in part:
                found.setdefault("schema example", part["example"])
        unique: dict[str, t.Any] = {}
        for name, value in found.items():
            if value not in unique.values():
                unique[name] = value
        return unique


def layout_of(spec: Spec, schema: t.Any) -> Layout:
    """Read a response schema's envelope: where its records are, and their schema."""
    flat = spec.flatten(schema)
    if flat.get("type") == "array" or "items" in flat:
        return Layout("list", None, *_item_of(spec, flat.get("items", {})))
    properties = flat.get("properties", {})
    arrays = [k for k, v in properties.items() if "items" in spec.flatten(v)]
    if arrays:
        key = arrays[0]
        return Layout("object", key, *_item_of(spec, spec.flatten(properties[key])["items"]))
    return Layout("single", None, *_item_of(spec, schema))


def _item_of(spec: Spec, item: t.Any) -> tuple[str | None, str | None]:
    """(wrapper, record schema) of one item: {"subscription": {...}} or a bare record."""
    flat = spec.flatten(item)
    properties = flat.get("properties", {})
    if len(properties) == 1:
        ((name, inner),) = properties.items()
        record = spec.flatten(inner)
        if {"properties", "oneOf", "anyOf"} & record.keys() or record.get("type") == "object":
            return name, spec.ref_name(inner)
    return None, spec.ref_name(item)


@cache
def current_spec() -> Spec:
    """spec/openapi-2026.json."""
    return Spec("openapi-2026", json.loads((SPEC_DIR / "openapi-2026.json").read_text("utf-8")))


@cache
def legacy_spec() -> Spec:
    """spec/legacy-openapi.yaml."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = (SPEC_DIR / "legacy-openapi.yaml").read_text("utf-8")
    return Spec("legacy", yaml.load(text, Loader=loader))


@cache
def find_operation(path: str, legacy: bool = False) -> Operation | None:
    """The GET operation a concrete path asks for (the legacy spec first on a legacy site)."""
    specs = (legacy_spec(), current_spec()) if legacy else (current_spec(),)
    best: tuple[tuple, Operation] | None = None
    for rank, spec in enumerate(specs):
        for op in spec.operations:
            if op.pattern.fullmatch(path) is None:
                continue
            key = (not op.path_problems(path), sum(op.literal_segments), op.literal_segments, -rank)
            if best is None or key > best[0]:
                best = (key, op)
    return best[1] if best else None


def documented_values(param: dict) -> set[tuple[str, str]]:
    """(name, value) pairs a description writes out, e.g. `include=subscription,historic_usages`."""
    pairs = set()
    for literal in _USE_IN_QUERY.findall(str(param.get("description", ""))):
        for pair in literal.split("&"):
            name, sep, value = pair.partition("=")
            if sep:
                pairs.add((name.strip(), value.strip()))
    return pairs


def request_problems(path: str, query: dict[str, list[str]], legacy: bool = False) -> list[str]:
    """What a GET sends that its operation does not declare, one line each."""
    op = find_operation(path, legacy)
    if op is None:
        specs = "the legacy or the 2026 spec" if legacy else "the 2026 spec"
        return [f"GET {path}: no GET operation of {specs} has this path"]
    where = f"GET {op.template}"
    problems = [f"{where}: {p}" for p in op.path_problems(path)]
    for raw, values in query.items():
        problems += [f"{where}: {p}" for p in _parameter_problems(op, raw, values)]
    return problems


def _parameter_problems(op: Operation, raw: str, values: list[str]) -> list[str]:
    sent = "&".join(f"{raw}={v}" for v in values)
    exact = op.query_parameter(raw)  # some names hold brackets: `filter[type]`
    match = _QUERY_NAME.fullmatch(raw)
    if exact is not None or match is None:
        name, keys, as_array = raw, [], False
    else:
        name = match.group(1)
        keys = re.findall(r"\[([^\[\]]*)\]", match.group(2))
        as_array = bool(keys) and keys[-1] == ""
        keys = keys[:-1] if as_array else keys
    if (op.template, name) in ALLOWED_UNDOCUMENTED or (op.template, raw) in ALLOWED_UNDOCUMENTED:
        return []
    param = exact or op.query_parameter(name)
    if param is None:
        return [f"`{raw}` is not a parameter of this operation"]
    spec = op.spec
    literals = documented_values(param)
    schema: t.Any = param.get("schema", {})
    for depth, key in enumerate(keys):
        flat = spec.flatten(schema)
        properties = flat.get("properties", {})
        extra = flat.get("additionalProperties")  # free-form keys: `metadata[my-field]`
        if key in properties:
            schema = properties[key]
        elif extra:
            schema = extra if isinstance(extra, dict) else {}
        else:
            owner = name + "".join(f"[{k}]" for k in keys[:depth])
            what = "an object" if flat.get("type") == "object" or properties else "not an object"
            return [f"`{sent}`: {owner} is {what} without a property {key!r}"]
        literals |= documented_values(spec.flatten(schema))
    if all((raw, v) in literals for v in values):
        return []
    flat = spec.flatten(schema)
    if flat.get("type") == "object" or flat.get("properties"):
        return [f"`{sent}`: {name} is an object, sent as {name}[property]=value"]
    if flat.get("type") == "array" or "items" in flat:
        items = [item for v in values for item in v.split(",")]
        reasons = {value_problem(spec, flat.get("items", {}), item) for item in items}
        return [f"`{sent}`: {r}" for r in sorted(r for r in reasons if r)]
    if as_array:
        spelled = ", ".join(f"`{n}={v}`" for n, v in sorted(literals)) or f"`{name}=value`"
        return [f"`{sent}`: {name} takes one value, not an array (documented: {spelled})"]
    if len(values) > 1:
        return [f"`{sent}`: {name} takes one value, sent {len(values)} times"]
    reason = value_problem(spec, schema, values[0])
    return [f"`{sent}`: {reason}"] if reason else []


def value_problem(spec: Spec, schema: t.Any, value: str) -> str | None:
    """Why a query or path value does not fit a schema (None: it fits)."""
    flat = spec.flatten(schema)
    for key in ("oneOf", "anyOf"):
        if key in flat:
            reasons = [value_problem(spec, option, value) for option in flat[key]]
            if all(reasons):
                return " and ".join(r for r in reasons if r)
    if "enum" in flat:
        members = [json.dumps(m) if isinstance(m, bool) else str(m) for m in flat["enum"]]
        if value not in members:
            return f"{value!r} is not one of {', '.join(members)}"
    kinds = flat.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if kinds and not any(_fits_type(flat, k, value) is None for k in kinds):
        return " and ".join(str(_fits_type(flat, k, value)) for k in kinds)
    return None


def _fits_type(flat: dict, kind: str, value: str) -> str | None:
    if kind == "integer":
        if not _INTEGER.fullmatch(value):
            return f"{value!r} is not an integer"
        return _range_problem(flat, int(value))
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number"
        return _range_problem(flat, number)
    if kind == "boolean":
        return None if value in {"true", "false"} else f"{value!r} is not true or false"
    if kind == "string":
        if flat.get("format") == "date":
            try:
                valid = bool(_DATE.fullmatch(value)) and bool(dt.date.fromisoformat(value))
            except ValueError:
                valid = False
            return None if valid else f"{value!r} is not a date YYYY-MM-DD"
        if flat.get("format") == "date-time":
            try:
                stamp = dt.datetime.fromisoformat(value)
            except ValueError:
                return f"{value!r} is not an ISO-8601 date-time"
            if stamp.tzinfo is None or len(value) <= 10:
                return f"{value!r} has no offset: Maxio reads it in the site's time zone"
        return None
    if kind == "null":
        return None if value == "" else f"{value!r} is not empty"
    return f"a {kind} parameter cannot be checked as {value!r}"


def _range_problem(flat: dict, number: float) -> str | None:
    if "minimum" in flat and number < flat["minimum"]:
        return f"{number:g} is below the minimum {flat['minimum']:g}"
    if "maximum" in flat and number > flat["maximum"]:
        return f"{number:g} is above the maximum {flat['maximum']:g}"
    return None


def examples(op: Operation) -> dict[str, t.Any]:
    """Every example of the operation's 200 response, by name (see the module's docstring)."""
    if op.own_examples:
        return dict(op.own_examples)
    borrowed: dict[str, t.Any] = {}
    if op.layout.record is not None:
        # Lists first: their examples show records as a list shows them.
        others = sorted(op.spec.operations, key=lambda other: other.layout.kind == "single")
        for other in others:
            if other is op or other.layout.record != op.layout.record:
                continue
            for name, body in other.own_examples.items():
                same = op.spec.ref_name(other.response.get("schema")) == op.spec.ref_name(
                    op.response.get("schema")
                )
                value = body if same else op.layout.wrap(other.layout.records(body))
                borrowed[f"{name} of GET {other.template}"] = value
    return borrowed or {NO_EXAMPLE: op.layout.wrap([])}


def example_records(op: Operation, body: t.Any) -> list:
    """The records of one response of the operation, unwrapped from its envelope."""
    return op.layout.records(body)


# The example server


@dataclass(frozen=True)
class Served:
    """One request the example server answered."""

    path: str
    query: dict[str, list[str]]
    status: int
    #: The operation's template (None: no such path in the spec).
    template: str | None = None
    #: Records in the body served.
    records: int = 0


class ExampleServer:
    """A Maxio site on 127.0.0.1 that answers every GET with the spec's example.

    Page 1 of an operation gets its example (the first one, or the one `serve`
    chose); a later page, or a `since_id` past the example's ids, gets the same
    envelope without records, so that the tap's reading ends. `/site.json` says
    whether the site uses Relationship Invoicing, and on a legacy site the legacy
    spec answers its paths. A child path is answered for whatever parent ids are
    asked. Every request is kept in `requests`.
    """

    def __init__(self, *, legacy: bool = False) -> None:
        self.legacy = legacy
        self.requests: list[Served] = []
        self._bodies: dict[str, t.Any] = {}
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"server_of": self})
        self._http = _Server(("127.0.0.1", 0), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> ExampleServer:
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def operation(self, path: str) -> Operation | None:
        """The operation answering a path on this site."""
        return find_operation(path, self.legacy)

    def serve(self, template: str, body: t.Any) -> None:
        """Answer page 1 of this operation with `body` (an example, or one derived from it)."""
        self._bodies[template] = body

    def body(self, op: Operation) -> t.Any:
        """What page 1 of the operation is answered with."""
        if op.template in self._bodies:
            return self._bodies[op.template]
        body = copy.deepcopy(next(iter(examples(op).values())))
        if op.template == "/site.json" and isinstance(body, dict):
            body = {
                **body,
                "site": {**body["site"], "relationship_invoicing_enabled": not self.legacy},
            }
        return body

    def clear(self) -> None:
        """Forget the requests logged so far."""
        with self._lock:
            self.requests.clear()

    def answer(self, path: str, query: dict[str, list[str]], authorized: bool) -> tuple[int, t.Any]:
        """Status and body for one GET, logged."""
        op = self.operation(path)
        if op is None:
            return self._log(Served(path, query, 404), 404, None)
        if not authorized:
            return self._log(Served(path, query, 401, op.template), 401, ACCESS_DENIED)
        body = self.body(op)
        records = op.layout.records(body)
        if self._past_the_end(query, records):
            body = op.layout.wrap([], like=body) if op.layout.kind != "single" else body
        count = len(op.layout.items(body))
        return self._log(Served(path, query, 200, op.template, count), 200, body)

    @staticmethod
    def _past_the_end(query: dict[str, list[str]], records: list) -> bool:
        page = (query.get("page") or ["1"])[-1]
        if page.isdigit() and int(page) > 1:
            return True
        since = (query.get("since_id") or [""])[-1]
        ids = [r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), int)]
        return bool(since.isdigit() and ids and int(since) > max(ids))

    def _log(self, served: Served, status: int, body: t.Any) -> tuple[int, t.Any]:
        with self._lock:
            self.requests.append(served)
        return status, body


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a kept-alive connection does not hold up the end of a test
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_of: ExampleServer

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        status, body = self.server_of.answer(split.path, query, self._authorized())
        if status == 401:
            self._send(
                status,
                str(body).encode(),
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": 'Basic realm="Application"'},
            )
        elif status == 200:
            self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8")
        else:
            self._send(status, b"", "")

    def _authorized(self) -> bool:
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        try:
            user = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and bool(user)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:
        pass  # ExampleServer.requests is the log
