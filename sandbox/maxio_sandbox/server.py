"""The HTTP side: routing, auth, injected faults, the request log, and site mutations."""

# ruff: noqa: S311 -- seeded, reproducible randomness is the point; nothing here is secret

from __future__ import annotations

import base64
import binascii
import random
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from .collections import (
    REGISTRY,
    CollectionSpec,
    Plan,
    QueryError,
    active_specs,
    path_ids,
    path_pattern,
    plan,
    run,
    total,
)
from .config import SandboxConfig
from .data import ChildFactory, Dataset, Record, render_site
from .deletes import archive, change_invoice_status, delete

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

RATE_LIMITED = "This request has been rate limited due to a usage violation."
ACCESS_DENIED = "HTTP Basic: Access denied."
FEATURE_DISABLED = "This feature is not enabled for this site."
SERVER_ERRORS = (500, 502, 503, 504, 521, 522, 524)
_SERVER_ERROR_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    521: "Web server is down",
    522: "Connection timed out",
    524: "A timeout occurred",
}
RESET = 0
"""Status logged for a connection closed without a response."""

Key = int | str | tuple[int | str, ...]


@dataclass(frozen=True)
class RequestLog:
    """One request as the server saw it, and the status it got (0: connection reset)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int


#: The tap's streams whose records come from more than one collection.
STREAM_SOURCES = {"metafields": ["customer_metafields", "subscription_metafields"]}


@dataclass(frozen=True)
class Snapshot:
    """The site's records at one moment."""

    keys: dict[str, frozenset[Key]]
    updated_at: dict[str, dict[Key, int]]
    """Per record, updated_at (created_at where a collection has none) as a UTC epoch."""
    seqs: dict[str, int]


@dataclass(frozen=True)
class _Fault:
    status: int
    body: str | None = None
    retry_after: float | str | None = None
    reset: bool = False
    path: str | None = None
    """Served only to a request for this path (None: any)."""


