"""The plugin loads through its entry point into a real ``airflow api-server`` process: its
routes answer there, behind the api-server's own login (a token from ``POST /auth/token``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from plugin_users import PASSWORDS

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_server(auth_env, designer_dirs, tmp_path):
    port = _free_port()
    env = {**os.environ, **auth_env, "AIRFLOW__CORE__AUTH_MANAGER":
           "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"}  # fmt: skip
    env.pop("PYTEST_CURRENT_TEST", None)
    log = (tmp_path / "api-server.log").open("wb")
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.Popen(
        [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    "api-server exited:\n" + (tmp_path / "api-server.log").read_text()[-3000:]
                )
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "api-server not up in 240 s:\n" + (tmp_path / "api-server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_plugin_routes_in_a_real_api_server(api_server):
    with httpx.Client(base_url=api_server, timeout=30) as c:
        assert c.get("/mlplatform/api/me").status_code == 401
        token = c.post("/auth/token", json={"username": "viewer", "password": PASSWORDS["viewer"]}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        assert c.get("/mlplatform/api/me", headers=auth).json() == {"user": "viewer", "can_edit": False}
        files = c.get("/mlplatform/api/designer/catalog", headers=auth).json()["files"]
        assert "notebooks/train.ipynb" in [f["path"] for f in files]
        doc = {"version": 1, "id": "srv", "steps": [{"id": "a", "type": "bash", "command": "echo"}]}
        put = c.put("/mlplatform/api/designer/workflows/srv.yaml", json={"document": doc}, headers=auth)
        assert put.status_code == 403
        # the plugin is registered with its react app (Airflow's UI builds its navigation from this)
        plugins = c.get("/api/v2/plugins", headers=auth).json()["plugins"]
        ours = next(p for p in plugins if p["name"] == "mlplatform")
        assert ours["react_apps"][0]["url_route"] == "workflow-designer"
        assert ours["react_apps"][0]["bundle_url"].endswith("/mlplatform/static/designer.js")
