"""R steps of a workflow: an R script, then an R Markdown report fed by its recorded value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repo_paths import REPO

pytestmark = [
    pytest.mark.r,
    pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is installed by make setup / .ci/run"),
]

WORKFLOW = """\
version: 1
id: wf_r_jobs
params:
  seed: 7
steps:
  - id: fit
    type: r
    script: ../r/fit_mpg.R
    parameters: {predictors: [wt, hp], train_fraction: 0.75}
    outputs: [rmse, model_path]
  - id: report
    type: r
    script: ../r/mpg_report.Rmd
    parameters:
      model_path: ${{ steps.fit.outputs.model_path }}
      title: "Run {{ run_id }}"
"""
LOADER = """\
from pathlib import Path

from airflow_mlplatform.workflow import load_workflows

# airflow dag loader
load_workflows(Path(__file__).parent / "wf_r", globals())
"""


def test_r_workflow_runs(run_dag, dags_folder):
    shutil.copytree(REPO / "example_dags" / "r", dags_folder / "r", dirs_exist_ok=True)
    (dags_folder / "wf_r").mkdir(exist_ok=True)
    (dags_folder / "wf_r" / "r.yaml").write_text(WORKFLOW)
    result = run_dag(LOADER, "wf_r_jobs", name="wf_r_loader.py")
    assert result.task_states() == {"fit": "success", "report": "success"}
    fit = result.xcom("fit")
    assert 0 < result.xcom("fit", "rmse") < 10
    assert Path(fit["model_path"]).is_file()
    rec = result.xcom("report", "execution_record")
    assert rec["parameters"] == {"model_path": fit["model_path"], "title": f"Run {result.dag_run.run_id}"}
