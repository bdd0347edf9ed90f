"""Workflows built into DAGs at parse time, run for real with dag.test(); parsing stays cheap."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlplatform.workflow import load_workflow, load_workflows
from airflow_mlplatform.workflow.refs import ParamRef

DATA = Path(__file__).parent / "data"
LOADER = """\
from pathlib import Path

from airflow_mlplatform.workflow import load_workflows

# airflow dag loader
load_workflows(Path(__file__).parent / {folder!r}, globals())
"""


@pytest.fixture(scope="module")
def mixed_folder(dags_folder: Path) -> Path:
    folder = dags_folder / "wf_mixed"
    folder.mkdir(exist_ok=True)
    for name in ("mixed.yaml", "double.ipynb"):
        shutil.copy(DATA / name, folder)
    shutil.copy(DATA / "wf_test_steps.py", dags_folder)  # the dags folder is on sys.path
    if str(dags_folder) not in sys.path:
        sys.path.insert(0, str(dags_folder))
    return folder


def test_built_dag_has_operators_edges_groups_and_typed_params(mixed_folder):
    dag = load_workflow(mixed_folder / "mixed.yaml")
    assert dag.dag_id == "wf_mixed"
    kinds = {t.task_id: type(t).__name__ for t in dag.tasks}
    assert kinds == {"make": "PythonOperator", "total": "PythonOperator", "double": "NotebookOperator",
                     "report": "BashOperator"}  # fmt: skip
    assert dag.get_task("report").upstream_task_ids == {"make", "total", "double"}
    assert dag.get_task("total").upstream_task_ids == {"make"}
    assert dag.get_task("total").task_group.group_id == "inner"
    assert dag.task_group_dict["inner"].parent_group.group_id == "compute"
    assert dag.get_task("double").task_group.group_id == "compute"
    total = dag.get_task("total")
    assert total.op_kwargs["scale"] == ParamRef("scale")
    assert total.op_kwargs["numbers"].operator is dag.get_task("make")
    assert total.op_kwargs["numbers"].key == "numbers"
    assert total.execution_timeout.total_seconds() == 120
    assert dag.get_task("double").retries == 2
    assert dag.get_task("make").retries == 0 and dag.get_task("make").owner == "data-science"
    assert dag.params["scale"] == 2.5
    assert dag.params.get_param("scale").schema == {"type": "number"}
    assert dag.params.get_param("scale").description == "Multiplies the total"
    assert dag.get_task("make").doc_md == "Makes a list of numbers."
    assert dag.start_date.isoformat() == "2026-01-01T06:30:00+00:00"


def test_mixed_workflow_runs_values_arrive_with_their_types(run_dag, dags_folder, mixed_folder):
    loader = LOADER.format(folder="wf_mixed")
    result = run_dag(loader, "wf_mixed", name="wf_mixed_loader.py", run_conf={"scale": 0.5, "n": 5})
    assert result.task_states() == {"make": "success", "total": "success", "double": "success",
                                    "report": "success"}  # fmt: skip
    assert result.xcom("make", "numbers") == [0, 1, 2, 3, 4]
    # a list from one step and a float global parameter arrive typed in the next step
    assert result.xcom("total", "total") == 5.0
    assert result.xcom("total", "kind") == "float"
    assert result.xcom("double", "doubled") == 10  # int from make.count, doubled in the notebook
    report = result.xcom("report")
    assert report.startswith("total=5") and report.endswith(' doubled=10 label=run "A" ünïcode'), report


def test_loader_builds_one_dag_per_file_and_reports_all_broken_files(tmp_path, mixed_folder):
    shutil.copy(DATA / "mixed.yaml", tmp_path / "a.yaml")
    shutil.copy(DATA / "double.ipynb", tmp_path)
    data = (DATA / "mixed.yaml").read_text().replace("id: wf_mixed", "id: wf_mixed_json")
    import yaml

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text(json.dumps(yaml.safe_load(data), default=str, indent=1))
    shutil.copy(DATA / "double.ipynb", tmp_path / "sub")
    found: dict = {}
    dags = load_workflows(tmp_path, found)
    assert sorted(dags) == ["wf_mixed", "wf_mixed_json"]
    assert found["workflow__wf_mixed"] is dags["wf_mixed"]
    shutil.copy(DATA / "bad.yaml", tmp_path / "c.yaml")
    (tmp_path / "d.yml").write_text("version: 1\nid: d\nsteps: [{id: a, type: nope}]\n")
    from airflow_mlplatform.exceptions import WorkflowValidationError

    with pytest.raises(WorkflowValidationError) as info:
        load_workflows(tmp_path, {})
    assert {Path(e.file).name for e in info.value.errors} == {"c.yaml", "d.yml"}
    assert sorted(load_workflows(tmp_path, {}, on_error="log")) == ["wf_mixed", "wf_mixed_json"]


PARSE_CHECK = """
import sys, json
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag  # as the dag processor: the folder is on sys.path
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
heavy = ("papermill", "nbformat", "nbclient", "jupyter_client", "kubernetes", "kubernetes_asyncio", "dask",
         "distributed", "tensorflow", "pandas")  # (Airflow's DagBag itself imports jsonschema)
print(json.dumps({"dags": sorted(bag.dags), "errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "heavy": [m for m in heavy if m in sys.modules]}))
"""


def test_parsing_a_workflow_with_dagbag_imports_no_heavy_library(tmp_path, airflow_db):
    repo = Path(__file__).resolve().parents[2]
    folder = tmp_path / "dags"
    for sub in ("notebooks", "workflows", "r", "scripts"):
        shutil.copytree(repo / "example_dags" / sub, folder / sub)
    for name in ("workflows_loader.py", "workflow_steps.py"):
        shutil.copy(repo / "example_dags" / name, folder)
    done = subprocess.run([sys.executable, "-c", PARSE_CHECK, str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert out["dags"] == ["every_step_type_workflow", "quickstart_ml_pipeline_workflow"]
    assert out["heavy"] == []


def test_a_callable_that_cannot_be_imported_is_an_error_with_its_position(tmp_path):
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nid: x\nsteps:\n  - id: p\n    type: python\n    callable: nope_mod:f\n"
    )
    from airflow_mlplatform.exceptions import WorkflowError

    with pytest.raises(WorkflowError) as info:
        load_workflow(tmp_path / "wf.yaml")
    assert (info.value.line, info.value.column) == (6, 15)
    assert "cannot import callable 'nope_mod:f'" in str(info.value)
