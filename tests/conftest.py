"""Test set-up: a throw-away AIRFLOW_HOME with an SQLite DB and a dags folder.

Airflow reads its configuration once, at first import, so everything is set here,
before any test module imports airflow.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="mlplatform-airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
DAGS_FOLDER.mkdir()
OUTPUT_BASE = _HOME / "outputs"

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__MLPLATFORM__OUTPUT_BASE"] = str(OUTPUT_BASE)
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
os.environ["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
# Kernels started by papermill must find this environment's ipykernel first.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

import pytest  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the SQLite metadata DB once per session (about 2.5 s)."""
    from airflow.utils.db import initdb

    initdb()
    return _HOME


@pytest.fixture(scope="session")
def dags_folder(airflow_db: Path) -> Path:
    """The configured dags folder (``dag.test()`` syncs it before each run)."""
    return DAGS_FOLDER


@pytest.fixture(scope="module", autouse=True)
def _fresh_dags_folder() -> None:
    """Each test module starts with an empty dags folder.

    ``dag.test()`` parses every file in the dags folder before it runs, so the files that earlier
    modules left there made each run slower as the suite went on (and filled the logs with their
    import errors). Autouse module fixtures run before the module's own ones, so a module fixture
    that puts files there keeps them for the whole module.
    """
    for entry in DAGS_FOLDER.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def run_dag(dags_folder: Path):
    """Run a DAG file for real with ``dag.test()``; returns a ``testing.DagResult``.

    Usage: ``run_dag(path_or_source, dag_id, name="x.py", run_conf=None)``.
    """
    from airflow_mlplatform import testing

    def _run(source: str | Path, dag_id: str, *, name: str | None = None, **kwargs):
        return testing.run_dag_file(dags_folder, source, dag_id, name=name, **kwargs)

    return _run


def pytest_collection_modifyitems(config, items):
    """Modules with a test marked ``slow`` first, each module's tests kept together and in order:
    with ``pytest -n 2 --dist loadfile`` (``make test``) the long modules start at once and the
    short ones fill the other worker, instead of one long module running alone at the end."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


# The Kubernetes test bed's fixtures (emulator + fake kubelet): see tests/kube/fixtures.py.
from kube.fixtures import k8s, k8s_clean, k8s_kinds, kserve  # noqa: E402, F401
