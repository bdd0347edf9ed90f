"""R jobs: fit a model with an R script, then render an R Markdown report about it.

The script gets its parameters as the list ``params`` (types kept: numbers, strings, lists),
records values with the R runtime's ``record()``; the report declares ``model_path`` in its
YAML header and receives the value the script recorded.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_mlplatform.operators.rstudio import RStudioJobOperator

with DAG(
    dag_id="example_r_jobs",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"seed": Param(7, type="integer")},
    tags=["mlplatform", "example", "r"],
) as dag:
    fit = RStudioJobOperator(
        task_id="fit_mpg",
        script="r/fit_mpg.R",
        parameters={"predictors": ["wt", "hp"], "train_fraction": 0.75},
    )
    report = RStudioJobOperator(
        task_id="mpg_report",
        script="r/mpg_report.Rmd",
        parameters={"model_path": fit.output["model_path"], "title": "Run {{ run_id }}"},
    )
    fit >> report
