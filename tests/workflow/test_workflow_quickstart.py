"""The quickstart pipeline as a workflow file runs end to end with dag.test(), for real."""

from __future__ import annotations

import shutil
from pathlib import Path

from repo_paths import REPO


def test_quickstart_workflow_runs_end_to_end(run_dag, dags_folder):
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)
    (dags_folder / "workflows").mkdir(exist_ok=True)
    shutil.copy(
        REPO / "example_dags" / "workflows" / "quickstart_ml_pipeline.yaml", dags_folder / "workflows"
    )
    result = run_dag(
        REPO / "example_dags" / "workflows_loader.py",
        "quickstart_ml_pipeline_workflow",
        run_conf={"C": 0.5},
    )

    assert result.task_states() == {"prepare": "success", "train": "success", "evaluate": "success"}
    train = result.xcom("train")
    assert 0.9 < train["accuracy"] <= 1.0
    assert Path(train["model_path"]).is_file()
    record = result.xcom("train", "execution_record")
    # ${{ params.C }} arrives with its type, from the run's conf; the step output too
    assert record["parameters"]["C"] == 0.5
    assert record["parameters"]["train_path"] == result.xcom("prepare", "train_path")
    evaluate = result.xcom("evaluate", "execution_record")
    assert evaluate["parameters"]["model_path"] == train["model_path"]
    assert "C" not in evaluate["parameters"]  # include_dag_params: false
    assert result.xcom("evaluate", "test_accuracy") > 0.9
