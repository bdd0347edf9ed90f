"""RapidsDaskOperator on a real dask-gateway server (UnsafeLocalBackend on 127.0.0.1): a cluster the
task creates is shut down (success, failure, kill); a named existing cluster is used and left running;
bad credentials, an unknown cluster name, an unreachable gateway are clear errors before anything is
created; the token never reaches the log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")
pytest.importorskip("dask_gateway", reason="dask-gateway is not installed")
pytest.importorskip("dask_gateway_server", reason="dask-gateway-server is not installed")

from dask_gateway import BasicAuth, Gateway

from airflow_mlplatform.exceptions import ConfigurationError, DaskSchedulerUnreachableError
from airflow_mlplatform.hooks.dask import close_gateway_client
from airflow_mlplatform.operators.rapids import RapidsDaskOperator

USER = "alice"
SECRET = "gw-s3cret-token-7c1e"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, address: str, process: subprocess.Popen) -> None:
        self.address = address
        self.process = process

    def gateway(self, password: str = SECRET):
        return Gateway(self.address, auth=BasicAuth(USER, password))

    def cluster_names(self) -> list[str]:
        gateway = self.gateway()
        try:
            return [c.name for c in gateway.list_clusters()]
        finally:
            close_gateway_client(gateway)

    def dask_processes(self) -> list:
        """Schedulers and workers the gateway's local backend runs now."""
        import psutil

        found = []
        for p in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if p.status() != psutil.STATUS_ZOMBIE and {"scheduler", "worker"} & set(p.cmdline()):
                    found.append(p)
            except psutil.NoSuchProcess:
                continue
        return found

    def wait_no_clusters(self, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.cluster_names() and not self.dask_processes():
                return True
            time.sleep(0.2)
        return False


@pytest.fixture(scope="module")
def gateway_server(tmp_path_factory):
    """A dask-gateway-server on 127.0.0.1 with the local backend and a shared password (basic auth)."""
    folder = tmp_path_factory.mktemp("gateway")
    api, proxy = _free_port(), _free_port()
    dask = Path(sys.executable).parent / "dask"
    (folder / "config.py").write_text(
        f"""
c.DaskGateway.address = "127.0.0.1:{api}"
c.Proxy.address = "127.0.0.1:{proxy}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {SECRET!r}
c.UnsafeLocalBackend.clusters_directory = {str(folder / "clusters")!r}
c.UnsafeLocalBackend.cluster_heartbeat_period = 1
# The scheduler's heartbeat is late on a loaded machine (3.4 s seen); the default timeout (2 periods)
# then stops a running cluster under the task: "scheduler-connection-lost" in the middle of a compute.
c.UnsafeLocalBackend.cluster_heartbeat_timeout = 60
c.UnsafeLocalBackend.cluster_start_timeout = 120
c.UnsafeLocalBackend.worker_start_timeout = 120
c.UnsafeLocalBackend.cluster_status_period = 1
c.UnsafeLocalBackend.worker_status_period = 1
c.UnsafeLocalBackend.sigint_timeout = 3
c.ClusterConfig.cluster_start_timeout = 180  # a loaded CI machine starts a scheduler slowly
c.ClusterConfig.worker_start_timeout = 180
c.ClusterConfig.scheduler_cmd = [{str(dask)!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{str(dask)!r}, "worker"]
c.ClusterConfig.worker_threads = 1
c.ClusterConfig.worker_memory = "512M"
c.ClusterConfig.scheduler_memory = "512M"
"""
    )
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dask-gateway-server"), "-f", str(folder / "config.py")],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{proxy}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dask-gateway-server did not start:\n{(folder / 'server.log').read_text()}")
            time.sleep(0.2)
        yield _Server(address, process)
    finally:
        process.send_signal(signal.SIGINT)  # stops its clusters, then exits
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def _task_errors(log: str) -> str:
    """The task log's error lines and the gateway server's log tail, for a failed run's report."""
    lines = log.splitlines()
    keep = [i for i, line in enumerate(lines) if "error" in line.lower() or "Traceback" in line]
    picked = sorted({j for i in keep for j in range(i, min(i + 8, len(lines)))})
    return "\n".join(lines[j] for j in picked[-80:])


def _connection(monkeypatch, server: _Server, *, conn_id: str = "dask_gw", password: str = SECRET, **extra):
    port = int(server.address.rsplit(":", 1)[1])
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "dask",
                "host": "127.0.0.1",
                "port": port,
                "login": USER,
                "password": password,
                "extra": {"gateway": True, "timeout": 5, **extra},
            }
        ),
    )


CREATE_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.operators.rapids import RapidsDaskOperator


def total(client, parameters):
    import dask.array as da
    from airflow_mlplatform.runtime import record
    record("workers", len(client.scheduler_info(n_workers=-1)["workers"]))
    return int(da.ones(parameters["n"], chunks=100).sum().compute())


