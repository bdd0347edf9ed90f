"""ModelRef: checked when written, resolved when the task runs, also from workflow files."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import ParameterError, WorkflowValidationError
from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.workflow import refs


def test_model_refs_are_checked_when_written():
    assert str(ModelRef("churn", alias="champion")) == "models:/churn@champion"
    assert repr(ModelRef("churn", version=3)) == "ModelRef('churn', version=3)"
    with pytest.raises(ParameterError, match="exactly one of alias"):
        ModelRef("churn")
    with pytest.raises(ParameterError, match="stages are not used"):
        ModelRef("churn", alias="latest")
    with pytest.raises(ParameterError, match="model name"):
        ModelRef("../churn", alias="champion")


def test_workflow_strings_become_model_refs():
    value, bad = refs.parse_string("${{ models.churn@champion }}")
    assert value == ModelRef("churn", alias="champion") and bad == []
    # inside a longer string it is refused: a model reference must be the whole value
    _, bad = refs.parse_string("path: ${{ models.churn@champion }}")
    assert bad == ["${{ models.churn@champion }}"]


WORKFLOW = """\
version: 1
id: wf_models_ref
steps:
  - id: score
    type: notebook
    notebook: nb.ipynb
    parameters:
      model_path: ${{ models.churn@champion }}
"""


def test_a_workflow_step_gets_a_model_ref_and_generated_code_imports_it(tmp_path):
    from airflow_mlplatform.workflow import read_workflow
    from airflow_mlplatform.workflow.build import build_dag
    from airflow_mlplatform.workflow.codegen import generate_source

    (tmp_path / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    dag = build_dag(read_workflow(path))
    assert dag.get_task("score").parameters == {"model_path": ModelRef("churn", alias="champion")}
    text = generate_source(read_workflow(path), out_dir=tmp_path, format_with_ruff=False)
    assert "from airflow_mlplatform.models import ModelRef" in text
    assert 'ModelRef("churn", alias="champion")' in text
    path.write_text(
        WORKFLOW.replace("model_path: ${{ models.churn@champion }}", "x: a ${{ models.churn@c }}")
    )
    with pytest.raises(WorkflowValidationError, match=r"as the whole value, \$\{\{ models.NAME@ALIAS"):
        read_workflow(path)


def test_a_resolved_model_is_a_path_that_keeps_its_version_through_copies():
    import copy
    import json
    import pickle

    from airflow_mlplatform.models import ResolvedModel

    resolved = ResolvedModel(
        "/m/model.pkl", name="churn", alias="champion", version="3", uri="models:/churn/3"
    )
    for same in (copy.deepcopy(resolved), pickle.loads(pickle.dumps(resolved))):  # papermill deep-copies
        assert same == "/m/model.pkl" and same.used() == resolved.used()
    assert json.dumps({"model_path": resolved}) == '{"model_path": "/m/model.pkl"}'


SCORING_DAG = """
from airflow.sdk import DAG
from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.operators.notebook import NotebookOperator

with DAG(dag_id="score_with_missing_alias", schedule=None, catchup=False) as dag:
    NotebookOperator(
        task_id="score", notebook="notebooks/score.ipynb", retries=0,
        parameters={"model_path": ModelRef("ref-aliases", alias="production"), "batch_size": 5},
    )
"""


def test_a_scoring_task_with_a_missing_alias_fails_before_its_job_with_a_failed_record(
    run_dag, dags_folder, tmp_path
):
    import json
    import shutil
    from pathlib import Path

    from airflow_mlplatform.hooks.mlflow import MLflowHook
    from airflow_mlplatform.models import registry
    from repo_paths import REPO

    hook = MLflowHook()
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"not used")
    done = registry.register(hook, name="ref-aliases", artifact=artifact, experiment="d", key="k1",
                             tags={}, description="")  # fmt: skip
    registry.promote(hook, name="ref-aliases", version=done.version, alias="champion", gate=None)
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)

    result = run_dag(SCORING_DAG, "score_with_missing_alias")

    assert result.task_states() == {"score": "failed"}
    record = result.xcom("score", "execution_record")
    assert record["status"] == "failed"
    assert record["error"].startswith(
        f"model 'ref-aliases' has no alias 'production'; its aliases: champion (version {done.version})"
    )
    stored = Path(record["outputs"]["record"].removeprefix("file://"))
    assert json.loads(stored.read_text())["status"] == "failed"
    # the job never started: no kernel ran, no output notebook in the try's folder
    assert sorted(p.name for p in stored.parent.iterdir()) == ["execution_record.json"]
    assert record["code"]["operator"] == "airflow_mlplatform.operators.notebook.NotebookOperator"
