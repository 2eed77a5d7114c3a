"""Run `meltano run` for one site, and read its log as it goes.

Meltano writes one JSON object a line (`--log-format=json`); the tap's own lines come
through it, the SDK's record counters (`METRIC: {...}`) among them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing as t
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: The tap's one line for a 401 or 403 (tap_maxio/client.py): retrying cannot help.
REFUSED = "refused the API key"
METRIC = "METRIC: "


def meltano_executable() -> str:
    """The meltano of this environment, else the first on PATH."""
    return shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"


@dataclass
class Outcome:
    """What one `meltano run` did."""

    returncode: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    """Records the extractor emitted, per stream."""
    error: str = ""
    """On failure: Meltano's reason, and the last line of the plugin that failed."""

    @property
    def refused(self) -> bool:
        """Whether the site refused the key: a failure that no retry can mend."""
        return REFUSED in self.error


class LogReader:
    """Reads Meltano's JSON log: record counts, a line per finished stream, the error."""

    def __init__(self, extractor: str, loader: str, say: t.Callable[[str], None]) -> None:
        """Read the log of `meltano run EXTRACTOR LOADER`, telling `say` what matters."""
        self.extractor = extractor
        self.plugins = {"extractor": extractor, "loader": loader}
        self.say = say
        self.outcome = Outcome()
        self.last_line: dict[str, str] = {}
        self.last_error = ""
        self.finishing: set[str] = set()

    def feed(self, line: str) -> None:
        """Take one line of the log."""
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"event": line.strip()}
        if not isinstance(entry, dict):
            return
        event = str(entry.get("event", ""))
        plugin = str(entry.get("name", ""))
        if event.startswith(METRIC):
            if plugin == self.extractor:
                self.metric(event[len(METRIC) :])
            return
        if plugin and event:
            self.last_line[plugin] = event
        level = entry.get("level")
        if entry.get("err"):
            self.outcome.error = self.reason(str(entry["err"]))
        elif level in ("error", "critical"):
            self.last_error = event
        if level in ("warning", "error", "critical") and plugin:
            self.say(f"{plugin}: {event}")

    def reason(self, err: str) -> str:
        """Meltano's error ("Extractor failed"), with that plugin's last line: its cause."""
        role = err.split(maxsplit=1)[0].lower() if err else ""
        culprit = self.last_line.get(self.plugins.get(role, ""))
        return f"{err}: {culprit}" if culprit else err

    def metric(self, body: str) -> None:
        """Take one of the SDK's metrics: record counts add up; a duration ends a stream."""
        try:
            metric = json.loads(body)
            tags = metric.get("tags", {})
            stream = tags["stream"]
        except (ValueError, KeyError, AttributeError, TypeError):
            return
        if metric.get("metric") == "record_count":
            # The SDK's counters restart at each report: the total is their sum.
            self.outcome.rows[stream] += int(metric.get("value", 0))
            # A stream's last count follows its duration: the stream is done.
            if stream in self.finishing and not tags.get("context"):
                self.finishing.discard(stream)
                self.say(f"{stream}: {self.outcome.rows[stream]} rows")
        elif metric.get("metric") == "sync_duration" and not tags.get("context"):
            self.finishing.add(stream)


def run_meltano(
    project: Path,
    extractor: str,
    loader: str,
    say: t.Callable[[str], None],
    *,
    secret: str = "",
) -> Outcome:
    """`meltano run EXTRACTOR LOADER` in `project`; every line said has `secret` masked."""

    def masked(text: str) -> None:
        say(text.replace(secret, "********") if secret else text)

    reader = LogReader(extractor, loader, masked)
    command = [meltano_executable(), "--log-format=json", "run", extractor, loader]
    with subprocess.Popen(  # noqa: S603 - a fixed command; names come from the checked site list
        command,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            reader.feed(line)
    reader.outcome.returncode = process.returncode
    if process.returncode and not reader.outcome.error:
        reader.outcome.error = reader.last_error or f"meltano exited with {process.returncode}"
    if secret:
        reader.outcome.error = reader.outcome.error.replace(secret, "********")
    return reader.outcome
