"""Resolve the connection settings into the site's base URLs.

A pure function of the settings: no I/O, no logging. Every value is checked
against an allow-list, so that no setting can point the API key at a host other
than the site's own Maxio host.
"""

from __future__ import annotations

import ipaddress
import re
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

ENVIRONMENTS = ("us", "eu")
SERVERS = ("production", "ebb")

# Production hosts per environment; EBB (event ingestion) is one host for both.
PRODUCTION_HOSTS = {"us": "chargify.com", "eu": "ebilling.maxio.com"}
EBB_HOST = "events.chargify.com"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SCHEME = r"(?:https?://)?"
_PASTED = (
    (re.compile(rf"{_SCHEME}({_LABEL})\.chargify\.com/?"), "us"),
    (re.compile(rf"{_SCHEME}({_LABEL})\.ebilling\.maxio\.com/?"), "eu"),
    (re.compile(rf"{_SCHEME}events\.chargify\.com/({_LABEL})/?"), None),
    (re.compile(rf"({_LABEL})"), None),
)
# The labels of Maxio's connection form, e.g. "Production (EU)".
_SERVER_LABEL = re.compile(r"(production|ebb)\s*\((us|eu)\)")


class SettingError(ValueError):
    """A setting whose value cannot be used; the message names the setting."""

    def __init__(self, setting: str, message: str) -> None:
        """Remember which setting is wrong."""
        super().__init__(f"Setting '{setting}': {message}")
        self.setting = setting


@dataclass(frozen=True)
class Connection:
    """Where the tap reads from, resolved from the settings."""

    subdomain: str
    environment: str
    server: str
    #: Base URL of every read (GET): the production host of the environment.
    read_url: str
    #: Base URL of the chosen server variant (EBB takes event-ingestion POSTs only).
    server_url: str


def normalize_subdomain(value: object) -> tuple[str, str | None]:
    """Return the subdomain and the region a pasted site address implies."""
    if not isinstance(value, str) or not value.strip():
        raise SettingError("subdomain", "is required, e.g. 'acme' for acme.chargify.com")
    text = value.strip().lower()
    for pattern, region in _PASTED:
        match = pattern.fullmatch(text)
        if match:
            return match.group(1), region
    raise SettingError(
        "subdomain",
        f"{_shown(value)} is not a Maxio site subdomain; use the part before "
        "'.chargify.com' (letters, digits and '-'), e.g. 'acme'",
    )


def normalize_server(value: object) -> tuple[str | None, str | None]:
    """Return the server and the region a form label implies (None when unset)."""
    if value is None or value == "":
        return None, None
    text = str(value).strip().lower()
    if text in SERVERS:
        return text, None
    match = _SERVER_LABEL.fullmatch(text)
    if match:
        return match.group(1), match.group(2)
    raise SettingError(
        "server",
        f"{_shown(value)} is not one of 'production', 'ebb', 'Production (US)', "
        "'Production (EU)', 'EBB (US)', 'EBB (EU)'",
    )


def normalize_environment(value: object) -> str | None:
    """Return 'us' or 'eu' (None when unset)."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text not in ENVIRONMENTS:
        raise SettingError("environment", f"{_shown(value)} is not 'us' or 'eu'")
    return text


def check_base_url(value: str) -> str:
    """Return the override without a trailing slash; https unless loopback."""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
        host = ""
    if (
        parts.scheme not in {"http", "https"}
        or not host
        or parts.username is not None
        or parts.password is not None
        or parts.query
        or parts.fragment
        or (parts.port is None and ":" in parts.netloc.rsplit("]", 1)[-1])
        or re.search(r"[\s%\\]", value.strip())
    ):
        raise SettingError(
            "base_url",
            f"{_shown(value)} is not a plain URL like https://proxy.example.com",
        )
    if parts.scheme != "https" and not _is_loopback(host):
        raise SettingError("base_url", "must use https unless its host is loopback")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def resolve(config: t.Mapping[str, t.Any]) -> Connection:
    """Resolve the settings into base URLs, or raise a SettingError."""
    subdomain, pasted_region = normalize_subdomain(config.get("subdomain"))
    server, label_region = normalize_server(config.get("server"))
    environment = normalize_environment(config.get("environment"))

    implied = {r for r in (pasted_region, label_region) if r}
    if environment is None and len(implied) == 1:
        environment = implied.pop()
    environment = environment or "us"
    if label_region and label_region != environment:
        raise SettingError(
            "server",
            f"{_shown(config.get('server'))} is a {label_region.upper()} server but "
            f"environment is '{environment}'",
        )
    if pasted_region and pasted_region != environment:
        raise SettingError(
            "environment",
            f"is '{environment}' but subdomain {_shown(config.get('subdomain'))} "
            f"is a {pasted_region.upper()} site address; set environment to "
            f"'{pasted_region}'",
        )
    server = server or "production"

    read_url = f"https://{subdomain}.{PRODUCTION_HOSTS[environment]}"
    server_url = read_url if server == "production" else f"https://{EBB_HOST}/{subdomain}"
    if config.get("base_url"):
        read_url = server_url = check_base_url(str(config["base_url"]))
    return Connection(subdomain, environment, server, read_url, server_url)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(value: object) -> str:
    """Quote a user's value for an error line, escaping control characters."""
    return repr(str(value))[:80]
