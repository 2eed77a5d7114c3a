"""The list of sites, as data: read and checked from TOML, written out as Meltano plugins.

    python -m orchestration.sites [SITES_TOML]   # writes <stem>.meltano.yml beside it

Each site becomes one extractor, `tap-maxio-<name>`, that inherits from `tap-maxio`: its
own settings, its own API key variable, its own schema and so its own Meltano state ID.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
#: The project's own list: the US and EU example of the README.
DEFAULT_SITES = HERE / "sites.toml"
NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")
VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
#: Settings of tap-maxio a site may set; everything else comes from the parent plugin.
TAP_SETTINGS = ("subdomain", "environment", "server", "base_url", "start_date")
LIST_SETTINGS = {"loader", "max_parallel", "retries", "retry_delay", "cron", "sites"}


class SitesError(ValueError):
    """A list of sites that cannot be used; the message is one line naming the setting."""


@dataclass(frozen=True)
class Site:
    """One Maxio site, and the names derived from it."""

    name: str
    subdomain: str
    api_key_env: str
    settings: dict[str, str]
    """tap-maxio settings of this site: subdomain, environment, server, base_url..."""

    @property
    def extractor(self) -> str:
        """The Meltano extractor of the site."""
        return f"tap-maxio-{self.name}"

    @property
    def ident(self) -> str:
        """The site's name as an identifier: its schema and its Dagster asset."""
        return "maxio_" + self.name.replace("-", "_")


@dataclass(frozen=True)
class SiteList:
    """The sites, and how Dagster runs them."""

    sites: tuple[Site, ...]
    loader: str = "target-duckdb-per-site"
    max_parallel: int = 4
    """Sites synced at once; each holds up to 4 requests in flight to its own site."""
    retries: int = 2
    retry_delay: float = 30.0
    cron: str = "0 * * * *"


def _string(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SitesError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


def _number(where: str, key: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise SitesError(f"{where}: '{key}' must be a number of at least {minimum:g}")
    return value


def parse_site(where: str, entry: object) -> Site:
    """One [[sites]] entry, checked."""
    if not isinstance(entry, dict):
        raise SitesError(f"{where}: a site must be a table ([[sites]])")
    unknown = set(entry) - {"name", "api_key_env", *TAP_SETTINGS}
    if unknown:
        raise SitesError(f"{where}: unknown setting '{sorted(unknown)[0]}'")
    name = _string(where, "name", entry.get("name"))
    if not NAME.fullmatch(name):
        raise SitesError(
            f"{where}: 'name' {name!r} must be lower-case letters, digits and '-', "
            "starting with a letter"
        )
    where = f"{where} ({name})"
    settings = {key: _string(where, key, entry[key]) for key in TAP_SETTINGS if key in entry}
    if "subdomain" not in settings:
        raise SitesError(f"{where}: 'subdomain' is required")
    if settings.get("environment", "us").lower() not in ("us", "eu"):
        raise SitesError(f"{where}: 'environment' must be 'us' or 'eu'")
    default_variable = "MAXIO_API_KEY_" + name.upper().replace("-", "_")
    variable = _string(where, "api_key_env", entry.get("api_key_env", default_variable))
    if not VARIABLE.fullmatch(variable):
        raise SitesError(f"{where}: 'api_key_env' {variable!r} is not an environment variable name")
    return Site(name, settings["subdomain"], variable, settings)


def parse_sites(data: dict, source: str = "sites.toml") -> SiteList:
    """A whole list, checked: every error names the file, the site and the setting."""
    unknown = set(data) - LIST_SETTINGS
    if unknown:
        raise SitesError(f"{source}: unknown setting '{sorted(unknown)[0]}'")
    entries = data.get("sites")
    if not isinstance(entries, list) or not entries:
        raise SitesError(f"{source}: 'sites' must list at least one [[sites]] table")
    sites = tuple(parse_site(f"{source}: site {i + 1}", e) for i, e in enumerate(entries))
    for kind, names in (
        ("name", [s.name for s in sites]),
        ("api_key_env", [s.api_key_env for s in sites]),
    ):
        seen = {n for n in names if names.count(n) > 1}
        if seen:
            # Two sites under one extractor would share one state, and one key.
            raise SitesError(f"{source}: two sites have the {kind} {sorted(seen)[0]!r}")
    defaults = SiteList(sites)
    return SiteList(
        sites,
        loader=_string(source, "loader", data.get("loader", defaults.loader)),
        max_parallel=int(
            _number(source, "max_parallel", data.get("max_parallel", defaults.max_parallel), 1)
        ),
        retries=int(_number(source, "retries", data.get("retries", defaults.retries), 0)),
        retry_delay=float(
            _number(source, "retry_delay", data.get("retry_delay", defaults.retry_delay), 0)
        ),
        cron=_string(source, "cron", data.get("cron", defaults.cron)),
    )


def load_sites(path: Path = DEFAULT_SITES) -> SiteList:
    """Read and check a sites file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SitesError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SitesError(f"{path}: not TOML: {exc}") from None
    return parse_sites(data, path.name)


def meltano_plugins(site_list: SiteList, source: str = "sites.toml") -> str:
    """The Meltano include file that declares one inherited extractor per site.

    Values are written as JSON strings, which YAML reads as they are.
    """
    lines = [
        f"# Written by `python -m orchestration.sites` from {source}: edit that, not this.",
        "# One extractor per site: its own settings, API key variable, schema and state ID.",
        "plugins:",
        "  extractors:",
    ]
    for site in site_list.sites:
        lines += [
            f"    - name: {site.extractor}",
            "      inherit_from: tap-maxio",
            f"      load_schema: {site.ident}",
            "      config:",
            f"        name: {json.dumps(site.name)}",
            *(f"        {key}: {json.dumps(value)}" for key, value in site.settings.items()),
            # A reference, expanded by Meltano when it runs: the key is never in a file.
            f"        api_key: {json.dumps('$' + site.api_key_env)}",
        ]
    return "\n".join(lines) + "\n"


def plugins_path(sites_path: Path) -> Path:
    """Where the plugins of a sites file are written: `sites.toml` -> `sites.meltano.yml`."""
    return sites_path.with_name(sites_path.stem + ".meltano.yml")


def main(argv: list[str]) -> int:
    """Write the Meltano plugins of a sites file beside it."""
    path = Path(argv[0]) if argv else DEFAULT_SITES
    try:
        site_list = load_sites(path)
    except SitesError as exc:
        print(exc, file=sys.stderr)
        return 1
    target = plugins_path(path)
    target.write_text(meltano_plugins(site_list, path.name), encoding="utf-8")
    print(f"{target}: {len(site_list.sites)} extractors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
