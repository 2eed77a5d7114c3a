"""The tap against the sandbox site: records, state, requests and errors."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import time
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
from conftest import (
    API_KEY,
    COUNTS,
    run_cli,
    run_tap,
    sandbox_config,
    select_only,
    tap_config,
    wait_for_the_next_second,
)
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

from maxio_sandbox import Sandbox
from tap_maxio.output import Output
from tap_maxio.tap import TapMaxio

PRIMARY_KEYS = {"subscriptions": "id", "customers": "id", "invoices": "uid"}


def sandbox_keys(site: Sandbox, stream: str) -> set:
    return {site.key(stream, r) for r in site.records(stream)}


def tied_second(site: Sandbox, stream: str) -> str:
    """The updated_at shared by the sandbox's bulk-imported rows."""
    second, count = Counter(r["updated_at"] for r in site.records(stream)).most_common(1)[0]
    assert count >= 30
    return second


def test_full_sync_emits_every_record_of_the_site(shared_sandbox):
    run = run_tap(tap_config(shared_sandbox))
    for stream, key in PRIMARY_KEYS.items():
        assert len(run.records[stream]) == COUNTS[stream]
        assert run.keys(stream, key) == sandbox_keys(shared_sandbox, stream)
    assert len(run.records["site"]) == 1


class _Writes:
    """A stdout that keeps each write the tap makes to it."""

    def __init__(self) -> None:
        self.buffer, self.chunks = self, list[bytes]()

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def flush(self) -> None:
        pass


def test_records_go_out_in_blocks_and_every_other_message_at_once(shared_sandbox):
    # One write per record was an eighth of the tap's CPU. A STATE must still
    # never wait behind: it goes out at once, after every record it covers.
    out = _Writes()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        TapMaxio(config=tap_config(shared_sandbox)).sync_all()
    chunks = [[json.loads(line) for line in chunk.splitlines()] for chunk in out.chunks]
    records = sum(m["type"] == "RECORD" for chunk in chunks for m in chunk)
    assert records >= sum(COUNTS.values())
    assert len(chunks) < records / 5
    for chunk in chunks:
        assert all(m["type"] == "RECORD" for m in chunk[:-1])
    assert chunks[-1][-1]["type"] == "STATE"


@pytest.mark.parametrize("version", [None, 1765000000000])
@pytest.mark.parametrize(
    "when", [None, datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=timezone.utc)]
)
def test_a_record_is_written_as_the_sdks_record_message_serialises(version, when):
    # The tap writes RECORD lines without a RecordMessage per record: the same bytes.
    record = {"id": 1, "amount": Decimal("1.10"), "nested": {"a": [1, None]}, "s": "é"}
    message = RecordMessage(stream="s", record=record, version=version, time_extracted=when)
    out = _Writes()
    with redirect_stdout(out):
        output = Output()
        output.write_record("s", record, version, when)
        output.flush()
    assert out.chunks == [bytes(MsgSpecWriter().format_message(message))]


def test_records_read_before_a_fatal_error_are_printed(tmp_path):
    # No STATE follows them, yet they were emitted: the tap writes them as it fails.
    counts = {**sandbox_config().counts, "payment_profiles": 100}
    with Sandbox(sandbox_config(counts=counts)) as site:
        pages: list[int] = []

        def fourth_fails() -> None:
            pages.append(1)
            if len(pages) == 3:
                site.fail_next(status=401, path="/payment_profiles.json")

        site.before_each("/payment_profiles.json", fourth_fails)
        config = tap_config(site, page_size=20, max_concurrent_requests=1)
        catalog = tmp_path / "catalog.json"
        catalog.write_text(json.dumps(select_only(config, {"payment_profiles"})))
        result = run_cli(config, tmp_path, "--catalog", str(catalog))
    assert result.returncode == 1
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(m["type"] == "RECORD" for m in messages) == 60


