"""The R example DAG: an R script, then an R Markdown report fed by its recorded value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repo_paths import REPO

pytestmark = [
    pytest.mark.r,
    pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is installed by make setup / .ci/run"),
]


def test_example_r_jobs(run_dag, dags_folder):
    shutil.copytree(REPO / "example_dags" / "r", dags_folder / "r", dirs_exist_ok=True)
    result = run_dag(REPO / "example_dags" / "example_r_jobs.py", "example_r_jobs")
    assert result.task_states() == {"fit_mpg": "success", "mpg_report": "success"}

    fit = result.xcom("fit_mpg")
    assert set(fit) == {"rmse", "model_path", "coefficients"}
    assert 0 < fit["rmse"] < 10
    assert set(fit["coefficients"]) == {"(Intercept)", "wt", "hp"}
    assert Path(fit["model_path"]).is_file()
    assert result.xcom("fit_mpg", "rmse") == fit["rmse"]
    assert set(result.xcom("fit_mpg", "metrics")) == {"r_squared", "rmse"}
    record = result.xcom("fit_mpg", "execution_record")
    assert record["parameters"] == {"seed": 7, "predictors": ["wt", "hp"], "train_fraction": 0.75}
    assert record["environment"]["language"] == "R" and record["environment"]["r_version"].startswith("4.")

    report = result.xcom("mpg_report")
    assert 0 < report["adj_r_squared"] < 1
    rec = result.xcom("mpg_report", "execution_record")
    # only the parameters the document declares reach it (the global "seed" does not)
    assert rec["parameters"] == {"model_path": fit["model_path"], "title": f"Run {result.dag_run.run_id}"}
    html = Path(rec["outputs"]["report"])
    assert html.name == "mpg_report.html" and html.is_file()
    text = html.read_text()
    assert f"Run {result.dag_run.run_id}" in text and "mpg ~ wt + hp" in text
    assert rec["metrics"]["summary"]["residual_sd"] > 0
