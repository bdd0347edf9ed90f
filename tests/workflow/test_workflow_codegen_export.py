"""Generated Python DAG files build the same DAG; DAGs export back to their workflow losslessly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wf_dagcompare

from airflow_mlplatform.exceptions import WorkflowError
from airflow_mlplatform.testing import load_dag
from airflow_mlplatform.workflow import export_dag, load_workflow, read_workflow
from airflow_mlplatform.workflow.codegen import generate_file, generate_source, ruff_executable

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "example_dags" / "workflows" / "quickstart_ml_pipeline.yaml"


@pytest.fixture(autouse=True)
def _steps_module_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(DATA))


@pytest.mark.parametrize(("workflow", "dag_id"), [(QUICKSTART, "quickstart_ml_pipeline_workflow"),
                                                  (DATA / "mixed.yaml", "wf_mixed")])  # fmt: skip
def test_generated_file_builds_the_same_dag(tmp_path, workflow, dag_id):
    built = load_workflow(workflow)
    out = tmp_path / "generated"
    path = generate_file(read_workflow(workflow), out)
    assert path == out / f"{dag_id}.py"
    generated = load_dag(path, dag_id)
    a, b = wf_dagcompare.snapshot(built), wf_dagcompare.snapshot(generated)
    assert sorted(a["tasks"]) == sorted(b["tasks"])
    for task_id in a["tasks"]:  # task by task, parameter by parameter, edge by edge
        ta, tb = a["tasks"][task_id], b["tasks"][task_id]
        assert ta["class"] == tb["class"], task_id
        assert ta["init"] == tb["init"], task_id
        assert (ta["upstream"], ta["downstream"]) == (tb["upstream"], tb["downstream"]), task_id
        assert ta == tb, task_id
    assert {k: a[k] for k in a if a[k] != b[k]} == {k: b[k] for k in b if a[k] != b[k]}
    assert export_dag(generated) == workflow.read_text()


def test_generated_file_is_readable_and_ruff_clean(tmp_path):
    text = generate_source(read_workflow(DATA / "mixed.yaml"), out_dir=tmp_path)
    assert "from airflow_mlplatform.operators.notebook import NotebookOperator" in text
    assert "from wf_test_steps import make_numbers\n" in text
    assert "from wf_test_steps import total as _total\n" in text  # `total` is also a task's name
    assert 'op_kwargs={"numbers": make.output["numbers"], "scale": param("scale")}' in text
    assert "    make >> total\n" in text
    assert """"DOUBLED": "{{ ti.xcom_pull(task_ids='double', key='doubled') }}",""" in text
    assert max(len(line) for line in text.splitlines() if not line.startswith(("#", "  -", "    "))) <= 110
    ruff = ruff_executable()
    if ruff is None:
        pytest.skip("ruff is not installed")
    target = tmp_path / "dag.py"
    target.write_text(text)
    check = subprocess.run([ruff, "check", "--isolated", "--target-version", "py310", "--select", "E,F,W,I,UP,B", "--ignore", "E501",
                            "--line-length", "110", str(target)], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([ruff, "format", "--isolated", "--line-length", "110", "--diff", str(target)],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert fmt.returncode == 0, fmt.stdout
    # without ruff the text is already formatted the same way (modulo line wrapping ruff may add)
    raw = generate_source(read_workflow(DATA / "mixed.yaml"), out_dir=tmp_path, format_with_ruff=False)
    compile(raw, "raw.py", "exec")


def test_cli_generate_writes_the_file(tmp_path):
    done = subprocess.run([sys.executable, "-m", "airflow_mlplatform.cli", "workflow", "generate", str(QUICKSTART),
                           "-o", str(tmp_path)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "quickstart_ml_pipeline_workflow.py").is_file()
    bad = subprocess.run([sys.executable, "-m", "airflow_mlplatform.cli", "workflow", "generate",
                          str(DATA / "bad.yaml"), "-o", str(tmp_path)], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "bad.yaml:4:30" in bad.stderr


def test_export_is_lossless_and_round_trips(tmp_path):
    original = (DATA / "mixed.yaml").read_text()
    dag = load_workflow(DATA / "mixed.yaml")
    exported = export_dag(dag)
    assert exported == original  # comments, order and formatting kept: the text itself
    again = tmp_path / "mixed.yaml"
    again.write_text(exported)
    shutil.copy(DATA / "double.ipynb", tmp_path)
    rebuilt = repr(wf_dagcompare.snapshot(load_workflow(again))).replace(str(tmp_path), str(DATA))
    assert rebuilt == repr(wf_dagcompare.snapshot(dag))


def test_export_survives_dag_serialization():
    from airflow.serialization.serialized_objects import DagSerialization

    dag = load_workflow(QUICKSTART)
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert export_dag(restored) == QUICKSTART.read_text()


def test_export_of_a_dag_not_built_from_a_workflow_is_a_clear_error():
    from airflow.sdk import DAG

    with pytest.raises(WorkflowError, match="was not built from a workflow file"):
        export_dag(DAG(dag_id="plain", schedule=None, doc_md="just docs"))


def test_cli_export_finds_the_dag_in_the_dags_folder(tmp_path, airflow_db):
    folder = tmp_path / "dags"
    shutil.copytree(REPO / "example_dags" / "notebooks", folder / "notebooks")
    (folder / "workflows").mkdir()
    shutil.copy(QUICKSTART, folder / "workflows")
    shutil.copy(REPO / "example_dags" / "workflows_loader.py", folder)
    cli = [sys.executable, "-m", "airflow_mlplatform.cli", "workflow", "export"]
    out = tmp_path / "exported.yaml"
    done = subprocess.run([*cli, "quickstart_ml_pipeline_workflow", "--dags-folder", str(folder), "-o", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_text() == QUICKSTART.read_text()
    missing = subprocess.run([*cli, "nope", "--dags-folder", str(folder)], capture_output=True, text=True)
    assert missing.returncode == 1 and "no DAG 'nope'" in missing.stderr


def test_json_workflow_exports_its_exact_text(tmp_path):
    text = '{\n  "version": 1,\n  "id": "json_wf",\n  "steps": [{"id": "a", "type": "bash", "command": "echo \\"```\\""}]\n}'
    path = tmp_path / "wf.json"
    path.write_text(text)
    dag = load_workflow(path)
    assert "```json" in dag.doc_md
    assert export_dag(dag) == text + "\n"  # a missing final newline is the one thing added


def test_generated_file_keeps_compute_profiles_and_overrides(tmp_path, monkeypatch):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("profiles:\n  cpu-small:\n    backend: local\n")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(profiles))
    shutil.copy(DATA / "double.ipynb", tmp_path)
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nid: wf_compute\nsteps:\n"
        "  - {id: a, type: notebook, notebook: double.ipynb, compute: cpu-small}\n"
        "  - id: b\n    type: notebook\n    notebook: double.ipynb\n"
        "    compute: {profile: cpu-small, env: {MODE: fast}}\n"
    )
    built = load_workflow(tmp_path / "wf.yaml")
    assert built.get_task("b").compute_overrides == {"env": {"MODE": "fast"}}
    generated = load_dag(generate_file(read_workflow(tmp_path / "wf.yaml"), tmp_path / "out"), "wf_compute")
    assert wf_dagcompare.snapshot(generated) == wf_dagcompare.snapshot(built)
