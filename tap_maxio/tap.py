"""The tap: its settings, and the site-wide state its streams share."""

from __future__ import annotations

import sys
import typing as t
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cached_property

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from typing_extensions import override

from tap_maxio.ahead import ReadsAhead
from tap_maxio.auth import authenticator, install_redaction
from tap_maxio.declaration import DeclarationError
from tap_maxio.memory import collect_cycles_rarely, fix_mmap_threshold
from tap_maxio.output import Output
from tap_maxio.retries import Throttle
from tap_maxio.streams import stream_types
from tap_maxio.urls import Connection, SettingError, resolve

if t.TYPE_CHECKING:
    import logging

    import click
    from singer_sdk.authenticators import BasicAuthenticator

    from tap_maxio.client import MaxioStream

#: A decimal number written as text.
DECIMAL = r"^[0-9]+(\.[0-9]+)?$"


class TapMaxio(Tap):
    """Singer tap for Maxio Advanced Billing (formerly Chargify)."""

    name = "tap-maxio"
    package_name = "tap-maxio"
    message_writer_class = Output
    #: Whether this process runs the tap's CLI (see cli_process).
    in_cli: t.ClassVar[bool] = False

    config_jsonschema = th.PropertiesList(
        th.Property(
            "name",
            th.StringType,
            description="A label for this connection, shown in the User-Agent and logs.",
        ),
        th.Property(
            "subdomain",
            th.StringType,
            required=True,
            description=(
                "The site's subdomain: 'acme' for https://acme.chargify.com. A pasted "
                "site address is reduced to it."
            ),
            examples=["acme"],
        ),
        th.Property(
            "environment",
            th.StringType,
            description="Where the site is hosted: 'us' (the default) or 'eu'.",
            examples=["us", "eu"],
        ),
        th.Property(
            "server",
            th.StringType,
            description=(
                "'production' (the default) or 'ebb', or a label of Maxio's form: "
                "'Production (US)', 'Production (EU)', 'EBB (US)', 'EBB (EU)'. "
                "Reads always go to the production host."
            ),
            examples=["production", "ebb"],
        ),
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="The site's API key (Config > Integrations > API Keys in Maxio).",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Read nothing updated before this, on the first sync.",
        ),
        th.Property(
            "base_url",
            th.StringType,
            description=(
                "Override the site's URL, for a proxy or a local server; https unless "
                "the host is loopback."
            ),
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=200),
            default=200,
            description="Records per request (1-200).",
        ),
        th.Property(
            "request_timeout",
            th.IntegerType(minimum=1),
            default=120,
            description="Seconds before a request is abandoned and tried again.",
        ),
        th.Property(
            "max_concurrent_requests",
            th.IntegerType(minimum=1, maximum=16),
            default=4,
            description="Requests in flight at once for the site (Maxio allows 4).",
        ),
        th.Property(
            "max_retries",
            th.IntegerType(minimum=0),
            default=8,
            description="Retries of a request that failed for a transient reason.",
        ),
        th.Property(
            "retry_backoff",
            # Also as text: Meltano cannot pass a decimal set in the environment as a
            # number (its `kind: decimal` crashes writing the config), so it is a string.
            th.CustomType({"type": ["number", "string"], "minimum": 0, "pattern": DECIMAL}),
            default=1.0,
            description="Seconds before the first retry; each next wait doubles.",
        ),
        th.Property(
            "user_agent",
            th.StringType,
            description="A User-Agent to send instead of tap-maxio's own.",
        ),
        th.Property(
            "emit_activate_version_messages",
            th.BooleanType,
            default=False,
            description=(
                "After each complete read of a full-table stream, send ACTIVATE_VERSION, "
                "so that a loader that supports it drops the rows gone from Maxio."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, validate_config: bool = True, **kwargs: t.Any) -> None:
        """Check the connection settings before anything is sent."""
        super().__init__(*args, validate_config=validate_config, **kwargs)
        self._asking = False
        if self.in_cli:
            # The process is the tap's own: keep the key out of every library's log.
            install_redaction(str(self.config.get("api_key") or ""))
        if validate_config:
            _ = self.connection
            if self.connection.server == "ebb":
                self.logger.info(
                    "Server is EBB, which takes only event ingestion: reads go to %s",
                    self.connection.read_url,
                )

    def flush(self) -> None:
        """Write the records held for output (output.py)."""
        if isinstance(self.message_writer, Output):
            self.message_writer.flush()

    @cached_property
    def connection(self) -> Connection:
        """The site's resolved URLs."""
        try:
            return resolve(self.config)
        except SettingError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from None

    @cached_property
    def throttle(self) -> Throttle:
        """The site-wide cap on requests in flight, shared by every stream."""
        return Throttle(self.max_concurrent_requests)

    @cached_property
    def session(self) -> requests.Session:
        """The one session of the site's requests: its connections serve every stream."""
        session = requests.Session()
        if self.max_concurrent_requests > DEFAULT_POOLSIZE:
            # The default adapters keep 10: beyond, each connection returned is
            # dropped (with a warning) and another opened.
            adapter = HTTPAdapter(pool_maxsize=self.max_concurrent_requests)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        return session

    @cached_property
    def authenticator(self) -> BasicAuthenticator:
        """HTTP Basic with the API key."""
        return authenticator(str(self.config["api_key"]))

    @cached_property
    def user_agent(self) -> str:
        """The configured User-Agent, or the tap's name and version and the connection's name."""
        if self.config.get("user_agent"):
            return str(self.config["user_agent"])
        name = self.config.get("name")
        return f"tap-maxio/{self.plugin_version}" + (f" ({name})" if name else "")

    @cached_property
    def max_concurrent_requests(self) -> int:
        """Requests in flight at once for the site."""
        return int(self.config.get("max_concurrent_requests", 4))

    @cached_property
    def reads_ahead(self) -> ReadsAhead:
        """Streams read before their turn (ahead.py)."""
        return ReadsAhead()

    def ask_ahead(self) -> None:
        """As the sync starts, note each stream that may be read before its turn (ahead.py).

        With one request in flight there is no idle slot for them to fill.
        """
        if self._asking or self.reads_ahead.asked or self.max_concurrent_requests < 2:
            return
        self._asking = True  # a stream may ask the site's invoicing model: one request
        streams = t.cast("list[MaxioStream]", list(self.streams.values()))
        self.reads_ahead.ask({k: v for s in streams for k, v in s.reads_ahead().items()})

    @cached_property
    def sync_started_at(self) -> datetime:
        """The fixed upper bound of every window of this sync (its first read)."""
        return datetime.now(timezone.utc).replace(microsecond=0)

    @cached_property
    def invoicing(self) -> str:
        """The site's invoicing model: "relationship", or "legacy" statements."""
        site = t.cast("MaxioStream", self.streams["site"])
        records = site.read_once
        enabled = records[0].get("relationship_invoicing_enabled", True) if records else True
        return "relationship" if enabled else "legacy"

    @override
    def discover_streams(self) -> list[MaxioStream]:
        """Every stream declared in streams.toml."""
        return [stream_type(tap=self) for stream_type in stream_types()]

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the CLI, ending on one clear line when the API refuses for good."""
        with cli_process(cls):
            super().invoke(*args, **kwargs)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """`--test`: one record of each stream, with the same one-line errors."""
        with cli_process(cls):
            super().cb_test(ctx, param, value)

    @classmethod
    @override
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """`--discover`, with the same one-line errors (a bad streams.toml among them)."""
        with cli_process(cls):
            super().cb_discover(ctx, param, value)


@contextmanager
def cli_process(tap: type[TapMaxio]) -> t.Iterator[None]:
    """The CLI's process is the tap's own: tune it, and end it on one line.

    Nothing process-wide happens when a TapMaxio is built elsewhere (a test,
    a program that embeds the tap).
    """
    TapMaxio.in_cli = True
    fix_mmap_threshold()
    collect_cycles_rarely()
    with one_line_errors(tap.logger):
        yield


@contextmanager
def one_line_errors(logger: logging.Logger) -> t.Iterator[None]:
    """End the process on one line, no traceback, for errors the user must fix.

    The SDK would end a bad setting on "Config validation failed", and Meltano
    shows only the last line: each line here names the setting to fix.
    """
    try:
        yield
    except (FatalAPIError, DeclarationError) as exc:
        logger.error("%s", exc)
        sys.exit(1)
    except ConfigValidationError as exc:
        for error in exc.errors or [str(exc)]:
            logger.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    TapMaxio.cli()
