"""Set the project up and run it, with nothing but Python 3.10+ (the Makefile calls this).

    python3 scripts/dev.py demo     # sandbox site -> meltano run -> DuckDB, counted
    python3 scripts/dev.py test     # lint, type-check and the whole test suite
    python3 scripts/dev.py install  # only .venv and the Meltano plugins
    python3 scripts/dev.py mutate   # mutation testing of the core modules (docs/mutation.md)
    python3 scripts/dev.py sites    # 20 sandbox sites -> Dagster, 4 at a time -> DuckDB, checked

Only the standard library is used here: this is what creates the environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "sandbox"
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
#: Written after `meltano install`, so that it runs again only when needed.
PLUGINS_STAMP = ROOT / ".meltano" / "installed"
#: Installed on demand, not in the dev extra: it brings libcst and textual, which
#: only this command needs. Pinned, so that the figures in docs/mutation.md repeat.
MUTMUT = "mutmut==3.8.1"
#: Wall-clock budget of one `mutate` run; about twice what a run takes here.
MUTATE_BUDGET = 30 * 60


def run(*args: str | Path) -> None:
    """Run a command in the project, echoing it; stop on failure."""
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def newer(target: Path, *sources: Path) -> bool:
    """Whether `target` exists and is newer than every source."""
    return target.exists() and all(target.stat().st_mtime >= s.stat().st_mtime for s in sources)


def install() -> None:
    """Create .venv with the tap, the sandbox, dev tools and Dagster, then the Meltano plugins.

    The sandbox is not in the dev extra: PyPI refuses a wheel whose metadata names a
    local path, and pip cannot install it both from that path and editable.
    """
    tap = BIN / "tap-maxio"
    if not newer(tap, ROOT / "pyproject.toml", SANDBOX / "pyproject.toml"):
        if not (BIN / "python").exists():
            run(sys.executable, "-m", "venv", VENV)
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        editable = ("-e", "./sandbox", "-e", ".[dev,orchestration]")
        run(BIN / "python", "-m", "pip", "install", "--quiet", *editable)
        tap.touch()
    if not newer(PLUGINS_STAMP, ROOT / "meltano.yml", tap):
        run(BIN / "meltano", "install")
        PLUGINS_STAMP.parent.mkdir(exist_ok=True)
        PLUGINS_STAMP.touch()


def lint() -> None:
    """Lint and format checks (ruff), and type checks (mypy)."""
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    packages = ("tap_maxio", "sandbox/maxio_sandbox", "orchestration", "scripts", "benchmarks")
    run(BIN / "mypy", *packages)


def mutate() -> None:
    """Mutation-test the modules [tool.mutmut] names, one worker, within a budget."""
    if not (BIN / "mutmut").exists():
        run(BIN / "python", "-m", "pip", "install", "--quiet", MUTMUT)
    # From scratch each time: mutmut keeps results across runs, and one kept from
    # before a test changed would be reported as if it were new.
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    command = [str(BIN / "mutmut"), "run", "--max-children", "1"]
    print("+", " ".join(command), flush=True)
    started = time.monotonic()
    # A session of its own, so that a run over budget is ended with its workers.
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    try:
        process.wait(timeout=MUTATE_BUDGET)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        print(f"mutate: over its budget of {MUTATE_BUDGET} s; partial results follow")
    minutes = (time.monotonic() - started) / 60
    results = subprocess.run(
        [BIN / "mutmut", "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    status = [line.rsplit(": ", 1) for line in results if ": " in line]
    for name, verdict in status:
        if verdict != "killed":
            print(f"{verdict:>12}  {name.strip()}")
    counts = Counter(verdict for _, verdict in status)
    print(f"mutants {len(status)}: " + ", ".join(f"{n} {v}" for v, n in counts.most_common()))
    print(f"mutate took {minutes:.1f} min; `.venv/bin/mutmut show NAME` shows a mutant")
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)


COMMANDS = {
    "install": [install],
    "lint": [install, lint],
    "demo": [install, lambda: run(BIN / "python", "scripts/demo.py")],
    "test": [install, lint, lambda: run(BIN / "python", "-m", "pytest", "-W", "error")],
    "mutate": [install, mutate],
    "sites": [install, lambda: run(BIN / "python", "scripts/sites.py")],
}


def main(argv: list[str]) -> int:
    """Run one command; the exit status is that of the step that failed."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this file runs before anything is installed
        print("tap-maxio needs Python 3.10 or newer", file=sys.stderr)
        return 1
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        for step in COMMANDS[argv[0]]:
            step()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
