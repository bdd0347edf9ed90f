"""The MLflow hook against a real ``mlflow server`` on loopback, connections, and tracking when the
server goes away (the task's result is kept, the failure is clear)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from airflow_mlplatform.hooks.mlflow import MLflowHook, store_from_connection


class _Conn:
    def __init__(self, host=None, port=None, schema=None, extra=None, login=None, password=None):
        self.host, self.port, self.schema, self.login, self.password = host, port, schema, login, password
        self.extra_dejson = extra or {}


def test_connections_name_a_server_or_a_database():
    assert (
        store_from_connection(_Conn(host="mlflow.ml.svc", port=5000), "c").tracking_uri
        == "http://mlflow.ml.svc:5000"
    )
    assert store_from_connection(_Conn(host="https://m.example/"), "c").is_server
    db = store_from_connection(
        _Conn(extra={"tracking_uri": "postgresql://u:pw@db/mlflow", "artifact_root": "s3://b/a"}), "c"
    )
    assert (db.tracking_uri, db.artifact_root, db.is_server) == (
        "postgresql://u:pw@db/mlflow",
        "s3://b/a",
        False,
    )
    from airflow_mlplatform.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="names no MLflow store"):
        store_from_connection(_Conn(), "mlflow_x")


def test_without_a_connection_the_embedded_store_is_used():
    store = MLflowHook("mlflow_not_configured").store
    assert store.embedded and store.tracking_uri.startswith("sqlite:///")
    assert Path(os.environ["AIRFLOW_HOME"]) in Path(store.tracking_uri.removeprefix("sqlite:///")).parents


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (its own SQLite store and artifact folder) on a free loopback port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=(root / "server.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
        assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
    else:
        pytest.fail("mlflow server did not start: " + (root / "server.log").read_text()[-3000:])
    conn = json.dumps({"conn_type": "mlflow", "host": url})
    os.environ["AIRFLOW_CONN_MLFLOW_SERVER"] = conn
    yield {"url": url, "proc": proc}
    os.environ.pop("AIRFLOW_CONN_MLFLOW_SERVER", None)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _record(tmp_path: Path, points: int) -> dict:
    record_file = tmp_path / "execution_record.json"
    record = {
        "status": "success",
        "task": {
            "dag_id": "tracked_dag",
            "task_id": "train",
            "run_id": "r1",
            "map_index": -1,
            "try_number": 1,
        },
        "code": {"sha256": "ab" * 32},
        "parameters": {"C": 0.5, "layers": [64, 32]},
        "metrics": {
            "summary": {"loss": 0.0},
            "series": [{"step": i, "loss": 1 / (i + 1)} for i in range(points)],
        },
        "outputs": {"record": str(record_file)},
        "where": {"backend": "local", "labels": {"tenant": "risk"}},
    }
    record_file.write_text(json.dumps(record))
    return record


def test_register_resolve_and_track_against_a_real_server(mlflow_server, tmp_path, monkeypatch):
    from airflow_mlplatform import tracking
    from airflow_mlplatform.models import ModelRef, registry

    hook = MLflowHook("mlflow_server")
    assert hook.store.tracking_uri == mlflow_server["url"] and hook.test_connection()[0]
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"served")
    done = registry.register(
        hook, name="served", artifact=tmp_path / "model", experiment="srv", key="k",
        tags={"metric.auc": "0.8"}, description="d",
    )  # fmt: skip
    assert done.source.startswith("mlflow-artifacts:/")
    assert registry.promote(hook, name="served", version=done.version, alias="champion", gate=None).promoted
    monkeypatch.setenv("MLPLATFORM_MODEL_CACHE", str(tmp_path / "cache"))
    resolved = registry.resolve(hook, ModelRef("served", alias="champion", mlflow_conn_id="mlflow_server"))
    assert (Path(resolved) / "weights.bin").read_bytes() == b"served"  # downloaded from the server

    monkeypatch.setenv("AIRFLOW__MLPLATFORM__TRACKING", "mlflow")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__TRACKING_CONN_ID", "mlflow_server")
    run_id = tracking.track({}, _record(tmp_path, 1000))
    run = hook.get_conn().get_run(run_id)
    assert run.data.params == {"C": "0.5", "layers": "[64, 32]"}
    assert (
        run.data.tags["mlplatform.dag_id"] == "tracked_dag"
        and run.data.tags["mlplatform.label.tenant"] == "risk"
    )
    history = hook.get_conn().get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1000)) and history[-1].value == pytest.approx(1 / 1000)
    assert [a.path for a in hook.get_conn().list_artifacts(run_id, "mlplatform")] == [
        "mlplatform/execution_record.json"
    ]
    experiment = hook.get_conn().get_experiment(run.info.experiment_id)
    assert experiment.name == "tracked_dag"


@pytest.mark.slow
def test_tracking_server_down_keeps_the_result_and_says_so(
    mlflow_server, run_dag, tmp_path, monkeypatch, caplog
):
    os.killpg(mlflow_server["proc"].pid, signal.SIGTERM)  # the tracking server goes away
    mlflow_server["proc"].wait(timeout=30)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__TRACKING", "mlflow")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__TRACKING_CONN_ID", "mlflow_server")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    model = tmp_path / "m.pkl"
    model.write_bytes(b"m")
    source = f"""
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.operators.models import RegisterModelOperator

with DAG(dag_id="tracking_down", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    RegisterModelOperator(task_id="register", model_name="tracking-down", artifact={str(model)!r})
"""
    with caplog.at_level(logging.WARNING, logger="airflow_mlplatform.tracking"):
        result = run_dag(source, "tracking_down")
    assert result.task_states() == {"register": "success"}  # the ML job's result is kept
    assert result.xcom("register", "version") >= 1
    record = result.xcom("register", "execution_record")
    assert record["status"] == "success" and Path(record["outputs"]["record"]).is_file()
    warned = [r.getMessage() for r in caplog.records if "tracking the task in MLflow" in r.getMessage()]
    assert warned and mlflow_server["url"] in warned[0] and "failed after 3 tries" in warned[0]

    from airflow_mlplatform import tracking
    from airflow_mlplatform.exceptions import TrackingError

    monkeypatch.setenv("AIRFLOW__MLPLATFORM__TRACKING_REQUIRED", "True")
    with pytest.raises(TrackingError, match="tracking_required = True fails the task"):
        tracking.track({}, _record(tmp_path, 3), attempts=1)
