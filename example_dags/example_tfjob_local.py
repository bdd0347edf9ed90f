"""Distributed TensorFlow training with TFJobOperator, replicas as local processes.

Two Workers train a small classifier on scikit-learn's digits with
MultiWorkerMirroredStrategy; each gets its own TF_CONFIG on 127.0.0.1. Worker 0 records
``accuracy``, which the next task reads with its type through ``train.output["accuracy"]``.
Switch ``backend`` to ``kubeflow`` (and name an ``image``/``compute`` profile) to run the same
script as a TFJob on Kubernetes.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_mlplatform.operators.tfjob import TFJobOperator

with DAG(
    dag_id="example_tfjob_local",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"epochs": Param(5, type="integer", minimum=1, description="Training epochs")},
    tags=["mlplatform", "example", "tensorflow"],
) as dag:
    train = TFJobOperator(
        task_id="train",
        command=["python", "scripts/tf_digits_train.py"],
        replicas={"Worker": 2},
        parameters={"batch_size": 32, "hidden_units": 32, "learning_rate": 0.5},
        backend="local",
    )

    @task
    def report(accuracy: float) -> str:
        verdict = "good" if accuracy >= 0.8 else "needs work"
        print(f"test accuracy {accuracy:.3f}: {verdict}")
        return verdict

    report(train.output["accuracy"])
