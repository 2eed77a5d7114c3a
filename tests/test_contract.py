"""The tap against Maxio's published contract: the vendored spec files, read directly.

Requests: every request the tap sends the sandbox, in each replication mode, names
only parameters the spec declares for that operation, with values it allows.
Examples: every stream, run alone against the spec's example responses, emits every
record of the example, each valid against its schema and with its key.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import typing as t
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

import pytest
from conftest import (
    Run,
    run_cli,
    run_tap,
    sandbox_config,
    select_all,
    select_only,
    tap_config,
    wait_for_the_next_second,
)
from jsonschema import Draft7Validator
from spec_contract import (
    ALLOWED_UNDOCUMENTED,
    ExampleServer,
    Operation,
    current_spec,
    examples,
    find_operation,
    legacy_spec,
    request_problems,
)

from maxio_sandbox import Sandbox
from tap_maxio.client import parse_timestamp
from tap_maxio.streams import STREAM_TYPES

if t.TYPE_CHECKING:
    from tap_maxio.client import MaxioStream

STREAMS = {s.name: s for s in STREAM_TYPES}
BACKFILLED = {s.name for s in STREAM_TYPES if s.spec.backfill is not None}
SECOND = timedelta(seconds=1)


def is_legacy(stream: type[MaxioStream]) -> bool:
    return stream.spec.invoicing == "legacy"


def concrete_path(stream: type[MaxioStream]) -> str:
    """A path the stream asks for: its first partition's values, ids of 1."""
    values = (stream.spec.partitions or [{}])[0]
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), 1)), stream.path)


def operation_of(stream: type[MaxioStream]) -> Operation:
    op = find_operation(concrete_path(stream), is_legacy(stream))
    assert op is not None, f"{stream.name}: {stream.path} is not in the spec"
    return op


def lineage(stream: type[MaxioStream]) -> list[type[MaxioStream]]:
    """The stream and its parents, child first."""
    chain: list[type[MaxioStream]] = [stream]
    while chain[-1].parent_stream_type is not None:
        chain.append(chain[-1].parent_stream_type)
    return chain


# 1. Requests, in every replication mode, against the sandbox


@cache
def stream_of(path: str, legacy: bool) -> str | None:
    """The stream a logged request was sent for."""
    for stream in STREAM_TYPES:
        if stream.spec.invoicing not in (None, "legacy" if legacy else "relationship"):
            continue
        if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(stream.path)), path):
            return stream.name
    return None


def logged(site: Sandbox) -> list[tuple[str, dict[str, list[str]]]]:
    requests = [(r.path, r.query) for r in site.requests]
    site.clear_log()
    return requests


def first_and_incremental(site: Sandbox, modes: dict, legacy: bool) -> None:
    """A first sync of every stream, the site changed, then a run from its state."""
    prefix = "legacy " if legacy else ""
    config = tap_config(site)
    catalog = select_all(config)
    first = run_tap(config, catalog=catalog)
    modes[f"{prefix}first sync"] = (legacy, logged(site))
    site.mutate(updates=5, creates=3)
    site.clear_log()
    run_tap(config, state=first.state, catalog=catalog)
    modes[f"{prefix}incremental"] = (legacy, logged(site))


@pytest.fixture(scope="module")
def sent() -> dict[str, tuple[bool, list[tuple[str, dict[str, list[str]]]]]]:
    """Requests per mode: (legacy site?, [(path, query)])."""
    modes: dict[str, tuple[bool, list[tuple[str, dict[str, list[str]]]]]] = {}
    with Sandbox(sandbox_config()) as site:
        first_and_incremental(site, modes, legacy=False)
        # Pages far below the tied batch: windows split and crowded seconds paged.
        small = tap_config(site, page_size=10)
        top = select_all(small)
        for entry in top["streams"]:
            for metadata in entry["metadata"]:
                if (
                    metadata["breadcrumb"] == []
                    and STREAMS[entry["tap_stream_id"]].parent_stream_type
                ):
                    metadata["metadata"]["selected"] = False
        site.clear_log()
        run_tap(small, catalog=top)
        modes["small pages"] = (False, logged(site))
        # A first sync without start_date backfills by creation, in small pages,
        # over a second in which more customers were created than a page holds.
        backfilled = select_only(small, BACKFILLED)
        del small["start_date"]
        site.mutate(updates=0, creates=15, collection="customers")
        wait_for_the_next_second()
        first = run_tap(small, catalog=backfilled)
        modes["backfill"] = (False, logged(site))
        site.mutate(updates=5, creates=3)
        site.clear_log()
        run_tap(small, state=first.state, catalog=backfilled)
        modes["after a backfill"] = (False, logged(site))
    with Sandbox(sandbox_config(invoicing="legacy")) as site:
        first_and_incremental(site, modes, legacy=True)
    return modes