def test_deselected_properties_are_not_emitted(shared_sandbox):
    config = tap_config(shared_sandbox)
    catalog = TapMaxio(config=config).catalog_dict
    (entry,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "customers"]
    for item in entry["metadata"]:
        if item["breadcrumb"] == []:
            item["metadata"]["selected"] = True
        elif item["breadcrumb"] == ["properties", "email"]:
            item["metadata"]["selected"] = False
    run = run_tap(config, catalog=catalog)
    assert len(run.records["customers"]) == COUNTS["customers"]
    assert all("email" not in r and "first_name" in r for r in run.records["customers"])
    full = run_tap(config)
    assert all("email" in r for r in full.records["customers"])


def test_updated_at_and_bookmarks_are_utc(shared_sandbox):
    run = run_tap(tap_config(shared_sandbox))
    for stream in PRIMARY_KEYS:
        # Maxio leaves updated_at out of some records (invoices in the spec's example).
        stamps = [r["updated_at"] for r in run.records[stream] if r.get("updated_at")]
        assert stamps
        assert all(s.endswith("+00:00") for s in stamps)
        bookmark = run.state["bookmarks"][stream]["replication_key_value"]
        assert bookmark == max(stamps)
    served = {r["updated_at"] for r in shared_sandbox.records("subscriptions")}
    assert any(not s.endswith("+00:00") for s in served), "the site should answer in its own zone"


def test_invoices_ask_for_every_sub_array(shared_sandbox):
    shared_sandbox.clear_log()
    run = run_tap(tap_config(shared_sandbox))
    invoice_requests = [r for r in shared_sandbox.requests if r.path == "/invoices.json"]
    assert invoice_requests
    for request in invoice_requests:
        for flag in (
            "line_items",
            "discounts",
            "taxes",
            "credits",
            "payments",
            "refunds",
            "custom_fields",
        ):
            assert request.query[flag] == ["true"]
    assert all("line_items" in r for r in run.records["invoices"])


def test_filters_carry_an_explicit_offset_and_an_order(shared_sandbox):
    shared_sandbox.clear_log()
    run_tap(tap_config(shared_sandbox))
    core = {"/subscriptions.json", "/customers.json", "/invoices.json"}
    listed = [r for r in shared_sandbox.requests if r.path in core]
    assert listed
    for request in listed:
        assert request.query["date_field"] == ["updated_at"]
        for bound in ("start_datetime", "end_datetime"):
            assert request.query[bound][0].endswith("+00:00")
        assert request.query["per_page"] == ["25"]
    invoices = [r for r in listed if r.path == "/invoices.json"]
    assert all(r.query.get("sort") in (["updated_at"], None) for r in invoices)
    # Page 2 and on is only ever asked of a single crowded second, all of it.
    for request in listed:
        if request.query["page"] != ["1"]:
            start, end = (request.query[b][0] for b in ("start_datetime", "end_datetime"))
            assert end == start.replace("+00:00", ".999999+00:00")


def test_second_run_fetches_only_what_changed(sandbox):
    first = run_tap(tap_config(sandbox))
    first_requests = len(sandbox.requests)
    before = sandbox.snapshot()
    sandbox.mutate(updates=6, creates=3)
    changed = sandbox.changed_since(before)
    sandbox.clear_log()
    wait_for_the_next_second()

    second = run_tap(tap_config(sandbox), state=first.state)

    for stream, key in PRIMARY_KEYS.items():
        got = second.keys(stream, key)
        assert changed.get(stream, set()) <= got
        # Only the changes, plus at most the rows of the bookmark's own second.
        assert len(got) <= len(changed.get(stream, set())) + 1
    assert len(sandbox.requests) < first_requests / 3


def test_rows_sharing_the_bookmark_second_are_not_lost(shared_sandbox):
    second = tied_second(shared_sandbox, "subscriptions")
    tied = {r["id"] for r in shared_sandbox.records("subscriptions") if r["updated_at"] == second}
    state = {
        "bookmarks": {
            "subscriptions": {"replication_key": "updated_at", "replication_key_value": second}
        }
    }
    run = run_tap(tap_config(shared_sandbox), state=state)
    assert tied <= run.keys("subscriptions")


