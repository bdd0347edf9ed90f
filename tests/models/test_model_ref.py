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
