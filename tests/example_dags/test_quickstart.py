"""The quickstart pipeline runs end to end with dag.test(), for real: prepare -> train -> evaluate ->
register -> promote-if-better, then the batch-scoring DAG that the champion's Asset event queues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from repo_paths import REPO


def _queued(dag_id: str) -> int:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count()


def _clear_queue(dag_id: str) -> None:
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).delete()


def test_quickstart_pipeline_runs_end_to_end(run_dag, dags_folder, monkeypatch):
    # the scheduler queues asset-triggered runs of unpaused DAGs only
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__TRACKING", "mlflow")  # every task logs an MLflow run
    # a new user's machine: no Kubernetes connection (the test bed's may be set by earlier modules)
    monkeypatch.delenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", raising=False)
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)
    shutil.copy(REPO / "example_dags" / "quickstart_batch_scoring.py", dags_folder)
    result = run_dag(REPO / "example_dags" / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline")

    assert (
        result.task_states()
        == {
            "prepare": "success",
            "train": "success",
            "evaluate": "success",
            "register": "success",
            "promote": "success",
            "deploy": "skipped",  # no Kubernetes connection: skipped, with a log line (tests/operators/test_deploy.py deploys)
        }
    )
    train = result.xcom("train")
    assert set(train) == {"accuracy", "model_path"}
    assert 0.9 < train["accuracy"] <= 1.0
    assert Path(train["model_path"]).is_file()
    # each value also under its own key, with its type
    assert result.xcom("train", "accuracy") == train["accuracy"]
    assert result.xcom("prepare", "n_features") == 30
    assert result.xcom("evaluate")["test_accuracy"] > 0.9
    assert result.xcom("evaluate", "metrics")["test_accuracy"] == result.xcom("evaluate")["test_accuracy"]
    assert result.xcom("train", "metrics") == {"C": 1.0, "val_accuracy": train["accuracy"]}

    record = result.xcom("train", "execution_record")
    assert record["parameters"]["C"] == 1.0
    assert record["parameters"]["train_path"] == result.xcom("prepare", "train_path")
    assert record["status"] == "success"
    assert "models" not in record  # only tasks that use or register a model have the section
    notebook = Path(record["outputs"]["notebook"])
    assert notebook.is_file() and notebook.name == "train.ipynb"
    assert "try-1" in notebook.parts and "train" in notebook.parts
    stored = json.loads(Path(record["outputs"]["record"]).read_text())
    assert stored["values"] == train
    assert stored["code"]["sha256"] == record["code"]["sha256"]

    # register: a version with train's lineage
    version = result.xcom("register", "version")
    assert isinstance(version, int)
    registered = result.xcom("register", "execution_record")["models"]["registered"]
    assert registered == [
        {
            "name": "quickstart-classifier",
            "version": str(version),
            "uri": f"models:/quickstart-classifier/{version}",
        }
    ]
    from airflow_mlplatform.hooks.mlflow import MLflowHook

    mv = MLflowHook().get_conn().get_model_version("quickstart-classifier", str(version))
    assert mv.tags["mlplatform.source_record"] == record["outputs"]["record"]
    assert mv.tags["mlplatform.code_sha256"] == record["code"]["sha256"]
    assert float(mv.tags["metric.val_accuracy"]) == train["accuracy"] and mv.tags["param.C"] == "1.0"

    # tracking: one MLflow run per task in the experiment named after the DAG
    client = MLflowHook().get_conn()
    experiment = client.get_experiment_by_name("quickstart_ml_pipeline")
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`mlplatform.run_id` = '{result.dag_run.run_id}'"
    )
    tracked = {r.data.tags["mlplatform.task_id"]: r for r in runs if "mlplatform.status" in r.data.tags}
    assert set(tracked) == {"prepare", "train", "evaluate", "register", "promote"}
    train_run = tracked["train"]
    assert train_run.data.params["C"] == "1.0" and train_run.data.metrics["val_accuracy"] == train["accuracy"]
    assert train_run.data.tags["mlplatform.code_sha256"] == record["code"]["sha256"]
    artifacts = {a.path for a in client.list_artifacts(train_run.info.run_id, "mlplatform")}
    assert artifacts == {"mlplatform/execution_record.json", "mlplatform/train.ipynb"}
    monkeypatch.delenv("AIRFLOW__MLPLATFORM__TRACKING")

    # promote: the first version becomes champion; its Asset event queues the scoring DAG
    assert result.xcom("promote", "promoted") is True
    assert "first version" in result.xcom("promote", "reason")
    assert _queued("quickstart_batch_scoring") == 1
    _clear_queue("quickstart_batch_scoring")

    scored = run_dag(dags_folder / "quickstart_batch_scoring.py", "quickstart_batch_scoring")
    assert scored.task_states() == {"score": "success"}
    used = {
        "name": "quickstart-classifier",
        "alias": "champion",
        "version": str(version),
        "uri": f"models:/quickstart-classifier/{version}",
    }
    assert scored.xcom("score", "execution_record")["models"]["used"] == [used]
    assert scored.xcom("score", "models_used") == [used]
    assert scored.xcom("score", "scored") == 100
    assert Path(scored.xcom("score", "predictions_path")).is_file()

    # a second run with a much weaker model: the gate keeps the champion, no Asset event
    weaker = run_dag(
        dags_folder / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline", run_conf={"C": 0.0001}
    )
    assert weaker.xcom("train", "accuracy") < train["accuracy"]
    assert weaker.xcom("promote", "promoted") is False
    assert "failed against version" in weaker.xcom("promote", "reason")
    assert weaker.xcom("register", "version") == version + 1
    assert _queued("quickstart_batch_scoring") == 0