def test_transient_failures_are_retried(sandbox):
    sandbox.fail_next(status=503, times=2)
    sandbox.fail_next(status=429, times=1, retry_after=0)
    sandbox.fail_next(status=0, times=1, reset=True)
    run = run_tap(tap_config(sandbox))
    assert run.keys("subscriptions") == sandbox_keys(sandbox, "subscriptions")
    first = sandbox.requests[0]
    same = [r.status for r in sandbox.requests if (r.path, r.query) == (first.path, first.query)]
    assert same == [503, 503, 429, 0, 200]


def test_429_honours_retry_after(sandbox):
    sandbox.fail_next(status=429, times=1, retry_after=1)
    started = time.monotonic()
    run_tap(tap_config(sandbox, retry_backoff=0))
    assert time.monotonic() - started >= 1
    first = sandbox.requests[0]
    same = [r.status for r in sandbox.requests if (r.path, r.query) == (first.path, first.query)]
    assert same == [429, 200]


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (401, "Maxio refused the API key; check api_key, subdomain and environment"),
        (403, "the API key may not read this; check the key's permissions in Maxio"),
    ],
)
@pytest.mark.parametrize("mode", [(), ("--test",)], ids=["sync", "test"])
def test_401_and_403_fail_at_once_with_one_clear_line(
    shared_sandbox, tmp_path, mode, status, shown
):
    config = tap_config(shared_sandbox)
    if status == 401:
        config["api_key"] = "wrong-key-123456"
    else:
        shared_sandbox.fail_next(status=403)
    shared_sandbox.clear_log()
    result = run_cli(config, tmp_path, *mode)
    shared_sandbox.clear_faults()
    # Retrying would not help: one request, and the user is told what to fix.
    assert [r.status for r in shared_sandbox.requests] == [status]
    assert result.returncode == 1
    # `meltano config test` runs the tap and shows its last line.
    last = result.stderr.strip().splitlines()[-1]
    assert re.search(
        rf"\| \w+: HTTP {status} from 127\.0\.0\.1/[\w/]+\.json: {re.escape(shown)}$", last
    ), last
    assert "Traceback" not in result.stderr
    assert config["api_key"] not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (422, '{"errors": ["Your trial has ended."]}', "Your trial has ended."),
        (422, '{"errors": {"date_field": ["is not supported"]}}', "date_field is not supported"),
        (422, '{"error": "Feature not enabled"}', "Feature not enabled"),
        (404, "", "not found; check subdomain and environment"),
    ],
)
def test_404_and_422_skip_one_stream_with_a_warning(sandbox, tmp_path, status, body, shown):
    sandbox.fail_next(status=status, times=1, body=body)
    result = run_cli(tap_config(sandbox), tmp_path)
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line and shown in line]
    assert len(warnings) == 1, result.stderr[-3000:]
    skipped = warnings[0].split("|")[-1].split(":")[0].strip()
    records = Counter(
        json.loads(line)["stream"]
        for line in result.stdout.splitlines()
        if line.startswith('{"type":"RECORD"')
    )
    assert records[skipped] == 0
    assert sum(records.values()) > 0, "the other streams went on"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("subdomain", "acme.chargify.com.evil.com"),
        ("environment", "mars"),
        ("base_url", "http://evil.com"),
        ("max_concurrent_requests", "lots"),
    ],
)
@pytest.mark.parametrize("mode", [(), ("--test",)], ids=["sync", "test"])
def test_bad_settings_fail_before_any_request(shared_sandbox, tmp_path, setting, value, mode):
    shared_sandbox.clear_log()
    result = run_cli({**tap_config(shared_sandbox), setting: value}, tmp_path, *mode)
    assert result.returncode == 1
    # Meltano shows a failed plugin's last line only: that one names the setting.
    assert setting in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert shared_sandbox.requests == []


