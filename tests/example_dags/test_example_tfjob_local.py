"""example_tfjob_local: 2-worker MultiWorkerMirroredStrategy on digits, for real, with dag.test()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from repo_paths import REPO

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")


@pytest.mark.slow
def test_two_worker_training_records_accuracy(run_dag, dags_folder):
    shutil.copytree(REPO / "example_dags" / "scripts", dags_folder / "scripts", dirs_exist_ok=True)
    result = run_dag(
        REPO / "example_dags" / "example_tfjob_local.py", "example_tfjob_local", run_conf={"epochs": 4}
    )

    assert result.task_states() == {"train": "success", "report": "success"}
    values = result.xcom("train")
    assert values["replicas"] == 2  # both workers were in sync: MWMS really ran on 2 processes
    assert values["epochs"] == 4  # the DAG param reached the replicas
    assert 0.8 < values["accuracy"] <= 1.0
    assert result.xcom("train", "accuracy") == values["accuracy"]
    assert result.xcom("report") == "good"

    metrics = result.xcom("train", "metrics")
    assert metrics["epoch"] == 4 and metrics["loss"] > 0

    record = result.xcom("train", "execution_record")
    assert record["status"] == "success"
    assert record["parameters"] == {"epochs": 4, "batch_size": 32, "hidden_units": 32, "learning_rate": 0.5}
    assert record["code"]["script"].endswith("tf_digits_train.py") and len(record["code"]["sha256"]) == 64
    assert record["environment"]["tensorflow"]
    assert [row["epoch"] for row in record["metrics"]["series"]] == [1, 2, 3, 4]
    cluster = record["where"]["cluster"]
    assert len(cluster["worker"]) == 2 and len(set(cluster["worker"])) == 2
    assert all(addr.startswith("127.0.0.1:") for addr in cluster["worker"])
    logs = record["outputs"]["logs"]
    assert set(logs) == {"worker-0", "worker-1"}
    assert "::tfjob::first-step" in Path(logs["worker-1"]).read_text()
    assert json.loads(Path(record["outputs"]["record"]).read_text())["values"] == values
