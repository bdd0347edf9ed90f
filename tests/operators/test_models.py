"""RegisterModelOperator for real: a Valohai execution's ``datum://`` output becomes a model version.

The Valohai side is the contract server on loopback (real HTTP, signed download URLs); the
registry is mlflow-skinny on the embedded store under AIRFLOW_HOME.
"""

from __future__ import annotations

from pathlib import Path

from airflow_mlplatform.hooks import valohai as valohai_hook
from airflow_mlplatform.hooks.mlflow import MLflowHook
from valohai_contract_server import ContractServer, connection_json

MODEL_BYTES = b"\x80\x04 a pickled model from Valohai \x00\xff"

DAG_TEXT = """
from airflow.sdk import DAG
from airflow_mlplatform.operators.models import RegisterModelOperator
from airflow_mlplatform.operators.valohai import ValohaiSubmitExecutionOperator

with DAG(dag_id="register_valohai_model", schedule=None, catchup=False) as dag:
    train = ValohaiSubmitExecutionOperator(
        task_id="train", project="my-org/my-project", step="train", commit="main",
        poll_interval=0.1, max_poll_interval=0.2,
    )
    register = RegisterModelOperator(
        task_id="register", model_name="valohai-model", artifact=train.output["model.pkl"],
        source_task="train",
    )
"""


def test_a_valohai_datum_output_is_downloaded_and_registered(run_dag, monkeypatch):
    with ContractServer(speed=100) as server:
        server.configure_step("train", outputs={"model.pkl": MODEL_BYTES}, metadata=[{"accuracy": 0.87}])
        monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server))
        valohai_hook._PROJECT_CACHE.clear()
        result = run_dag(DAG_TEXT, "register_valohai_model")
        downloads = [r.path for r in server.requests if r.path.startswith("/_files/")]

    assert result.task_states() == {"train": "success", "register": "success"}, result.task_states()
    datum = result.xcom("train", "model.pkl")
    assert datum.startswith("datum://")
    assert downloads == [f"/_files/{datum.removeprefix('datum://')}"]  # through the signed URL
    version = result.xcom("register", "version")
    record = result.xcom("register", "execution_record")
    assert record["parameters"]["artifact"] == datum and record["status"] == "success"

    client = MLflowHook().get_conn()
    mv = client.get_model_version("valohai-model", str(version))
    assert float(mv.tags["metric.accuracy"]) == 0.87  # the Valohai execution's lineage
    train_record = result.xcom("train", "execution_record")
    assert mv.tags["mlplatform.source_record"] == train_record["outputs"]["record"]
    stored = Path(mv.source.removeprefix("file://"))
    files = [p for p in stored.rglob("*") if p.is_file()] if stored.is_dir() else [stored]
    assert [p.read_bytes() for p in files] == [MODEL_BYTES]