def test_api_key_never_printed(shared_sandbox, tmp_path):
    token = base64.b64encode(f"{API_KEY}:x".encode()).decode()
    ok = run_cli(tap_config(shared_sandbox), tmp_path, loglevel="DEBUG")
    assert ok.returncode == 0, ok.stderr[-2000:]
    shared_sandbox.fail_next(status=500, times=50)
    failed = run_cli(tap_config(shared_sandbox, max_retries=1), tmp_path, loglevel="DEBUG")
    shared_sandbox.clear_faults()
    assert failed.returncode != 0
    about = run_cli(tap_config(shared_sandbox), tmp_path, "--about")
    discover = run_cli(tap_config(shared_sandbox), tmp_path, "--discover")
    for result in (ok, failed, about, discover):
        output = result.stdout + result.stderr
        assert API_KEY not in output
        assert token not in output


#: Loaded at start-up by the tap's process: libraries that log what they are given.
LEAKY_LIBRARIES = """
import base64
import http.client
import logging

import requests

# The usual recipe for seeing request headers: http.client's debug lines, logged.
http.client.HTTPConnection.debuglevel = 1
http.client.print = lambda *args: logging.getLogger("http.client").debug(" ".join(map(str, args)))
send = requests.Session.send


def send_logging_credentials(self, request, **kwargs):
    token = request.headers["Authorization"].removeprefix("Basic ")
    logging.getLogger("urllib3").debug("credentials %s", base64.b64decode(token).decode())
    return send(self, request, **kwargs)


requests.Session.send = send_logging_credentials
"""


def test_a_library_logging_the_key_prints_it_redacted(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(LEAKY_LIBRARIES)
    token = base64.b64encode(f"{API_KEY}:x".encode()).decode()
    counts = {"subscriptions": 20, "customers": 10, "invoices": 10}
    with Sandbox(sandbox_config(counts=counts)) as site:
        result = run_cli(
            tap_config(site), tmp_path, loglevel="DEBUG", env={"PYTHONPATH": str(tmp_path)}
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Authorization: Basic [REDACTED]" in result.stderr
    assert "credentials [REDACTED]:x" in result.stderr
    # stdout holds the records and the STATE messages.
    assert '"type":"STATE"' in result.stdout
    for output in (result.stdout, result.stderr):
        assert API_KEY not in output
        assert token not in output


def test_legacy_site_skips_invoices_with_one_warning(caplog):
    with (
        Sandbox(sandbox_config(invoicing="legacy")) as site,
        caplog.at_level(logging.WARNING),
    ):
        run = run_tap(tap_config(site))
    assert run.records["invoices"] == []
    assert len(run.records["subscriptions"]) == COUNTS["subscriptions"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("invoices: skipped" in w for w in warnings) == 1


def test_ebb_server_reads_from_the_production_host(shared_sandbox, caplog):
    with caplog.at_level(logging.INFO):
        run = run_tap(tap_config(shared_sandbox, server="EBB (US)"))
    assert len(run.records["customers"]) == COUNTS["customers"]
    lines = [r.getMessage() for r in caplog.records if "reads go to" in r.getMessage()]
    assert len(lines) == 1


class ToSandbox(requests.adapters.HTTPAdapter):
    """Carry https requests for a Maxio host to the sandbox, keeping their Host."""

    def __init__(self, sandbox_url: str):
        super().__init__()
        self.sandbox_url = sandbox_url

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.hostname
        request.url = self.sandbox_url + request.url[len(f"{parts.scheme}://{parts.netloc}") :]
        return super().send(request, **kwargs)


@pytest.mark.parametrize(
    ("environment", "server", "host"),
    [
        ("us", "production", "acme.chargify.com"),
        ("eu", "production", "acme.ebilling.maxio.com"),
        ("us", "ebb", "acme.chargify.com"),
        ("eu", "ebb", "acme.ebilling.maxio.com"),
    ],
)
def test_each_variant_reaches_its_host(monkeypatch, environment, server, host):
    with Sandbox(sandbox_config(expected_host=host)) as site:
        original = requests.Session.__init__

        def session_init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            self.mount("https://", ToSandbox(site.url))

        monkeypatch.setattr(requests.Session, "__init__", session_init)
        config = tap_config(site, environment=environment, server=server)
        del config["base_url"]
        run = run_tap(config)
    assert len(run.records["subscriptions"]) == COUNTS["subscriptions"]
    assert {r.headers.get("Host") for r in site.requests} == {host}
