"""Quickstart: a real ML pipeline, prepare -> train -> evaluate -> register -> promote-if-better.

Runs everything locally in the worker. ``C`` is a global (DAG) parameter; ``test_size``
is local to ``prepare``. Each notebook records values with
``airflow_mlplatform.runtime.record``; the next notebook receives them through
``op.output["name"]`` with their types. The trained model becomes a version of
``quickstart-classifier`` in MLflow's registry (the embedded store under AIRFLOW_HOME when no
``mlflow`` connection exists), with train's parameters, metrics and code sha as lineage; it
becomes the ``champion`` when its validation accuracy is at least the champion's. A promotion
emits the champion's Asset event: ``quickstart_batch_scoring`` is scheduled on it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_mlplatform.operators.models import PromoteModelOperator, RegisterModelOperator
from airflow_mlplatform.operators.notebook import NotebookOperator

MODEL = "quickstart-classifier"

with DAG(
    dag_id="quickstart_ml_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"C": Param(1.0, type="number", description="Inverse regularisation strength")},
    tags=["mlplatform", "example"],
) as dag:
    prepare = NotebookOperator(
        task_id="prepare",
        notebook="notebooks/prepare.ipynb",
        parameters={"test_size": 0.25, "seed": 42},
    )
    train = NotebookOperator(
        task_id="train",
        notebook="notebooks/train.ipynb",
        parameters={"train_path": prepare.output["train_path"]},
    )
    evaluate = NotebookOperator(
        task_id="evaluate",
        notebook="notebooks/evaluate.ipynb",
        parameters={"model_path": train.output["model_path"], "test_path": prepare.output["test_path"]},
        include_dag_params=False,
    )
    register = RegisterModelOperator(
        task_id="register",
        model_name=MODEL,
        artifact=train.output["model_path"],
        source_task="train",
    )
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL,
        version=register.output["version"],
        alias="champion",
        gate="val_accuracy >= champion.val_accuracy",
    )
    prepare >> train >> evaluate >> register >> promote