class Sandbox:
    """A fake Maxio site on 127.0.0.1, seeded at construction, served from start()."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        """Seed the site now (seconds for half a million records); serve from start()."""
        self.config = cfg = config or SandboxConfig()
        specs = active_specs(cfg.invoicing)
        unknown = set(cfg.counts) - {s.name for s in REGISTRY}
        if unknown:
            raise ValueError(f"unknown collections in counts: {sorted(unknown)}")
        self.specs: dict[str, CollectionSpec] = {s.name: s for s in specs}
        self._routes = {s.path: s for s in specs if not s.parameterised}
        self._patterns = [(path_pattern(s.path), s) for s in specs if s.parameterised]
        self.data = Dataset(
            cfg, [(s.name, s.factory, cfg.counts.get(s.name, s.count)) for s in specs]
        )
        self.requests: list[RequestLog] = []
        self._data_lock = threading.RLock()
        self._state_lock = threading.Lock()  # log, faults, counters: never held while sleeping
        self._scripted: deque[_Fault] = deque()
        self._before: dict[str, Callable[[], object]] = {}
        self._fault_rng = random.Random(f"{cfg.seed}/faults")
        self._server_errors = 0
        self._in_flight = 0
        self.peak_in_flight = 0
        """The most requests the site has had in flight at once."""
        self.connections = 0
        """The connections the site has accepted (each a TLS handshake on Maxio's hosts)."""
        self._list_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Serve on the configured host and port in a daemon thread."""
        if self._server is not None:
            return self
        with self._data_lock:
            for spec in self.specs.values():  # build the usual indexes before the first request
                factory = self.data.factories[spec.name]
                table = factory.table
                table.index(spec.default_sort, spec.default_direction == "desc")
                if "updated_at" in table.cols:
                    table.index("updated_at")
                if isinstance(factory, ChildFactory):
                    table.index(factory.parent_column)
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._server = _Server((self.config.host, self.config.port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="maxio-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        """Start serving."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()

    @property
    def port(self) -> int:
        """The port served on (the real one when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8080."""
        return f"http://{self.config.host}:{self.port}"

    # --- scripting and inspection ---------------------------------------------------------

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._state_lock:
            self.requests.clear()

    def fail_next(
        self,
        status: int = 429,
        times: int = 1,
        *,
        body: str | None = None,
        retry_after: float | str | None = None,
        reset: bool = False,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` requests (for `path`, or any) with this, before random faults."""
        fault = _Fault(status, body, retry_after, reset, path)
        with self._state_lock:
            self._scripted.extend(fault for _ in range(times))

    def disable(self, collection: str, status: int | None = 403) -> None:
        """Refuse every request for a collection, as a site without its feature does.

        `status` is 403 or 422; None enables the feature again.
        """
        if collection not in self.specs:
            raise ValueError(f"this site has no collection {collection!r}")
        if status is None:
            self.config.disabled.pop(collection, None)
        else:
            self.config.disabled[collection] = status

    def before_each(self, path: str, action: Callable[[], object] | None) -> None:
        """Run `action` before each request for `path` is answered (None: no longer)."""
        if action is None:
            self._before.pop(path, None)
        else:
            self._before[path] = action

    def clear_faults(self) -> None:
        """Drop scripted faults not served yet (random rates stay as configured)."""
        with self._state_lock:
            self._scripted.clear()

    def mutate(
        self, updates: int = 5, creates: int = 2, collection: str | None = None
    ) -> dict[str, set[Key]]:
        """Edit `updates` random records and add `creates` new ones, at the server's now.

        Applies to one collection, or to every one that churns; returns the keys touched.
        """
        if collection is not None and collection not in self.specs:
            raise ValueError(f"this site has no collection {collection!r}")
        with self._data_lock:
            return self._mutate(updates, creates, collection)

    def delete(self, collection: str, key: Key) -> dict[str, set[Key]]:
        """Delete a record at the server's now; returns the keys deleted per collection.

        Customers, subscriptions and payment profiles vanish from lists and counts with
        what belongs to them (a customer's subscriptions and payment profiles, the
        records of a subscription's child lists); each deleted subscription, then the
        customer, logs a subscription_deletion or customer_delete event. Metadata is
        soft-deleted: it gets a deleted_at, and lists show it only with_deleted=true.
        ValueError for what Maxio does not delete; KeyError for an unknown record.
        """
        with self._data_lock:
            row = self._row(collection, key)
            return delete(self.data, collection, row, self.data.now())

    def archive(self, collection: str, key: Key) -> None:
        """Archive a catalog item at the server's now (its archived_at and updated_at).

        Coupons, products, components, offers and price points; lists with an
        include-archived parameter leave it out unless asked.
        """
        with self._data_lock:
            archive(self.data, collection, self._row(collection, key), self.data.now())

    def change_invoice_status(self, uid: str | None = None) -> int:
        """Move an invoice (or a random one) to its next status, logging an event.

        Open goes to processing, processing to paid, draft and pending to open; the
        change_invoice_status event on /invoices/events.json shows only with
        with_change_invoice_status=true. Returns the event's id.
        """
        if self.config.invoicing != "relationship":
            raise ValueError("invoice events exist on relationship-invoicing sites only")
        with self._data_lock:
            row = None if uid is None else self._row("invoices", uid)
            return change_invoice_status(self.data, row, self.data.now())

    def crowd(self, collection: str, count: int, path: str | None = None) -> str:
        """Give one parent `count` new records, a second apart; return their list's path.

        The parent is the one `path` names, or a random one.
        """
        f = self.data.factories[collection]
        spec = self.specs[collection]
        if not isinstance(f, ChildFactory):
            raise ValueError(f"{collection} has no parent to crowd")
        parent = None
        if path is not None:
            match = path_pattern(spec.path).fullmatch(path)
            if match is None:
                raise ValueError(f"{path} is not a path of {collection}")
            _, key = f.scope(path_ids(match))
            parent = self.data.table(f.parent).row_of(key)
        with self._data_lock:
            rows = f.crowd(self.data.mutation_rng, count, self.data.now(), parent)
            return spec.path.format(**f.path_params(rows[0]))

    def snapshot(self) -> Snapshot:
        """Every record's key and updated_at, to compare with later."""
        with self._data_lock:
            keys: dict[str, frozenset[Key]] = {}
            stamps: dict[str, dict[Key, int]] = {}
            for name, f in self.data.factories.items():
                col = f.table.cols["updated_at" if "updated_at" in f.table.cols else "created_at"]
                stamps[name] = {f.key(r): col[r] for r in f.table.live_rows()}
                keys[name] = frozenset(stamps[name])
            seqs = {name: f.table.seq for name, f in self.data.factories.items()}
        return Snapshot(keys, stamps, seqs)

    def changed_since(self, snapshot: Snapshot) -> dict[str, set[Key]]:
        """Keys created or updated after the snapshot, per collection."""
        with self._data_lock:
            out: dict[str, set[Key]] = {}
            for name, f in self.data.factories.items():
                since = snapshot.seqs.get(name, 0)
                seq = f.table.cols["_seq"]
                out[name] = {f.key(r) for r in f.table.live_rows() if seq[r] > since}
            return out

    def records(self, collection: str, flags: Iterable[str] | None = None) -> list[Record]:
        """Current records as served, in creation order; deleted ones are gone.

        By default with every optional array and include; `flags=()` gives the shape of
        a list request without flags. Coupon subcodes, served as bare strings, come as
        {"coupon_id", "code"}. Records that lists show only when asked come too, as a
        client asking for them reads them: soft-deleted metadata (with deleted_at),
        archived catalog items, change_invoice_status invoice events.
        """
        spec = self.specs[collection]
        wanted = frozenset((*spec.flags, *spec.includes) if flags is None else flags)
        with self._data_lock:
            f = self.data.factories[collection]
            return [f.render(r, wanted) for r in f.table.live_rows()]

    def stream_records(self, stream: str) -> list[Record]:
        """The records behind one of the tap's streams, as a warehouse should hold them.

        `metafields` gathers both resources' metafields, `site` is the one site
        record, and a stream of the other invoicing model has none here.
        """
        if stream == "site":
            with self._data_lock:
                return [render_site(self.data)]
        sources = STREAM_SOURCES.get(stream, [stream])
        return [r for source in sources if source in self.specs for r in self.records(source)]

    def list_path(self, collection: str, record: Record | None = None) -> str:
        """The path of the list serving a record (by default the collection's first).

        Lists of one parent's records need the parent's ids in the path.
        """
        spec = self.specs[collection]
        if not spec.parameterised:
            return spec.path
        with self._data_lock:
            f = self.data.factories[collection]
            row = 0
            if record is not None:
                key = self.key(collection, record)
                row = next(r for r in f.table.live_rows() if f.key(r) == key)
            return spec.path.format(**f.path_params(row))

    def _row(self, collection: str, key: Key) -> int:
        """The row of a live record (KeyError if none)."""
        if collection not in self.specs:
            raise ValueError(f"this site has no collection {collection!r}")
        f = self.data.factories[collection]
        if isinstance(key, int):  # most keys are the primary key itself: no scan
            try:
                row = f.table.row_of(key)
            except KeyError:
                row = -1
            if row >= 0 and f.key(row) == key:
                return row
        for row in f.table.live_rows():
            if f.key(row) == key:
                return row
        raise KeyError(f"{collection} has no record {key!r}")

    def key(self, collection: str, record: Record) -> Key:
        """The primary key of a record: id, uid, code or several fields, per collection."""
        field = self.specs[collection].factory.key_field
        if isinstance(field, tuple):
            return tuple(record[name] for name in field)
        key: Key = record[field]
        return key

    # --- serving ----------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        cfg = self.config
        split = urlsplit(h.path)
        query = parse_qs(split.query, keep_blank_values=True)
        reply = _Reply(
            h, self, RequestLog(h.command, split.path, query, dict(h.headers.items()), 0)
        )
        host = (h.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        if cfg.expected_host and host != cfg.expected_host.lower():
            return reply.send(404, b"")
        with self._state_lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            over = cfg.max_in_flight is not None and self._in_flight > cfg.max_in_flight
        reply.release = self._release
        try:
            if over:
                return reply.text(429, RATE_LIMITED)
            if cfg.latency > 0:
                time.sleep(cfg.latency)
            fault = self._next_fault(split.path)
            if fault is not None:
                return reply.fault(fault)
            action = self._before.get(split.path)
            if action is not None:
                action()
            try:
                self._route(reply, split.path, query)
            except (ConnectionError, TimeoutError):
                raise
            except Exception:
                # A bug of the sandbox, not a fault it plays: say so loudly.
                traceback.print_exc()
                reply.text(500, "sandbox error:\n" + traceback.format_exc())
        finally:
            reply.done()

    def _release(self) -> None:
        with self._state_lock:
            self._in_flight -= 1

    def _route(self, reply: _Reply, path: str, query: dict[str, list[str]]) -> None:
        spec = self._routes.get(path)
        ids: dict[str, int | str] = {}
        for pattern, candidate in self._patterns if spec is None else ():
            m = pattern.match(path)
            if m:
                spec, ids = candidate, path_ids(m)
                break
        if spec is None and path != "/site.json":
            return reply.send(404, b"")
        if not self._authorized(reply.h):
            return reply.text(401, ACCESS_DENIED, {"WWW-Authenticate": 'Basic realm="Application"'})
        if reply.h.command != "GET":
            return reply.send(405, b"")
        if spec is None:
            return reply.json(200, {"site": render_site(self.data)})
        try:
            p = self._plan(spec, query)
        except QueryError as e:
            return reply.json(e.status, {"errors": [str(e)]})
        with self._data_lock:
            factory = self.data.factories[spec.name]
            try:
                scope = factory.scope(ids) if spec.parameterised else None
            except KeyError:
                return reply.send(404, b"")  # no such parent record
            self._list_requests += 1
            every = self.config.mutate_every
            if every and self._list_requests % every == 0:
                self._mutate(3, 1, spec.name)
            records = [factory.render(r, p.flags) for r in run(factory.table, p, scope)]
            count = total(factory.table, p, scope) if spec.page_info else 0
        reply.json(200, spec.envelope(records, p, count))

    def _plan(self, spec: CollectionSpec, query: dict[str, list[str]]) -> Plan:
        """The request's plan; a collection whose feature is off refuses every request."""
        status = self.config.disabled.get(spec.name)
        if status is not None:
            raise QueryError(FEATURE_DISABLED, status)
        return plan(spec, query, self.data.clock)

    def _authorized(self, h: _Handler) -> bool:
        scheme, _, encoded = (h.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, _password = (
                base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.config.api_key

    def _next_fault(self, path: str) -> _Fault | None:
        cfg = self.config
        with self._state_lock:
            for scripted in self._scripted:
                if scripted.path in (None, path):
                    self._scripted.remove(scripted)
                    return scripted
            if not (cfg.rate_429 or cfg.rate_5xx or cfg.rate_reset):
                return None
            roll = self._fault_rng.random()
            if roll < cfg.rate_429:
                return _Fault(429)
            if roll < cfg.rate_429 + cfg.rate_5xx:
                status = SERVER_ERRORS[self._server_errors % len(SERVER_ERRORS)]
                self._server_errors += 1
                return _Fault(status)
            if roll < cfg.rate_429 + cfg.rate_5xx + cfg.rate_reset:
                return _Fault(RESET, reset=True)
        return None

    def _mutate(self, updates: int, creates: int, collection: str | None) -> dict[str, set[Key]]:
        factories = self.data.factories
        names = [collection] if collection else [n for n, f in factories.items() if f.churns]
        now = self.data.now()
        rng = self.data.mutation_rng
        touched: dict[str, set[Key]] = {}
        for name in names:
            f = factories[name]
            keys = touched[name] = set()
            live = f.table.live_rows()
            if "updated_at" in f.table.cols:
                for row in rng.sample(live, min(updates, len(live))):
                    if f.editable(row):
                        f.change(row, rng, now)
                        keys.add(f.key(row))
            for _ in range(creates):
                created = f.create(rng, now)
                if created is not None:
                    keys.add(f.key(created))
        return touched

    def _log(self, entry: RequestLog) -> None:
        with self._state_lock:
            self.requests.append(entry)

    def _connected(self) -> None:
        with self._state_lock:
            self.connections += 1


class _Reply:
    """Writes one response (or a reset) and logs the request with its status."""

    def __init__(self, h: _Handler, sandbox: Sandbox, entry: RequestLog) -> None:
        self.h = h
        self.sandbox = sandbox
        self.entry = entry
        #: Ends the request's turn among those in flight (set while it counts as one).
        self.release: Callable[[], None] | None = None

    def done(self) -> None:
        """The request no longer counts as in flight: its answer is ready.

        Before the answer is written, not after: a client that has read it may
        send its next request before this thread runs again, and Maxio queues a
        request over the limit rather than refuse it at once.
        """
        release, self.release = self.release, None
        if release is not None:
            release()

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._log(status)
        self.done()
        h = self.h
        h.send_response(status)
        if content_type:
            h.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self.send(status, text.encode(), "text/plain; charset=utf-8", headers)

    def json(self, status: int, payload: Any) -> None:
        # msgspec encodes a page of 200 subscriptions ~18x faster than json, so
        # the fake server's own CPU does not dominate what benchmarks measure.
        body = msgspec.json.encode(payload)
        self.send(status, body, "application/json; charset=utf-8")

    def fault(self, fault: _Fault) -> None:
        if fault.reset:
            self._log(RESET)
            self.done()
            conn = self.h.connection
            # Linger 0: close() sends RST, as a dropped connection does, instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            self.h.close_connection = True
            return
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        body = fault.body
        if body is None:
            body = RATE_LIMITED if fault.status == 429 else _SERVER_ERROR_TEXT.get(fault.status, "")
        if body.startswith(("{", "[")):
            self.send(fault.status, body.encode(), "application/json; charset=utf-8", headers)
        else:
            self.text(fault.status, body, headers)

    def _log(self, status: int) -> None:
        e = self.entry
        self.sandbox._log(RequestLog(e.method, e.path, e.query, e.headers, status))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response (or a reset we made) is not a server error.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a client's session expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    sandbox: Sandbox

    def setup(self) -> None:
        super().setup()
        self.sandbox._connected()

    def do_GET(self) -> None:
        self.sandbox._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is Sandbox.requests
