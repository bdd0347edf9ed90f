"""RapidsDaskOperator: bad input before anything is created; teardown on success, failure and kill;
an existing scheduler through a ``dask`` connection."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    DaskSchedulerUnreachableError,
    JobDefinitionError,
    JobFailedError,
    RecordError,
    ScriptNotFoundError,
)
from airflow_mlplatform.operators.rapids import RapidsDaskOperator


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "d", "t", "r", -1, 1

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def _none_alive(pids) -> bool:
    for _ in range(200):
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _count_children() -> int:
    import psutil

    return len(psutil.Process().children(recursive=True))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, JobDefinitionError, r"exactly one of python_callable= and script= \(neither given\)"),
        ({"python_callable": len, "script": "x.py"}, JobDefinitionError, r"\(both given\)"),
        ({"python_callable": 42}, JobDefinitionError, "must be callable"),
        ({"script": "/nonexistent/job.py"}, ScriptNotFoundError, "/nonexistent/job.py does not exist"),
        ({"python_callable": len, "cluster": "yarn"}, ConfigurationError, "cluster 'yarn' is unknown"),
        (
            {"python_callable": len, "cluster": "kubernetes"},
            ConfigurationError,
            "needs compute= naming a profile",
        ),
        ({"python_callable": len, "n_workers": 0}, JobDefinitionError, "n_workers must be an integer >= 1"),
        ({"python_callable": len, "cluster": "address"}, ConfigurationError, "needs dask_conn_id="),
        (
            {
                "python_callable": len,
                "cluster": "address",
                "address": "tcp://127.0.0.1:{port}",
                "connect_timeout": 1,
            },
            DaskSchedulerUnreachableError,
            r"no Dask scheduler answered at tcp://127.0.0.1:\d+ within 1 s",
        ),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_is_created(kwargs, error, message):
    if "address" in kwargs:
        kwargs = {**kwargs, "address": kwargs["address"].format(port=_closed_port())}
    before = _count_children()
    ti = _TI()
    with pytest.raises(error, match=message):
        RapidsDaskOperator(task_id="t", **kwargs).execute({"ti": ti})
    assert _count_children() == before  # no cluster, no worker, no script was started
    assert ti.pushed == {}


def _pids_and_fail(client):
    pids = list(client.run(os.getpid).values())
    Path(os.environ["PIDS_FILE"]).write_text(json.dumps(pids))
    raise ValueError("the model diverged")


def test_failure_tears_the_cluster_down_and_records_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIDS_FILE", str(tmp_path / "pids.json"))
    ti = _TI()
    op = RapidsDaskOperator(task_id="t", python_callable=_pids_and_fail, n_workers=2, threads_per_worker=1)
    with pytest.raises(ValueError, match="the model diverged"):
        op.execute({"ti": ti})
    pids = json.loads((tmp_path / "pids.json").read_text())
    assert len(pids) == 2
    assert _none_alive(pids)
    record = ti.pushed["execution_record"]
    assert record["status"] == "failed" and record["error"] == "the model diverged"
    assert record["where"]["created_by_task"] is True


def _not_json(client):
    import numpy as np

    return {"pids": list(client.run(os.getpid).values()), "mean": np.float32(0.5)}


def test_non_json_return_value_is_a_clear_error_and_the_cluster_is_gone(monkeypatch):
    ti = _TI()
    op = RapidsDaskOperator(task_id="t", python_callable=_not_json, n_workers=1, threads_per_worker=1)
    with pytest.raises(RecordError, match=r"value for 'mean' of type float32 .*\.item\(\)"):
        op.execute({"ti": ti})
    assert ti.pushed["execution_record"]["status"] == "failed"


def _hang(client):
    Path(os.environ["PIDS_FILE"]).write_text(json.dumps(list(client.run(os.getpid).values())))
    while True:  # ends when on_kill tears the cluster down under it
        client.submit(time.sleep, 0.05, pure=False).result()


def test_on_kill_tears_the_cluster_down(tmp_path, monkeypatch):
    monkeypatch.setenv("PIDS_FILE", str(tmp_path / "pids.json"))
    ti = _TI()
    op = RapidsDaskOperator(task_id="t", python_callable=_hang, n_workers=2, threads_per_worker=1)
    errors: list[BaseException] = []

    def run():
        try:
            op.execute({"ti": ti})
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(600):
        if (tmp_path / "pids.json").exists():
            break
        time.sleep(0.05)
    pids = json.loads((tmp_path / "pids.json").read_text())
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert errors
    assert _none_alive(pids)
    assert ti.pushed["execution_record"]["status"] == "failed"


def test_on_kill_stops_a_script(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        f"import os, time\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    )
    ti = _TI()
    op = RapidsDaskOperator(
        task_id="t", script=str(script), n_workers=1, threads_per_worker=1, grace_period=1
    )
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(op, ti, errors))
    thread.start()
    for _ in range(600):
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text():
            break
        time.sleep(0.05)
    pid = int((tmp_path / "pid").read_text())
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(errors[0], JobFailedError) and "stopped" in str(errors[0])
    assert _none_alive([pid])


def _capture(op, ti, errors):
    try:
        op.execute({"ti": ti})
    except BaseException as e:
        errors.append(e)


SHARED_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.operators.rapids import RapidsDaskOperator


def total(client, parameters):
    import dask.array as da
    from airflow_mlplatform.runtime import record
    record("workers", len(client.scheduler_info(n_workers=-1)["workers"]))
    return int(da.ones(parameters["n"], chunks=100).sum().compute())


with DAG(dag_id="rapids_address", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    RapidsDaskOperator(
        task_id="sum", python_callable=total, cluster="address", dask_conn_id="dask_shared", parameters={"n": 1000}
    )
"""


def test_existing_scheduler_from_a_dask_connection_is_used_and_left_running(run_dag, monkeypatch):
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        host, port = cluster.scheduler_address.removeprefix("tcp://").rsplit(":", 1)
        monkeypatch.setenv(
            "AIRFLOW_CONN_DASK_SHARED", json.dumps({"conn_type": "dask", "host": host, "port": int(port)})
        )
        result = run_dag(SHARED_DAG, "rapids_address")
        assert result.task_states() == {"sum": "success"}
        assert result.xcom("sum") == {"result": 1000, "workers": 1}
        where = result.xcom("sum", "execution_record")["where"]
        assert where["cluster"] == "address" and where["created_by_task"] is False
        assert where["scheduler"] == f"tcp://{host}:{port}"
        with Client(cluster.scheduler_address, timeout="5s") as client:  # still there, not torn down
            assert len(client.scheduler_info()["workers"]) == 1
