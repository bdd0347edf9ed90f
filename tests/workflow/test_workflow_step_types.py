"""Every step type maps onto its operator; the example with every type builds and generates the same DAG."""

from __future__ import annotations

import importlib.util
import inspect
import shutil
from pathlib import Path

import pytest
import wf_dagcompare

from airflow_mlplatform.testing import load_dag
from airflow_mlplatform.workflow import load_workflow, read_workflow
from airflow_mlplatform.workflow.codegen import generate_file
from airflow_mlplatform.workflow.registry import STEP_TYPES

REPO = Path(__file__).resolve().parents[2]
EVERY = REPO / "example_dags" / "workflows" / "every_step_type.yaml"


@pytest.mark.parametrize("name", list(STEP_TYPES))
def test_registry_matches_the_operator(name):
    st = STEP_TYPES[name]
    if not st.available():
        pytest.skip(f"{st.module} is not importable here")
    cls = st.load()
    accepted = set(inspect.signature(cls.__init__).parameters)
    templated = set(cls.template_fields)
    for field_name, f in st.fields.items():
        assert f.kwarg in accepted, f"{name}.{field_name} -> {f.kwarg} is not a keyword of {cls.__name__}"
        assert f.templated == (f.kwarg in templated), (
            f"{name}.{field_name}: templated must match the operator"
        )
    assert set(st.fixed) <= accepted
    assert ("compute" in accepted) == st.compute


def test_every_step_type_is_in_the_example():
    types = {s.type for s in read_workflow(EVERY).steps} | {"notebook"}  # notebooks: the quickstart
    assert types == set(STEP_TYPES)


def test_every_step_type_builds_and_generates_the_same_dag(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "example_dags"))
    built = load_workflow(EVERY)
    kinds = {t.task_id: type(t).__name__ for t in built.tasks}
    assert kinds == {
        "sales": "PythonOperator",
        "revenue_report": "RapidsDaskOperator",
        "spark_revenue": "SparkApplicationOperator",
        "train_tf": "TFJobOperator",
        "judge": "PythonOperator",
        "deploy_churn": "DeployModelOperator",
        "fit_r": "RStudioJobOperator",
        "r_report": "RStudioJobOperator",
        "preprocess": "ValohaiSubmitExecutionOperator",
        "train_remote": "ValohaiSubmitExecutionOperator",
        "summary": "BashOperator",
    }
    remote = built.get_task("train_remote")
    assert (
        remote.inputs["train"].key == "train.csv" and remote.inputs["train"].operator.task_id == "preprocess"
    )
    assert remote.environment_variables == {"PYTHONHASHSEED": "0"}
    assert built.get_task("summary").upstream_task_ids == {
        "revenue_report", "judge", "train_tf", "r_report", "train_remote"}  # fmt: skip
    generated = load_dag(generate_file(read_workflow(EVERY), tmp_path), "every_step_type_workflow")
    assert wf_dagcompare.snapshot(generated) == wf_dagcompare.snapshot(built)


SMALL = """\
version: 1
id: wf_rapids_small
params:
  regions: {type: array, default: [b, a]}
steps:
  - id: sales
    type: python
    callable: workflow_steps:sales_by_region
    parameters: {regions: "${{ params.regions }}", units: 2}
    outputs: [revenue_by_region]
  - id: report
    type: rapids
    script: ../scripts/dask_report.py
    parameters:
      revenue: ${{ steps.sales.outputs.revenue_by_region }}
      cv_accuracy: 0.5
    include_dag_params: false
    n_workers: 1
    threads_per_worker: 1
    outputs: [total_revenue, top_region]
"""


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs dask.distributed")
def test_python_to_rapids_workflow_runs(run_dag, dags_folder):
    shutil.copy(REPO / "example_dags" / "workflow_steps.py", dags_folder)
    shutil.copytree(REPO / "example_dags" / "scripts", dags_folder / "scripts", dirs_exist_ok=True)
    folder = dags_folder / "wf_rapids"
    folder.mkdir(exist_ok=True)
    (folder / "small.yaml").write_text(SMALL)
    loader = (REPO / "example_dags" / "workflows_loader.py").read_text().replace('"workflows"', '"wf_rapids"')
    result = run_dag(loader, "wf_rapids_small", name="wf_rapids_loader.py")
    assert result.task_states() == {"sales": "success", "report": "success"}
    assert result.xcom("sales", "revenue_by_region") == {"a": 3.0, "b": 6.0}
    assert result.xcom("report", "total_revenue") == 9.0
    assert result.xcom("report", "top_region") == "b"
