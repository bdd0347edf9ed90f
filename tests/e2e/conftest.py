"""Fixtures of the designer's end-to-end tests: one api-server for the module, a dags folder with
the example notebooks and a writable workflows folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.airflow_server import AirflowServer, airflow_api_server
from repo_paths import REPO

STATIC = REPO / "src" / "airflow_mlplatform" / "plugin" / "static"


@pytest.fixture(scope="module", autouse=True)
def _fresh_dags_folder() -> None:
    """The e2e modules share the package's dags folder and api-server (below): the suite's
    per-module clean-up of the dags folder (tests/conftest.py) would delete what the package
    fixtures put there, so it is off in this package."""


@pytest.fixture(scope="package")
def designer_folder(dags_folder: Path) -> Path:
    """dags/designer_e2e/: the designer saves into its workflows/; notebooks are in dags/notebooks."""
    if (
        not (STATIC / "designer.js").is_file()
        or not (STATIC / "designer-standalone" / "index.html").is_file()
    ):
        pytest.fail("the designer's front end is not built: run `make ui` (npm ci + vite build)")
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)
    folder = dags_folder / "designer_e2e"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "workflows").mkdir(parents=True)
    return folder


@pytest.fixture(scope="package")
def designer_server(
    designer_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowServer]:
    with airflow_api_server(
        tmp_path_factory.mktemp("api-server"), workflows_folder=designer_folder / "workflows"
    ) as server:
        yield server
