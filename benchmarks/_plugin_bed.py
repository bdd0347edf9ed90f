"""Shared set-up of the plugin benchmarks: a throw-away AIRFLOW_HOME, the simple auth manager
with an ``admin`` user, Airflow's api-server app (the plugin mounted from its entry point) in a
TestClient, and a bearer token from ``POST /auth/token``. Import it before anything imports
airflow."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

HOME = Path(tempfile.mkdtemp(prefix="mlplatform-bench-plugin-"))
(HOME / "dags").mkdir()
(HOME / "passwords.json").write_text(json.dumps({"admin": "admin"}))
os.environ.update(
    AIRFLOW_HOME=str(HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(HOME / "dags"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(HOME / "passwords.json"),
    AIRFLOW__API_AUTH__JWT_SECRET="bench-" + "x" * 64,
    AIRFLOW__MLPLATFORM__OUTPUT_BASE=str(HOME / "outputs"),
    AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
)


def client() -> tuple[Any, dict[str, str]]:
    """(TestClient over the api-server app, auth headers of admin)."""
    import logging

    from airflow.utils.db import initdb

    initdb()
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    logging.getLogger("http.access").setLevel(logging.WARNING)
    c = TestClient(create_app())
    token = c.post("/auth/token", json={"username": "admin", "password": "admin"}).json()["access_token"]
    return c, {"Authorization": f"Bearer {token}"}