with DAG(dag_id="rapids_gateway", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    RapidsDaskOperator(
        task_id="sum", python_callable=total, cluster="address", dask_conn_id="dask_gw",
        n_workers=2, parameters={"n": 1000},
    )
"""


def test_task_creates_a_gateway_cluster_runs_the_callable_and_shuts_it_down(
    run_dag, gateway_server, monkeypatch, capfd
):
    _connection(monkeypatch, gateway_server)
    assert gateway_server.cluster_names() == []
    result = run_dag(CREATE_DAG, "rapids_gateway")
    out = capfd.readouterr()
    assert result.task_states() == {"sum": "success"}, _task_errors(out.out + out.err)
    assert result.xcom("sum") == {"result": 1000, "workers": 2}
    record = result.xcom("sum", "execution_record")
    where = record["where"]
    assert where["cluster"] == "GatewayCluster" and where["created_by_task"] is True
    assert where["n_workers"] == 2 and where["scheduler"].startswith("gateway://127.0.0.1:")
    assert gateway_server.wait_no_clusters()  # shut down: no cluster listed, no scheduler/worker left
    assert "created cluster" in out.out + out.err  # the log says what it did
    assert SECRET not in out.out + out.err + json.dumps(record)


EXISTING_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.operators.rapids import RapidsDaskOperator


def workers(client):
    import dask.array as da
    return {"workers": len(client.scheduler_info(n_workers=-1)["workers"]),
            "total": int(da.ones(500, chunks=100).sum().compute())}


with DAG(dag_id="rapids_gateway_named", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    RapidsDaskOperator(task_id="w", python_callable=workers, cluster="address", dask_conn_id="dask_gw_named")
"""


def test_existing_named_gateway_cluster_is_used_and_left_running(run_dag, gateway_server, monkeypatch):
    gateway = gateway_server.gateway()
    cluster = gateway.new_cluster(shutdown_on_close=True)
    try:
        cluster.scale(1)
        with cluster.get_client(set_as_default=False) as client:
            client.wait_for_workers(1, timeout=30)
        _connection(monkeypatch, gateway_server, conn_id="dask_gw_named", cluster_name=cluster.name)
        result = run_dag(EXISTING_DAG, "rapids_gateway_named")
        assert result.task_states() == {"w": "success"}
        assert result.xcom("w") == {"workers": 1, "total": 500}
        where = result.xcom("w", "execution_record")["where"]
        assert where["cluster"] == "GatewayCluster" and where["created_by_task"] is False
        assert cluster.name in where["scheduler"]
        assert gateway_server.cluster_names() == [cluster.name]  # not shut down by the task
        with cluster.get_client(set_as_default=False) as client:
            assert len(client.scheduler_info()["workers"]) == 1
    finally:
        cluster.shutdown()
        close_gateway_client(cluster.gateway)
        close_gateway_client(gateway)
    assert gateway_server.wait_no_clusters()


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "d", "t", "r", -1, 1

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _fail(client):
    client.wait_for_workers(1, timeout=30)
    raise ValueError("the model diverged")


def test_failure_shuts_the_created_gateway_cluster_down(gateway_server, monkeypatch):
    _connection(monkeypatch, gateway_server)
    ti = _TI()
    op = RapidsDaskOperator(
        task_id="t", python_callable=_fail, cluster="address", dask_conn_id="dask_gw", n_workers=1
    )
    with pytest.raises(ValueError, match="the model diverged"):
        op.execute({"ti": ti})
    assert ti.pushed["execution_record"]["status"] == "failed"
    assert ti.pushed["execution_record"]["where"]["created_by_task"] is True
    assert gateway_server.wait_no_clusters()


def _hang(client):
    Path(os.environ["STARTED_FILE"]).write_text("1")
    while True:  # ends when on_kill shuts the cluster down under it
        client.submit(time.sleep, 0.05, pure=False).result()


def test_on_kill_shuts_the_created_gateway_cluster_down(gateway_server, monkeypatch, tmp_path):
    _connection(monkeypatch, gateway_server)
    monkeypatch.setenv("STARTED_FILE", str(tmp_path / "started"))
    ti = _TI()
    op = RapidsDaskOperator(
        task_id="t", python_callable=_hang, cluster="address", dask_conn_id="dask_gw", n_workers=1
    )
    errors: list[BaseException] = []

    def run():
        try:
            op.execute({"ti": ti})
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(600):
        if (tmp_path / "started").exists():
            break
        time.sleep(0.05)
    assert len(gateway_server.cluster_names()) == 1
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert errors
    assert gateway_server.wait_no_clusters()


def test_bad_gateway_input_is_a_clear_error_before_anything_is_created(gateway_server, monkeypatch, tmp_path):
    def run(match, error, **kwargs):
        op = RapidsDaskOperator(task_id="t", python_callable=len, cluster="address", **kwargs)
        with pytest.raises(error, match=match) as info:
            op.execute({"ti": _TI()})
        assert SECRET not in str(info.value)
        assert gateway_server.cluster_names() == []
        assert not gateway_server.dask_processes()

    _connection(monkeypatch, gateway_server, conn_id="dask_bad_password", password="wrong-" + SECRET)
    run(
        r"did not list clusters .*credentials",
        DaskSchedulerUnreachableError,
        dask_conn_id="dask_bad_password",
    )

    _connection(monkeypatch, gateway_server, conn_id="dask_no_such", cluster_name="no-such-cluster")
    run("has no running cluster named 'no-such-cluster'", ConfigurationError, dask_conn_id="dask_no_such")

    run(
        r"no dask-gateway server answered at tcp://127.0.0.1:\d+ within 1 s",
        DaskSchedulerUnreachableError,
        address=f"gateway://127.0.0.1:{_free_port()}",
        connect_timeout=1,
    )

    _connection(monkeypatch, gateway_server, conn_id="dask_opts", cluster_options={"worker_gpus": 8})
    run(
        r"cluster_options \['worker_gpus'\] are not accepted .* it offers \[\]",
        ConfigurationError,
        dask_conn_id="dask_opts",
    )

    _connection(monkeypatch, gateway_server, conn_id="dask_gw")
    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    op = RapidsDaskOperator(task_id="t", script=str(script), cluster="address", dask_conn_id="dask_gw")
    with pytest.raises(ConfigurationError, match="a script cannot run against a dask-gateway cluster"):
        op.execute({"ti": _TI()})

    monkeypatch.setitem(sys.modules, "dask_gateway", None)  # as if dask-gateway were not installed
    run("dask-gateway package is not installed", ConfigurationError, dask_conn_id="dask_gw")


@pytest.mark.parametrize(
    ("conn", "address", "auth"),
    [
        ({"host": "gw.ml", "extra": {"gateway": True}}, "http://gw.ml:8000", "none"),
        (
            {
                "host": "gw.ml",
                "port": 443,
                "schema": "https",
                "password": "tok-9f8e7d",
                "extra": {"gateway": True},
            },
            "https://gw.ml:443",
            "jupyterhub",
        ),
        (
            {"host": "gateway://gw.ml:9000", "login": "bob", "password": "pw-1a2b3c"},
            "http://gw.ml:9000",
            "basic",
        ),
        (
            {"host": "https://hub.example/services/dask-gateway", "password": "tok-9f8e7d"},
            "https://hub.example/services/dask-gateway",
            "jupyterhub",
        ),
        ({"host": "gw.ml", "extra": {"gateway": True, "auth": "kerberos"}}, "http://gw.ml:8000", "kerberos"),
    ],
)
def test_gateway_connection_settings(monkeypatch, conn, address, auth):
    from airflow_mlplatform.hooks.dask import DaskHook

    monkeypatch.setenv("AIRFLOW_CONN_DASK_PARSE", json.dumps({"conn_type": "dask", **conn}))
    hook = DaskHook("dask_parse")
    assert hook.is_gateway()
    settings = hook.gateway_settings()
    assert (settings.address, settings.auth) == (address, auth)
    assert settings.cluster_name is None and settings.cluster_options == {}
    if conn.get("password"):
        assert settings.secret == conn["password"] and conn["password"] not in repr(settings)


def test_plain_scheduler_connection_is_not_a_gateway(monkeypatch):
    from airflow_mlplatform.hooks.dask import DaskHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_DASK_PLAIN", json.dumps({"conn_type": "dask", "host": "sched", "port": 8786})
    )
    assert not DaskHook("dask_plain").is_gateway()
    assert DaskHook("dask_plain").get_address()[0] == "tcp://sched:8786"
    assert DaskHook(None, address="https://gw.ml").is_gateway()
    assert not DaskHook(None, address="tls://sched:8786").is_gateway()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"gateway": True, "auth": "oauth"}, "gateway auth 'oauth' is unknown"),
        ({"gateway": True, "auth": "jupyterhub"}, "needs the API token in the connection's password"),
        ({"gateway": True, "n_workers": 0}, "n_workers an integer >= 1"),
        ({"gateway": True, "cluster_options": [1]}, "cluster_options must be an object"),
    ],
)
def test_bad_gateway_connection_is_a_clear_error(monkeypatch, extra, match):
    from airflow_mlplatform.hooks.dask import DaskHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_DASK_BADGW", json.dumps({"conn_type": "dask", "host": "gw.ml", "extra": extra})
    )
    with pytest.raises(ConfigurationError, match=match):
        DaskHook("dask_badgw").gateway_settings()