@dataclass
class Checked:
    """What one stream sent across the modes, and what the spec says of it."""

    requests: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    modes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


@pytest.fixture(scope="module")
def checked(sent) -> dict[str | None, Checked]:
    """Per stream (None: no stream), its requests checked against the spec."""
    out: dict[str | None, Checked] = defaultdict(Checked)
    for mode, (legacy, requests) in sent.items():
        for path, query in requests:
            entry = out[stream_of(path, legacy)]
            entry.requests += 1
            for problem in request_problems(path, query, legacy):
                entry.problems[problem] += 1
                entry.modes[problem].add(mode)
    return out


@pytest.mark.parametrize("stream", list(STREAMS))
def test_requests_name_only_what_the_spec_declares(stream, checked):
    entry = checked[stream]
    assert entry.requests, f"{stream}: sent no request in any mode, so nothing was checked"
    report = [
        f"{problem}  [{count} requests; {', '.join(sorted(entry.modes[problem]))}]"
        for problem, count in entry.problems.items()
    ]
    assert not report, f"{stream}: requests the spec does not declare:\n" + "\n".join(report)


def test_every_request_belongs_to_a_stream(sent, checked):
    assert checked[None].requests == 0, {
        (mode, path)
        for mode, (legacy, requests) in sent.items()
        for path, _ in requests
        if stream_of(path, legacy) is None
    }


def test_the_modes_exercise_what_they_claim(sent):
    """A window split, a crowded second paged through, a bookmark, a child, a legacy site."""
    _, small = sent["small pages"]
    windows = defaultdict(set)
    crowded = False
    for path, query in small:
        start, end = query.get("start_datetime"), query.get("end_datetime")
        if start and end:
            windows[path].add((start[0], end[0]))
            one_second = parse_timestamp(end[0]) - parse_timestamp(start[0]) < SECOND
            crowded |= one_second and query.get("page") not in (None, ["1"])
    split = any(
        (a, m) in spans and (m, b) in spans and a < m < b
        for spans in windows.values()
        for a, b in spans
        for _, m in spans
    )
    assert split, "no window was split in two"
    assert crowded, "no crowded second was paged through"
    _, incremental = sent["incremental"]
    assert any(int(q.get("since_id", ["0"])[0]) > 0 for _, q in incremental), "no id bookmark"
    _, first = sent["first sync"]
    assert any(stream_of(p, False) == "usages" for p, _ in first), "no child was read"
    _, legacy = sent["legacy first sync"]
    assert any(stream_of(p, True) == "transactions" for p, _ in legacy)
    for mode, date_field in (("backfill", "created_at"), ("after a backfill", "updated_at")):
        _, requests = sent[mode]
        windows = [q for p, q in requests if stream_of(p, False) in BACKFILLED]
        assert {q["date_field"][0] for q in windows} == {date_field}, mode
    _, backfill = sent["backfill"]
    assert any(q.get("page") != ["1"] for _, q in backfill), "no crowded second in a backfill"


def test_a_backfill_is_declared_where_the_spec_documents_its_filter_and_order():
    """The date filter, and an order the spec says is by creation, as declared."""
    assert BACKFILLED, "no stream backfills"
    for name in BACKFILLED:
        spec = STREAMS[name].spec
        assert spec.backfill is not None
        op = operation_of(STREAMS[name])
        filters = {"date_field": spec.backfill.date_field}
        query = {k: [v] for k, v in {**filters, **spec.backfill.sort_param}.items()}
        assert request_problems(concrete_path(STREAMS[name]), query) == [], name
        said = " ".join(str(op.query_parameter(k)) for k in spec.backfill.sort_param).lower()
        # Keyset restarts need creation order; pages need an order no change alters.
        order = "creation" if spec.backfill.read == "keyset" else "sequence_number"
        assert order in said, (
            f"{name}: the spec does not say {spec.backfill.sort_param} orders by {order}"
        )


