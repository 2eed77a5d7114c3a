"""meltano.yml and the Hub definition describe the tap's own settings, and the
README shows the tap's own settings table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tap_maxio.tap import TapMaxio

ROOT = Path(__file__).resolve().parent.parent


def _own_settings() -> dict:
    """The tap's own settings, without those the SDK appends (stream maps...)."""
    builtin: dict = {"properties": {}}
    TapMaxio.append_builtin_config(builtin)
    properties = TapMaxio.config_jsonschema["properties"]
    return {k: v for k, v in properties.items() if k not in builtin["properties"]}


SCHEMA = _own_settings()


def hub() -> dict:
    return yaml.safe_load((ROOT / "hub" / "tap-maxio.yml").read_text())


def meltano_extractor() -> dict:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-maxio")


@pytest.mark.parametrize("definition", [hub, meltano_extractor])
def test_settings_match_the_config_schema(definition):
    settings = {s["name"]: s for s in definition()["settings"]}
    assert set(settings) == set(SCHEMA)
    for name, prop in SCHEMA.items():
        assert bool(settings[name].get("sensitive")) == bool(prop.get("secret")), name
        if "default" in prop:
            assert settings[name].get("value") == prop["default"], name


def test_hub_definition_has_what_the_hub_requires():
    plugin = hub()
    for key in ("name", "namespace", "variant", "pip_url", "capabilities", "settings", "keywords"):
        assert plugin[key], key
    assert "meltano_sdk" in plugin["keywords"]
    assert plugin["namespace"] == meltano_extractor()["namespace"] == "tap_maxio"
    assert plugin["settings_group_validation"] == [TapMaxio.config_jsonschema["required"]]
    options = {s["name"]: [o["value"] for o in s.get("options", [])] for s in plugin["settings"]}
    assert options["environment"] == ["us", "eu"]
    assert options["server"] == ["production", "ebb"]


def test_readme_settings_table_is_the_about_output():
    about = subprocess.run(
        [sys.executable, "-m", "tap_maxio", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    readme = (ROOT / "README.md").read_text()
    for name in SCHEMA:
        line = next(row for row in about.splitlines() if row.startswith(f"| {name} |"))
        assert line in readme, f"README's settings table differs for {name}"


def test_the_loaders_folders_come_with_a_clone():
    """target-duckdb cannot create the folder of its file: a fresh clone has it."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    paths = [
        loader["config"].get("filepath") or loader["config"].get("destination_path")
        for loader in project["plugins"]["loaders"]
        if "filepath" in loader.get("config", {}) or "destination_path" in loader.get("config", {})
    ]
    assert paths
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for path in paths:
        folder = Path(path) if "." not in Path(path).name else Path(path).parent
        assert any(Path(f).parent == folder for f in tracked), f"{folder}/ is not in the repository"
