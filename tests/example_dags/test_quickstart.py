"""The quickstart pipeline runs end to end with dag.test(), for real."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from repo_paths import REPO


def test_quickstart_pipeline_runs_end_to_end(run_dag, dags_folder):
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)
    result = run_dag(REPO / "example_dags" / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline")

    assert result.task_states() == {"prepare": "success", "train": "success", "evaluate": "success"}
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
    notebook = Path(record["outputs"]["notebook"])
    assert notebook.is_file() and notebook.name == "train.ipynb"
    assert "try-1" in notebook.parts and "train" in notebook.parts
    stored = json.loads(Path(record["outputs"]["record"]).read_text())
    assert stored["values"] == train
    assert stored["code"]["sha256"] == record["code"]["sha256"]
