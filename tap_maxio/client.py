"""The one stream class every Maxio stream is declared from."""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
import typing as t
from datetime import datetime, timedelta, timezone
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlsplit

import msgspec
from singer_sdk import RESTStream, metrics
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_maxio.ahead import Ahead
from tap_maxio.deletes import DELETED_AT, EVENTS_PATH, EventsRequest, Tombstones
from tap_maxio.output import Output
from tap_maxio.readers import BACKFILL, IdCursor
from tap_maxio.retries import QUIET_BACKOFF, RETRY_STATUSES, giving_up, throttled, waits
from tap_maxio.windows import PageRequest, parse_timestamp, utc_iso

if t.TYPE_CHECKING:
    from collections.abc import Generator, Hashable, Iterator

    import requests
    from backoff.types import Details
    from singer_sdk.authenticators import BasicAuthenticator
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import HTTPRequest

    from tap_maxio.ahead import Read
    from tap_maxio.declaration import StreamSpec
    from tap_maxio.readers import Host, Reader
    from tap_maxio.tap import TapMaxio
    from tap_maxio.windows import Page

#: State key of the bookmark of streams whose records carry no timestamp.
WINDOW_BOOKMARK = "window_end"
#: From the start of a second to its last microsecond.
WHOLE_SECOND = timedelta(seconds=1, microseconds=-1)
#: Maxio lowers a per_page above this to this.
MAX_PAGE_SIZE = 200

_T = t.TypeVar("_T")


class MaxioAPIError(FatalAPIError):
    """An error the API will give again: the message says what to fix."""

    def __init__(self, message: str, status: int) -> None:
        """Keep the status, which decides whether the stream is skipped."""
        super().__init__(message)
        self.status = status


class MaxioResponseError(FatalAPIError):
    """A response that is not shaped as Maxio documents: asking again will not help."""


#: Statuses that skip one stream (the site lacks the endpoint or the feature).
SKIPPED_STATUSES = frozenset({HTTPStatus.NOT_FOUND, HTTPStatus.UNPROCESSABLE_ENTITY})
#: Statuses that say a declared `feature` is not enabled: the stream is off for the run.
FEATURE_OFF_STATUSES = frozenset({HTTPStatus.FORBIDDEN, HTTPStatus.UNPROCESSABLE_ENTITY})


def api_error_text(response: requests.Response) -> str:
    """The API's own message from an error body, in any of its shapes."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    errors = body.get("errors", body.get("error")) if isinstance(body, dict) else body
    if isinstance(errors, dict):
        errors = [
            f"{field} {msg}"
            for field, msgs in errors.items()
            for msg in (msgs if isinstance(msgs, list) else [msgs])
        ]
    if isinstance(errors, list):
        return "; ".join(str(e) for e in errors)[:300]
    return str(errors)[:300]


def _frozen(context: Context | None) -> Hashable:
    """A context as a key."""
    return tuple(sorted(context.items())) if context else None


def _call(attempt: t.Callable[[], _T]) -> _T:
    """Make one try (what request_decorator decorates)."""
    return attempt()


class _LazyPage:
    """A window's page held as bytes until its records are emitted."""

    def __init__(
        self, stream: MaxioStream, content: bytes, stamps: list[str | None], total: int | None
    ) -> None:
        self.stream = stream
        self.content = content
        self._stamps = stamps
        self.total = total

    def __len__(self) -> int:
        return len(self._stamps)

    def stamps(self) -> list[datetime | None]:
        return [parse_timestamp(s) if s else None for s in self._stamps]

    def records(self) -> list[dict]:
        return self.stream.extract_records(msgspec.json.decode(self.content))


