"""The plugin's test bed: Airflow's real api-server app (``create_app``) with the simple auth
manager and two configured users, ``admin`` (role admin) and ``viewer`` (role viewer).

Every option the api-server reads per request is set as an environment variable before the
app is created; the plugin is loaded by Airflow's plugin manager from its entry point.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from plugin_users import PASSWORDS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def auth_env(airflow_db: Path) -> dict[str, str]:
    """Simple auth manager users and passwords, a JWT secret; the designer's folders."""
    import os

    home = airflow_db
    pw = home / "simple_auth_passwords.json"
    pw.write_text(json.dumps(PASSWORDS))
    env = {
        # the simple auth manager, with per-DAG denials a test can ask for (scoped_auth.py)
        "AIRFLOW__CORE__AUTH_MANAGER": "scoped_auth.DagScopedSimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "designer-tests-" + "s" * 64,
        "AIRFLOW__API__SECRET_KEY": "designer-tests-secret-key",
    }
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def api_app(auth_env):
    """Airflow's api-server app, plugins mounted the way the api-server mounts them."""
    from airflow.api_fastapi.app import create_app

    return create_app()


@pytest.fixture(scope="session")
def client(api_app):
    """A TestClient over the api-server app."""
    from fastapi.testclient import TestClient

    with TestClient(api_app) as c:
        yield c


@pytest.fixture(scope="session")
def tokens(client) -> dict[str, str]:
    """A real JWT per user, from ``POST /auth/token``."""
    out = {}
    for user, password in PASSWORDS.items():
        r = client.post("/auth/token", json={"username": user, "password": password})
        assert r.status_code in (200, 201), r.text
        out[user] = r.json()["access_token"]
    return out


@pytest.fixture
def as_admin(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['admin']}"}


@pytest.fixture
def as_viewer(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['viewer']}"}


@pytest.fixture
def designer_dirs(tmp_path, monkeypatch) -> dict[str, Path]:
    """A project folder (notebooks + R) as the designer root and an empty workflows folder,
    set through ``[mlplatform]`` options."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "example_dags" / "notebooks", root / "notebooks")
    shutil.copytree(REPO / "example_dags" / "r", root / "r")
    workflows = root / "workflows"
    workflows.mkdir()
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__DESIGNER_ROOTS", str(root))
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__WORKFLOWS_FOLDER", str(workflows))
    return {"root": root, "workflows": workflows}