# 2. The spec's example responses through the tap's real reading path


def example_cases() -> list:
    cases = []
    for stream in STREAM_TYPES:
        for name in examples(operation_of(stream)):
            cases.append(pytest.param(stream.name, name, id=f"{stream.name}: {name}"))
    return cases


def example_config(server: ExampleServer) -> dict:
    return {
        "subdomain": "acme",
        "api_key": "any-key",
        "base_url": server.url,
        "retry_backoff": 0.01,
        "max_retries": 1,
    }


def serve_parents(server: ExampleServer, stream: type) -> None:
    """Serve each parent its first example, routed to the child.

    A parent record leads to the child only when it has a context value the child
    reads (`only_when`, e.g. a metered component for usages): the spec's parent
    examples have no such record for usages, so that field is set on them.
    """
    chain = lineage(stream)
    for child, parent in itertools.pairwise(chain):
        op = operation_of(parent)
        body = copy.deepcopy(next(iter(examples(op).values())))
        for key, allowed in child.spec.only_when.items():
            field = child.spec.context[key]
            for record in op.layout.records(body):
                if record.get(field) not in allowed:
                    record[field] = allowed[0]
        server.serve(op.template, body)


@pytest.mark.parametrize(("stream", "example"), example_cases())
def test_each_example_comes_out_whole_and_valid(stream, example):
    stream_type = STREAMS[stream]
    op = operation_of(stream_type)
    with ExampleServer(legacy=is_legacy(stream_type)) as server:
        serve_parents(server, stream_type)
        server.serve(op.template, examples(op)[example])
        config = example_config(server)
        catalog = select_only(config, {s.name for s in lineage(stream_type)})
        try:
            run = run_tap(config, catalog=catalog)
        except Exception as exc:
            pytest.fail(
                f"{stream}, example {example!r}: the tap raised {type(exc).__name__}: {exc}"
            )
        pages = [s for s in server.requests if s.template == op.template and s.status == 200]
    assert pages, f"{stream}: the tap never asked for {op.template}"
    assert "Traceback" not in run.stderr, run.stderr
    # The example is served once per distinct path (a child's, per parent).
    served: dict[str, int] = {}
    for page in pages:
        served[page.path] = max(served.get(page.path, 0), page.records)
    problems = record_problems(run, stream_type)
    emitted = len(run.records[stream])
    if emitted != sum(served.values()):
        problems.append(
            f"{emitted} records emitted of {sum(served.values())} served "
            f"({', '.join(f'{n} at {p}' for p, n in served.items())})"
        )
    assert not problems, f"{stream}, example {example!r}:\n" + "\n".join(problems)


def record_problems(run: Run, stream: type[MaxioStream]) -> list[str]:
    """Records that do not validate against the stream's SCHEMA, or lack their key."""
    schemas = [m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == stream.name]
    if not schemas:
        return ["no SCHEMA message"]
    validator = Draft7Validator(schemas[0]["schema"])
    problems: Counter[str] = Counter()
    for record in run.records[stream.name]:
        for error in validator.iter_errors(record):
            where = "/".join(str(p) for p in error.absolute_path)
            problems[f"schema: {error.message[:160]} at {where or 'the record'}"] += 1
        for key in stream.primary_keys:
            if record.get(key) is None:
                problems[f"primary key {key} is null"] += 1
    return [f"{p} ({n} records)" for p, n in problems.items()]


@pytest.mark.parametrize("legacy", [False, True], ids=["relationship", "legacy"])
def test_every_stream_through_the_cli(tmp_path, legacy):
    with ExampleServer(legacy=legacy) as server:
        config = example_config(server)
        catalog = tmp_path / "catalog.json"
        catalog.write_text(json.dumps(select_only(config, set(STREAMS))))
        result = run_cli(config, tmp_path, "--catalog", str(catalog))
    tail = "\n".join(result.stderr.splitlines()[-15:])
    assert result.returncode == 0, tail
    assert "Traceback" not in result.stderr, tail
    emitted = {json.loads(line).get("stream") for line in result.stdout.splitlines()}
    assert ("transactions" if legacy else "subscriptions") in emitted


