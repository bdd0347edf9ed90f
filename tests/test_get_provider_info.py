"""Provider metadata lives in one place; prove the package and Airflow agree with it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

import tomllib

from airflow_mlplatform import __version__
from airflow_mlplatform.get_provider_info import PACKAGE_NAME, get_provider_info
from repo_paths import REPO


def _import(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_versions_and_names_agree():
    info = get_provider_info()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert info["package-name"] == PACKAGE_NAME == pyproject["name"]
    assert info["versions"][0] == __version__ == pyproject["version"] == metadata.version(PACKAGE_NAME)


def test_entry_point_is_registered():
    eps = [
        ep
        for ep in metadata.entry_points(group="apache_airflow_provider")
        if ep.dist and ep.dist.name == PACKAGE_NAME
    ]
    assert len(eps) == 1
    assert eps[0].load() is get_provider_info


def test_every_listed_module_and_class_exists():
    info = get_provider_info()
    for section in ("operators", "sensors", "hooks", "triggers"):
        for entry in info.get(section, []):
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info.get("extra-links", []):
        _import(link)
    integrations = {i["integration-name"] for i in info["integrations"]}
    for section in ("operators", "sensors", "hooks", "triggers"):
        for entry in info.get(section, []):
            assert entry["integration-name"] in integrations


def test_connection_types_match_their_hooks():
    for conn in get_provider_info().get("connection-types", []):
        hook = _import(conn["hook-class-name"])
        assert hook.conn_type == conn["connection-type"]


def test_every_operator_module_is_listed():
    info = get_provider_info()
    listed = {m for e in info.get("operators", []) for m in e["python-modules"]}
    package = REPO / "src" / "airflow_mlplatform" / "operators"
    present = {
        f"airflow_mlplatform.operators.{p.stem}" for p in package.glob("*.py") if not p.stem.startswith("_")
    }
    assert present <= listed, f"operator modules missing from get_provider_info: {sorted(present - listed)}"


def test_airflow_lists_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "get", PACKAGE_NAME, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert PACKAGE_NAME in out.stdout and __version__ in out.stdout
