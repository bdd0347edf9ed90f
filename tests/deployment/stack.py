"""A real Airflow deployment on this machine: private PostgreSQL, api-server, scheduler,
dag-processor and triggerer as separate processes, LocalExecutor, the example DAGs.

Used by tests/deployment (one deployment per test session) and by
benchmarks/bench_deployment_latency.py. Every process runs in its own process group and is
stopped by :meth:`Deployment.stop` (the fixture's finalizer), also when a test fails.

PostgreSQL refuses to run as root: as root, the cluster is created and run as Debian's
``postgres`` user (created by the ``postgresql`` package), in a temporary folder it owns.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADMIN = ("admin", "admin-password")
#: Seconds one REST call may take (generous: CI machines are shared and slow).
REQUEST_TIMEOUT = 120
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class DeploymentError(RuntimeError):
    """The deployment could not be started (the message says which part and where its log is)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bindir() -> Path:
    """Debian's PostgreSQL binaries (``/usr/lib/postgresql/<version>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise DeploymentError(
        "PostgreSQL is not installed (initdb not found): run `make setup` (apt package postgresql)"
    )


def _stop_group(proc: subprocess.Popen, *, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc``, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # children may still run
            os.killpg(proc.pid, signal.SIGKILL)
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with contextlib.suppress(ProcessLookupError):  # what did not stop on SIGTERM
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 and a free port, in ``root``.

    :param root: an empty folder for the cluster, its socket and log.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.bindir = postgres_bindir()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.started = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the cluster's ``airflow`` database."""
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def _run(self, *args: str) -> None:
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
        )
        if proc.returncode:
            raise DeploymentError(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")

    def start(self) -> None:
        """initdb, start on 127.0.0.1 only (trust auth, no fsync), create database ``airflow``."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:  # the postgres user must reach its folder (mkdtemp makes 0700 folders)
            tmp = Path(tempfile.gettempdir()).resolve()
            for parent in self.root.resolve().parents:
                if parent == tmp or tmp not in parent.parents:
                    break
                os.chmod(parent, parent.stat().st_mode | 0o711)
            shutil.chown(self.root, self.user, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )
        self.started = True
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow", "airflow")

    def stop(self) -> None:
        """Stop the cluster (immediate mode: it is thrown away)."""
        if self.started:
            self.started = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except DeploymentError:
                pid_file = self.data / "postmaster.pid"
                if pid_file.exists():
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


class Deployment:
    """PostgreSQL + Airflow's four components with LocalExecutor, in ``root``.

    :param root: an empty folder (AIRFLOW_HOME, the cluster, logs).
    :param env: extra environment variables for every Airflow process (connections, config).
    """

    def __init__(self, root: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.home = root / "airflow"
        self.dags = self.home / "dags"
        self.outputs = self.home / "outputs"
        self.logs = root / "process-logs"
        self.postgres = Postgres(root / "pg")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.extra_env = dict(env or {})
        self.jwt_secret = secrets.token_hex(32)  # one for all components: they verify each other's tokens
        self.log_ports = (free_port(), free_port())
        self._token: str | None = None

    # --- set-up -------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The environment every Airflow process of this deployment runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_ports[0]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_ports[1]),
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__MLPLATFORM__OUTPUT_BASE": str(self.outputs),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
            }
        )
        env.update(self.extra_env)
        return env

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run an ``airflow`` CLI command to completion; its output."""
        proc = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if proc.returncode:
            raise DeploymentError(f"airflow {' '.join(args)} failed: {(proc.stdout + proc.stderr)[-3000:]}")
        return proc.stdout

    def start(self, *, copy_examples: bool = True) -> None:
        """Create the cluster, migrate, copy the example DAGs, start the four components."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN[0]: ADMIN[1]}))
        if copy_examples:  # what the README tells a new user to do
            shutil.copytree(REPO / "example_dags", self.dags)
        self.dags.mkdir(parents=True, exist_ok=True)
        self.postgres.start()
        self.airflow("db", "migrate")
        for name in COMPONENTS:
            self.processes[name] = subprocess.Popen(
                [str(BIN / "airflow"), name],
                env=self.environment(),
                stdout=(self.logs / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,  # its own process group: stopped with everything it started
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 420) -> None:
        """Until the api-server answers and the scheduler, dag-processor and triggerer are healthy."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise DeploymentError(f"{name} exited ({proc.returncode}): {self.log_tail(name)}")
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=10).json()
                states = {k: (v or {}).get("status") for k, v in health.items()}
                last = json.dumps(states)
                if {states.get(k) for k in ("metadatabase", "scheduler", "triggerer", "dag_processor")} == {
                    "healthy"
                }:
                    break
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise DeploymentError(f"the deployment did not become healthy in {timeout}s: {last}")
            time.sleep(1)
        # The first call to the execution API builds its versioned app and blocks the
        # api-server's event loop (a minute on a loaded machine): a task's first call would
        # then time out and the task be failed. Pay that here, before any task runs.
        try:
            requests.get(f"{self.url}/execution/health", timeout=max(deadline - time.monotonic(), 120))
        except requests.RequestException as e:
            raise DeploymentError(f"the api-server's execution API did not answer: {e}") from e

    def log_tail(self, name: str, chars: int = 3000) -> str:
        """The end of a component's log."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop every process this deployment started (each one's whole process group), then PostgreSQL."""
        for name in reversed(list(self.processes)):
            _stop_group(self.processes.pop(name))
        self.postgres.stop()

    # --- REST API ----------------------------------------------------------
    def token(self, username: str = ADMIN[0], password: str = ADMIN[1]) -> str:
        """A JWT from ``POST /auth/token`` (the simple auth manager)."""
        resp = requests.post(
            f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def api(self, method: str, path: str, *, expect: int | tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        """One REST call as the admin user; the JSON body (``expect``: the accepted status codes)."""
        if self._token is None:
            self._token = self.token()
        resp = requests.request(
            method,
            f"{self.url}{path}",
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=REQUEST_TIMEOUT,
            **kwargs,
        )
        accepted = (expect,) if isinstance(expect, int) else expect
        if resp.status_code not in accepted:
            raise AssertionError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:1000]}")
        return resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else resp

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed ``dag_id`` (it is in the REST API)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api("GET", f"/api/v2/dags/{dag_id}", expect=(200, 404)).get("dag_id") == dag_id:
                return
            time.sleep(1)
        errors = self.api("GET", "/api/v2/importErrors")
        raise AssertionError(f"DAG {dag_id} not parsed in {timeout}s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """``POST .../dagRuns`` (unpausing the DAG first); the new run's id."""
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        run = self.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        """Until the run is no longer queued/running; its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state not in ("queued", "running"):
                return str(state)
            time.sleep(1)
        raise AssertionError(
            f"{dag_id} {run_id} still running after {timeout}s: {self.task_states(dag_id, run_id)}"
        )

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """``GET .../taskInstances/{task_id}``."""
        return dict(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Every task's state in a run."""
        body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task try's log as the UI shows it (worker and triggerer parts)."""
        body = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true"},
        )
        content = body.get("content", "") if isinstance(body, dict) else body.text
        if isinstance(content, list):
            return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)