class MaxioStream(RESTStream[t.Any]):
    """A Maxio list endpoint, read as its declaration in streams.toml says."""

    # Records are parsed JSON already, typed as the schema says; conforming
    # every value again cost the tap more CPU than all the rest of its work.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Retried besides every 5xx (check_status reads it).
    extra_retry_statuses = RETRY_STATUSES

    #: The stream's table of streams.toml.
    spec: t.ClassVar[StreamSpec]
    #: How its replication mode reads it (readers.reader_for).
    reader_type: t.ClassVar[type[Reader]]

    def __init__(self, tap: TapMaxio, *args: t.Any, **kwargs: t.Any) -> None:
        """Keep the tap, which holds the site's connection and throttle."""
        super().__init__(tap, *args, **kwargs)
        self.site = tap
        self._schema_written = False
        self._count_lock = threading.Lock()
        # The SDK's http_request_count of the context being read (see get_records).
        self._requests = metrics.Counter(metrics.Metric.HTTP_REQUEST_COUNT)
        #: The site said the stream's feature is not enabled: no more requests this run.
        self.feature_off = False
        if self.spec.replication == "window":
            # Records without updated_at, read from the last window's end on: the
            # catalog says the stream is incremental (and it is never versioned whole).
            self.forced_replication_method = "INCREMENTAL"
        elif self.spec.replication == "full_table":
            # Read whole every run whatever the catalog asks: the catalog says so.
            self.forced_replication_method = "FULL_TABLE"
        if self.spec.parent is not None:
            # A child keeps one bookmark for all parents, unless declared per parent.
            self.state_partitioning_keys = self.spec.state_keys or []
        #: Whether every context of this run was read to its end (see activate_version).
        self.read_whole = True

    @override
    def _write_schema_message(self) -> None:
        """Write the stream's SCHEMA once a run.

        The SDK writes it again for every parent record a child is read for,
        and a target flushes every stream on each one: with children selected,
        target-duckdb made hundreds of small loads.
        """
        if not self._schema_written:
            super()._write_schema_message()
            self._schema_written = True

    @property
    @override
    def is_sorted(self) -> bool:
        """Windows are emitted in time order, so a bookmark is a resume point."""
        return self.spec.replication in {"updated_at", "since_id"}

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """Never before a read: the SDK would send ACTIVATE_VERSION as a stream starts.

        A loader drops the rows of older versions when it gets one, so it is sent
        only after a complete read of the stream (finalize_state_progress_markers).
        """
        return False

    @property
    def versioned(self) -> bool:
        """Whether this run versions the stream's rows (a declared full table, when asked).

        Not a windowed stream read whole for a selected child: a row updated during
        the read leaves its window, and its loader would drop it.
        """
        wanted = bool(self.config.get("emit_activate_version_messages", False))
        return wanted and self.spec.replication == "full_table"

    @override
    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        """The stream and its children were read: activate the versions read whole.

        The SDK calls this once each top-level stream's sync has returned, and it
        recurses into selected children; a stream that failed never gets here.
        Its last records go out now, even where no new STATE follows them.
        """
        super().finalize_state_progress_markers(state)
        if state is None and self.selected and self.versioned and self.read_whole:
            self._write_activate_version_message(self.version)
        self.site.flush()

    @cached_property
    def version(self) -> int:
        """The version of this run's rows: the sync's start, in milliseconds."""
        return int(self.site.sync_started_at.timestamp() * 1000)

    @property
    @override
    def partitions(self) -> list[dict] | None:
        """The declared partitions, if any."""
        return self.spec.partitions

    @override
    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Generator[dict, None, None]:
        """A context for the children, when one is read (not for each record of every parent)."""
        if self._reads_children:
            yield self.get_child_context(record, context)

    @override
    def get_child_context(self, record: dict, context: Context | None) -> dict:
        """Only the parent ids (and kind) the children need: small contexts."""
        return {key: record.get(field) for key, field in self._child_context_fields.items()}

    @cached_property
    def _reads_children(self) -> bool:
        """Whether this run reads a child (known once the catalog is applied)."""
        return self.has_selected_descendents

    @cached_property
    def _child_context_fields(self) -> dict[str, str]:
        """The context keys of the children, and their fields in a record."""
        fields: dict[str, str] = {}
        for child in self.child_streams:
            fields.update(t.cast("MaxioStream", child).spec.context)
        return fields

    @property
    @override
    def url_base(self) -> str:
        """Every read goes to the production host of the site's environment."""
        return self.site.connection.read_url

    @property
    @override
    def authenticator(self) -> BasicAuthenticator:
        """HTTP Basic with the API key: the site's one authenticator."""
        return self.site.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        """The site's one session, so that every stream reuses its connections."""
        return self.site.session

    @property
    @override
    def http_headers(self) -> dict:
        """Ask for JSON, and name the connection in the User-Agent."""
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    @property
    @override
    def user_agent(self) -> str:
        """The site's User-Agent."""
        return self.site.user_agent

    @property
    @override
    def timeout(self) -> int:
        """Seconds before a request is abandoned and retried."""
        return int(self.config.get("request_timeout", 120))

    @property
    def page_size(self) -> int:
        """Records in a full page (Maxio lowers a per_page above 200 to 200)."""
        if not self.spec.paged:
            return sys.maxsize
        if self.spec.page_size is not None:
            return self.spec.page_size
        return min(int(self.config.get("page_size", 200)), MAX_PAGE_SIZE)

    # Requests and errors

    def check_status(self, response: requests.Response) -> None:
        """Retry transient statuses; fail at once, in one clear line, on the rest."""
        status = response.status_code
        if status in self.extra_retry_statuses or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise MaxioAPIError(self.response_error_message(response), status)

    def decode(self, response: requests.Response, parse: t.Callable[[t.Any], _T]) -> _T:
        """Parse a body; one that is not JSON (a maintenance page, a cut body) is retried."""
        try:
            return parse(response)
        except msgspec.ValidationError as exc:
            raise MaxioResponseError(self._where(response, f"unexpected response: {exc}")) from None
        except msgspec.DecodeError:
            kind = response.headers.get("Content-Type", "no content type")
            text = response.text.strip().replace("\n", " ")[:80]
            message = f"the response is not JSON ({kind}, {len(response.content)} bytes: {text!r})"
            raise RetriableAPIError(self._where(response, message), response) from None

    def _where(self, response: requests.Response, what: str) -> str:
        split = urlsplit(response.url)
        return f"{self.name}: HTTP {response.status_code} from {split.hostname}{split.path}: {what}"

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """Say what failed and what to check, without headers or credentials."""
        status = response.status_code
        where = self._where(response, "").removesuffix(": ")
        if status == HTTPStatus.UNAUTHORIZED:
            return f"{where}: Maxio refused the API key; check api_key, subdomain and environment"
        if status == HTTPStatus.FORBIDDEN:
            # The API's own words say whether a feature is off or the key lacks a permission.
            text = api_error_text(response)
            said = f" ({text})" if text else ""
            check = "check the key's permissions in Maxio"
            return f"{where}: the API key may not read this{said}; {check}"
        if status == HTTPStatus.NOT_FOUND:
            return f"{where}: not found; check subdomain and environment"
        text = api_error_text(response)
        return f"{where}: {text}" if text else where

    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Each try within a slot of the site's throttle, retried by the SDK's decorator.

        The SDK's hooks say what is retried (extra_retry_statuses, read by
        check_status), how often (backoff_max_tries), how long to wait
        (backoff_wait_generator) and what to do before the wait (backoff_handler).
        No hook can widen the exceptions the SDK's decorator retries, or say
        that tries ran out: `throttled` raises every transient failure as a
        RetriableAPIError, and `giving_up` ends the run on one line.
        """
        # backoff logs each retry to the stream's logger too (see QuietBackoff).
        self.logger.addFilter(QUIET_BACKOFF)
        attempt = throttled(func, self.site.throttle, f"{self.name}: GET {self.path}")
        return giving_up(super().request_decorator(attempt), self.backoff_max_tries)

    @override
    def backoff_max_tries(self) -> int:
        """The first try and `max_retries` more."""
        return int(self.config.get("max_retries", 8)) + 1

    @override
    def backoff_wait_generator(self) -> Generator[float, BaseException | None, None]:
        """A failure's Retry-After, else `retry_backoff` doubling, with jitter (see waits)."""
        return waits(float(self.config.get("retry_backoff", 1.0)))

    @override
    def backoff_jitter(self, value: float) -> float:
        """The wait as the generator gave it: jittered already, or the server's own."""
        return value

    @override
    def backoff_handler(self, details: Details) -> None:
        """Say what failed and when the next try is; a 429 slows the whole site down."""
        failure, wait = details.get("exception"), details.get("wait", 0.0)
        if getattr(getattr(failure, "response", None), "status_code", None) == 429:
            self.site.throttle.rate_limited(wait)
        next_try, tries = details["tries"] + 1, self.backoff_max_tries()
        self.logger.warning("%s; try %d of %d in %.1f s", failure, next_try, tries, wait)

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        """The declared parameters, the page, and a window's date filter.

        Only what the spec documents: no paging on an unpaged list, no per_page on fixed pages.
        """
        if isinstance(next_page_token, EventsRequest):
            return next_page_token.params()
        params: dict[str, t.Any] = dict(self.spec.params)
        if self.spec.paged and self.spec.page_size is None:
            params["per_page"] = self.page_size
        page: int = 1
        if isinstance(next_page_token, IdCursor):
            params["since_id"] = next_page_token.since_id
            if next_page_token.max_id is not None:
                params["max_id"] = next_page_token.max_id
            if next_page_token.newest:
                params.update(direction="desc", per_page=1)
            page = next_page_token.page
        elif isinstance(next_page_token, PageRequest):
            window = next_page_token.window
            date_field = next_page_token.date_field
            params.update(self.spec.order(date_field, tie=next_page_token.tie_order))
            # Maxio compares milliseconds. A window's end second is the next one's
            # start, which reads the rest of it; a single second is followed by the
            # next second, so it is asked for whole.
            end = window.end + WHOLE_SECOND if window.seconds == 0 else window.end
            bounds = {
                "date_field": date_field,
                "start_datetime": utc_iso(window.start),
                "end_datetime": utc_iso(end),
            }
            if self.spec.filter_style == "filter":
                bounds = {f"filter[{k}]": v for k, v in bounds.items()}
            params.update(bounds)
            page = next_page_token.page
        elif next_page_token:
            page = next_page_token
        if self.spec.paged:
            params["page"] = page
        return params

    @override
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        """The stream's request, or one of `/events.json` for its tombstones."""
        request = super().get_http_request(page=page)
        if isinstance(page.next_page_token, EventsRequest):
            request = dataclasses.replace(request, url=self.url_base + EVENTS_PATH)
        return request

    # Responses

    def extract_records(self, data: t.Any) -> list[dict]:
        """Unwrap the endpoint's envelope into a list of records.

        Raises msgspec.ValidationError where the envelope is not the documented one:
        a list read as empty, or a record skipped, would be silently lost.
        """
        if self.spec.records_key is not None:
            if not isinstance(data, dict) or self.spec.records_key not in data:
                raise msgspec.ValidationError(f"expected an object with `{self.spec.records_key}`")
            data = data[self.spec.records_key] or []
        elif isinstance(data, dict) and self.spec.wrapper is not None:
            data = [data]  # a single record: /site.json
        if not isinstance(data, list):
            raise msgspec.ValidationError(f"expected a list, got {type(data).__name__}")
        if self.spec.scalar is not None:
            return [{self.spec.scalar: item} for item in data]
        if self.spec.wrapper is not None:
            wrapper = self.spec.wrapper
            if not all(isinstance(item, dict) and wrapper in item for item in data):
                raise msgspec.ValidationError(f'expected every item as {{"{wrapper}": {{...}}}}')
            data = [item[wrapper] for item in data]
        if not all(isinstance(record, dict) for record in data):
            raise msgspec.ValidationError("expected every record to be an object")
        return t.cast("list[dict]", data)

    @cached_property
    def _every_property_selected(self) -> bool:
        """Whether the catalog keeps every property of the stream.

        A breadcrumb missing from the mask takes its parent's value, so when
        every listed one is selected no property is ever removed.
        """
        return all(self.mask.values())

    @override
    def _write_record_message(self, record: dict) -> None:
        """RECORD messages straight into the output, where the catalog keeps records whole.

        The SDK walks every nested object of every record to drop deselected
        properties (a quarter of the tap's CPU when nothing is deselected), then
        builds a message object per record only to turn it into a dict; the
        same line is written here without either. Values are not conformed
        either way (TYPE_CONFORMANCE_LEVEL is NONE).
        """
        output = self.site.message_writer
        if not (self._every_property_selected and isinstance(output, Output)):
            super()._write_record_message(record)
            return
        now = datetime.now(timezone.utc)
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                output.write_record(stream_map.stream_alias, mapped, self._stream_version, now)
        self.state_manager.is_flushed = False

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Emit updated_at in UTC, so that bookmarks compare as instants."""
        for key, value in (context or {}).items():
            # A child record names its parent, where its schema has room for it.
            if key not in row and key in self.schema["properties"]:
                row[key] = value
        if row.get("updated_at"):
            row["updated_at"] = utc_iso(parse_timestamp(row["updated_at"]))
        if self.spec.deleted_field is not None:
            # A soft delete the API reports in a field of its own (metadata's deleted_at).
            deleted = row.get(self.spec.deleted_field)
            row[DELETED_AT] = utc_iso(parse_timestamp(deleted)) if deleted else None
        return row

    # Reading

    @cached_property
    def read_once(self) -> list[dict]:
        """The records of a stream others read too (the site's settings): its turn reuses them."""
        return list(self.get_records(None))

    @override
    def get_records(self, context: Context | None) -> Iterator[dict]:
        """Read the stream as its replication asks; skip what the site lacks."""
        if "read_once" in self.__dict__:
            yield from self.read_once
            return
        self.site.ask_ahead()
        if not self.site_has(context):
            return
        if self.versioned:
            self._stream_version = self.version  # the version RECORD messages carry
        try:
            with self.get_http_request_counter() as self._requests:
                self._requests.with_context(context)
                ahead = self.site.reads_ahead.take((self.name, _frozen(context)))
                if ahead is None:
                    yield from self.read(self, context)
                else:
                    yield from ahead.take(self._count, functools.partial(self.read, self, context))
        except Exception as exc:
            # The site lacks the endpoint or has not enabled the feature: that
            # stream has nothing to give, and the rest of the sync goes on.
            status = exc.status if isinstance(exc, MaxioAPIError) else None
            self.feature_off = self.spec.feature and status in FEATURE_OFF_STATUSES
            if status not in SKIPPED_STATUSES and not self.feature_off:
                self.site.reads_ahead.stop()  # the run ends: what was emitted goes out
                self.site.flush()
                raise
            self.read_whole = False
            self.logger.warning("%s: skipped, %s", self.name, exc)

    @property
    def invoicing_skips(self) -> bool:
        """Whether the site's invoicing model lacks what the stream reads."""
        return bool(self.spec.invoicing) and self.site.invoicing != self.spec.invoicing

    def site_has(self, context: Context | None) -> bool:
        """Whether the site has what the stream reads for `context` (said when it lacks it)."""
        if self.invoicing_skips:
            self.read_whole = False
            if self.spec.invoicing == "legacy":
                self.logger.info("%s: skipped, this site does not use legacy invoicing", self.name)
            else:
                self.logger.warning(
                    "%s: skipped, this site uses legacy invoicing and the stream needs "
                    "Relationship Invoicing",
                    self.name,
                )
            return False
        only = self.spec.only_when.items()
        return not (self.feature_off or any(context and context.get(k) not in v for k, v in only))

    def read(self, host: Host, context: Context | None) -> Generator[dict, None, None]:
        """One context's records, then its tombstones (if declared), read for `host`."""
        tombstones = None
        if self.spec.tombstones:
            key = self.spec.primary_keys[0]
            tombstones = Tombstones(host, self.spec.tombstones, key, MAX_PAGE_SIZE)
            tombstones.begin(context)
        yield from self.reader_type(host).read(context)
        if tombstones is not None:
            yield from tombstones.read(context, self.schema["properties"])

    def send(
        self, context: Context | None, token: t.Any, parse: t.Callable[[requests.Response], _T]
    ) -> _T:
        """Send one request of the stream in its turn: counted in the SDK's http_request_count.

        The site's first answer begins the reads ahead (ahead.py).
        """
        result = self.request(context, token, parse, self._count)
        self.site.reads_ahead.go()
        return result

    def request(
        self,
        context: Context | None,
        token: t.Any,
        parse: t.Callable[[requests.Response], _T],
        count: t.Callable[[int], None],
    ) -> _T:
        """One request, within the site's throttle and retries; `count` is told of each try."""
        request = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=token)
        )
        prepared = self.build_prepared_request(
            method=request.method,
            url=request.url,
            params=request.encode_params(),
            headers=request.headers,
        )

        def attempt() -> _T:
            response = self.requests_session.send(prepared, timeout=self.timeout)
            count(1)
            self.check_status(response)
            return self.decode(response, parse)

        return t.cast("_T", self.retrying(attempt))

    @cached_property
    def retrying(self) -> t.Callable[[t.Callable[[], t.Any]], t.Any]:
        """Make one request's tries, throttled and retried: decorated once per stream.

        backoff asks the SDK's hooks for a new wait generator and try count on
        each call, so one decorated caller serves every request.
        """
        return self.request_decorator(_call)

    def _count(self, tries: int) -> None:
        """Count requests in the SDK's http_request_count of the context being read."""
        with self._count_lock:
            self._requests.increment(tries)

    def reads_ahead(self) -> dict[Hashable, t.Callable[[Read], Generator[dict, None, None]]]:
        """The stream's reads that may begin before its turn (ahead.py), by context.

        Only where the SDK syncs the stream by itself: not a child, not one the
        site's invoicing model skips. Its bookmark is read now, in the main
        thread, as the SDK reads it when the stream's turn comes.
        """
        if not (self.selected or self.has_selected_descendents) or self.feature_off:
            return {}
        if "read_once" in self.__dict__ or self.parent_stream_type or self.invoicing_skips:
            return {}
        reads: dict[Hashable, t.Callable[[Read], Generator[dict, None, None]]] = {}
        for context in self.partitions or (None,):
            self._write_starting_replication_value(context)  # pinned in test_sdk_private.py
            state, bookmark = dict(self.get_context_state(context)), self.bookmark(context)
            key = (self.name, _frozen(context))
            reads[key] = functools.partial(self.read_ahead, context, state, bookmark)
        return reads

    def read_ahead(
        self, context: Context | None, state: dict, bookmark: t.Any, read: Read
    ) -> Generator[dict, None, None]:
        """One context read before its turn: for the stream as `read` lets it be seen."""
        return self.read(t.cast("Host", Ahead(self, read, state, bookmark)), context)

    def page_records(self, response: requests.Response) -> list[dict]:
        """A response's records, parsed once however often asked for."""
        records: list[dict] | None = getattr(response, "maxio_records", None)
        if records is None:
            records = self.extract_records(msgspec.json.decode(response.content))
            setattr(response, "maxio_records", records)  # noqa: B010
        return records

    def page_stamps(self, response: requests.Response, field: str = "updated_at") -> Page:
        """A response's timestamps (of `field`) now; its records are parsed when emitted."""
        summary = msgspec.json.decode(response.content, type=self.summary_type)
        spec = self.spec
        items = summary if spec.records_key is None else getattr(summary, spec.records_key) or []
        if spec.wrapper is not None:
            items = [getattr(item, spec.wrapper) for item in items]
        total = getattr(summary, spec.count_key) if spec.count_key else None
        return _LazyPage(self, response.content, [getattr(item, field) for item in items], total)

    @cached_property
    def summary_type(self) -> t.Any:
        """A msgspec type that reads only each record's dates from a page."""
        backfill = self.spec.backfill
        dates = ["updated_at"] if backfill is None else ["updated_at", backfill.date_field]
        fields = [(name, str | None, None) for name in dates]
        item: t.Any = msgspec.defstruct(f"{self.name}_stamp", fields)
        if self.spec.wrapper is not None:
            item = msgspec.defstruct(f"{self.name}_wrapped", [(self.spec.wrapper, item)])
        if self.spec.records_key is None:
            return list[item]
        envelope: list[t.Any] = [(self.spec.records_key, list[item] | None)]
        if self.spec.count_key is not None:
            envelope.append((self.spec.count_key, int | None, None))
        return msgspec.defstruct(f"{self.name}_envelope", envelope)

    # State: the stream owns it; its reader says when and what to commit.

    def bookmark(self, context: Context | None) -> t.Any:
        """The bookmark a read starts from: the state's, else start_date, else None."""
        if self.replication_key is None:
            saved = self.get_context_state(context).get(WINDOW_BOOKMARK)
            return saved or self.config.get("start_date")
        return self.get_starting_replication_key_value(context)

    def commit(self, context: Context | None, bookmark: t.Any = None) -> None:
        """Write STATE (a safe point to resume from), with a new bookmark if given.

        Records move an incremental bookmark one by one (_increment_stream_state);
        a window's end, or the highest id of ids read in any order, is given here.
        """
        if bookmark is not None:
            state = self.get_context_state(context)
            if self.replication_key is None:
                state[WINDOW_BOOKMARK] = bookmark
            else:
                state.update(replication_key=self.replication_key, replication_key_value=bookmark)
            self.state_manager.is_flushed = False
        self._write_state_message()

    def remember(self, context: Context | None, key: str, value: t.Any) -> None:
        """Keep a value of the stream's own in its state (None: drop it), and write STATE."""
        state = self.get_context_state(context)
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
        self.state_manager.is_flushed = False
        self._write_state_message()

    def finish(self, context: Context | None) -> None:
        """The context is read whole: settle its state, and write it.

        The SDK settles a child's state only when the parent's context holds
        nothing but the state keys (usages' also holds the component kind).
        """
        self.state_manager.finalize_state(self.get_context_state(context))
        self._write_state_message()

    @property
    def sync_started_at(self) -> datetime:
        """The fixed upper bound of every window of this sync."""
        return self.site.sync_started_at

    @property
    def workers(self) -> int:
        """Requests the stream may have in flight."""
        return self.site.max_concurrent_requests

    @override
    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """Move the bookmark forward only, to a record's value within the sync's bounds.

        The SDK would raise on a record without its replication key, warn on each
        null one, and raise on a value below the bookmark (a fraction of the
        bookmark's second, read again). A value past the sync's upper bound (a row
        changed while it was read) is taken as the bound: past it, rows changed
        during the sync would be skipped next time. Ids read in any order move the
        bookmark once all are read. During a backfill the bookmark stays where its
        first run set it, the point the next updated_at windows start from.
        """
        if self.replication_key is None or self.spec.id_order != "asc":
            return
        state = self.get_context_state(context)
        value = latest_record.get(self.replication_key)
        if value is None or BACKFILL in state:
            return
        if self.spec.replication == "updated_at" and value > self._upper_bound:
            value = self._upper_bound
            latest_record = {**latest_record, self.replication_key: value}
        current = state.get("replication_key_value")
        if current is not None and value <= current:
            return
        super()._increment_stream_state(latest_record, context=context)

    @cached_property
    def _upper_bound(self) -> str:
        """The sync's upper bound as bookmarks hold it (formatted once, not per record)."""
        return utc_iso(self.site.sync_started_at)


__all__ = [
    "MaxioAPIError",
    "MaxioResponseError",
    "MaxioStream",
    "parse_timestamp",
    "utc_iso",
]
