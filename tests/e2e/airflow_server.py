"""A real ``airflow api-server`` on a free loopback port, with the simple auth manager and users
``admin`` (may edit) and ``viewer`` (may read): the designer's end-to-end test bed.

Used by tests/e2e/ and benchmarks/bench_designer_ui.py. The server shares the caller's
AIRFLOW_HOME, metadata DB and dags folder (tests/conftest.py sets them up).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

USERS = {"admin": "admin", "viewer": "viewer"}  # name -> role


@dataclass
class AirflowServer:
    """A running api-server.

    :param url: its base URL, ``http://127.0.0.1:PORT``.
    :param passwords: user name -> password.
    :param log: the server's stdout/stderr file.
    """

    url: str
    passwords: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def free_port() -> int:
    """A port nobody listens on now (bind port 0, as the tests must)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(server: AirflowServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"airflow api-server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}/api/v2/monitor/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"airflow api-server not healthy after {timeout:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def airflow_api_server(
    home: Path, *, workflows_folder: Path, extra_env: dict[str, str] | None = None, timeout: float = 420
) -> Iterator[AirflowServer]:
    """Start ``airflow api-server`` (one worker) and stop it (its whole process group) afterwards.

    :param home: a folder for the passwords file and the server log.
    :param workflows_folder: ``[mlplatform] workflows_folder``, where the designer saves.
    :param extra_env: more environment (``AIRFLOW__MLPLATFORM__DESIGNER_MODE``...).
    :param timeout: seconds to wait for the health endpoint.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    passwords = {name: f"{name}-{secrets.token_hex(4)}" for name in USERS}
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API__BASE_URL": f"{url}/",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__MLPLATFORM__WORKFLOWS_FOLDER": str(workflows_folder),
        **(extra_env or {}),
    }
    log = home / f"api-server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "airflow"),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AirflowServer(url=url, passwords=passwords, log=log, process=process)
    try:
        _wait_healthy(server, timeout)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
