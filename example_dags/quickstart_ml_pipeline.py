"""Quickstart: a real ML pipeline, prepare -> train -> evaluate -> register -> promote-if-better -> deploy.

Runs everything locally in the worker. ``C`` is a global (DAG) parameter; ``test_size``
is local to ``prepare``. Each notebook records values with
``airflow_mlplatform.runtime.record``; the next notebook receives them through
``op.output["name"]`` with their types. The trained model becomes a version of
``quickstart-classifier`` in MLflow's registry (the embedded store under AIRFLOW_HOME when no
``mlflow`` connection exists), with train's parameters, metrics and code sha as lineage; it
becomes the ``champion`` when its validation accuracy is at least the champion's. A promotion
emits the champion's Asset event: ``quickstart_batch_scoring`` is scheduled on it.

``deploy`` rolls the champion out to KServe (an InferenceService, with a 20% canary that must
answer a smoke request before it takes all traffic). Without a ``kubernetes_default``
connection it is skipped, with a log line saying so; with one, the cluster must be able to
read the model's files (see docs/deploy.md: an MLflow server on object storage, or
``[mlplatform] deploy_storage_map``).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.operators.deploy import DeployModelOperator
from airflow_mlplatform.operators.models import PromoteModelOperator, RegisterModelOperator
from airflow_mlplatform.operators.notebook import NotebookOperator

MODEL = "quickstart-classifier"
#: One row of the breast cancer data (30 features): the deploy step's smoke request (inference protocol v2).
FIRST_ROW = (
    "17.99 10.38 122.8 1001.0 0.1184 0.2776 0.3001 0.1471 0.2419 0.0787 1.095 0.9053 8.589 153.4 0.0064 "
    "0.049 0.0537 0.0159 0.03 0.0062 25.38 17.33 184.6 2019.0 0.1622 0.6656 0.7119 0.2654 0.4601 0.1189"
)
SMOKE_REQUEST = {
    "inputs": [
        {
            "name": "features",
            "shape": [1, 30],
            "datatype": "FP64",
            "data": [float(v) for v in FIRST_ROW.split()],
        }
    ]
}

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
    deploy = DeployModelOperator(
        task_id="deploy",
        model=ModelRef(MODEL, alias="champion"),
        name="quickstart-classifier",
        model_format="sklearn",
        canary_traffic_percent=20,
        smoke_request=SMOKE_REQUEST,
        canary_gate="errors == 0",
        skip_without_kubernetes=True,
    )
    prepare >> train >> evaluate >> register >> promote >> deploy