# 3. The harness itself


@pytest.mark.parametrize(
    ("path", "query", "problem"),
    [
        (
            "/components.json",
            {"include_features": ["true"]},
            "`include_features` is not a parameter",
        ),
        ("/invoices/events.json", {"direction": ["asc"]}, "`direction` is not a parameter"),
        (
            "/subscriptions/12/components/7/allocations.json",
            {"per_page": ["50"]},
            "`per_page` is not a parameter",
        ),
        ("/product_families.json", {"page": ["1"]}, "`page` is not a parameter"),
        ("/subscriptions.json", {"direction": ["up"]}, "'up' is not one of asc, desc"),
        (
            "/subscriptions/abc/prepayments.json",
            {},
            "{subscription_id}=abc: 'abc' is not an integer",
        ),
        ("/events.json", {"since_id": ["1.5"]}, "'1.5' is not an integer"),
        ("/subscriptions.json", {"per_page": ["201"]}, "above the maximum 200"),
        ("/coupons.json", {"filter[nope]": ["x"]}, "without a property 'nope'"),
        (
            "/subscriptions_components.json",
            {"include[]": ["subscription", "historic_usages"]},
            "include takes one value, not an array",
        ),
        (
            "/subscriptions.json",
            {"start_datetime": ["2024-03-10 01:59:59"]},
            "has no offset",
        ),
        ("/statements.json", {}, "no GET operation"),
    ],
)
def test_the_harness_flags(path, query, problem):
    problems = request_problems(path, query, legacy=False)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("path", "query", "legacy"),
    [
        ("/subscriptions.json", {"include[]": ["coupons", "self_service_page_token"]}, False),
        ("/subscriptions.json", {"include": ["coupons,self_service_page_token"]}, False),
        ("/coupons.json", {"filter[date_field]": ["updated_at"]}, False),
        ("/coupons.json", {"filter[start_datetime]": ["2024-03-10T01:59:59+00:00"]}, False),
        ("/subscriptions_components.json", {"include": ["subscription,historic_usages"]}, False),
        ("/subscriptions/12/components/7/usages.json", {"since_id": ["4"], "page": ["1"]}, False),
        ("/customers/metadata.json", {"date_field": ["updated_at"]}, False),
        ("/subscriptions/metafields.json", {"page": ["2"], "per_page": ["200"]}, False),
        ("/statements.json", {"page": ["1"], "per_page": ["200"]}, True),
        ("/transactions.json", {"since_id": ["1"], "direction": ["asc"]}, True),
    ],
)
def test_the_harness_accepts(path, query, legacy):
    assert request_problems(path, query, legacy) == []


def test_no_undocumented_parameter_is_allowed_without_a_reason():
    templates = {op.template for spec in (current_spec(), legacy_spec()) for op in spec.operations}
    for (template, name), reason in ALLOWED_UNDOCUMENTED.items():
        assert template in templates, f"{template} is not a path template of the specs"
        assert reason.strip(), f"{template} {name}: no reason given"


def test_the_example_server_answers_as_maxio_does():
    import requests

    with ExampleServer() as server:
        denied = requests.get(f"{server.url}/customers.json", timeout=5)
        first = requests.get(f"{server.url}/customers.json", auth=("k", "x"), timeout=5)
        second = requests.get(f"{server.url}/customers.json?page=2", auth=("k", "x"), timeout=5)
        missing = requests.get(f"{server.url}/nothing.json", auth=("k", "x"), timeout=5)
        site = requests.get(f"{server.url}/site.json", auth=("k", "x"), timeout=5).json()
        events = requests.get(
            f"{server.url}/events.json?since_id=999999999999", auth=("k", "x"), timeout=5
        ).json()
    assert (denied.status_code, denied.text) == (401, "HTTP Basic: Access denied.")
    assert first.status_code == 200
    assert first.json() == examples(find_operation("/customers.json"))["Example"]
    assert second.json() == []
    assert missing.status_code == 404
    assert site["site"]["relationship_invoicing_enabled"] is True
    assert events == []
    assert [s.path for s in server.requests][:2] == ["/customers.json", "/customers.json"]
