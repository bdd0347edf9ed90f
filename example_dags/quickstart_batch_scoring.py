"""Quickstart, part two: batch scoring with whatever model is the champion now.

Scheduled on the champion's Asset: it runs each time ``quickstart_ml_pipeline`` promotes a
new version of ``quickstart-classifier``. ``ModelRef`` resolves, when the task runs, to the
champion's local files; the version it used is in the task's execution record
(``models.used``) and XCom ``models_used``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.models.assets import model_asset
from airflow_mlplatform.operators.notebook import NotebookOperator

MODEL = "quickstart-classifier"

with DAG(
    dag_id="quickstart_batch_scoring",
    schedule=[model_asset(MODEL, "champion")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlplatform", "example"],
) as dag:
    score = NotebookOperator(
        task_id="score",
        notebook="notebooks/score.ipynb",
        parameters={"model_path": ModelRef(MODEL, alias="champion"), "batch_size": 100},
    )
