"""Chain two Valohai executions: preprocess -> train, train's inputs being preprocess's outputs.

What this shows:

- ``ValohaiSubmitExecutionOperator`` submits an execution of a step declared in the
  project's ``valohai.yaml`` and waits for it to finish (in the triggerer when
  ``deferrable=True`` or when ``[operators] default_deferrable`` is on; in the worker otherwise).
- Its ``return_value`` is ``{output file name: "datum://<id>"}``: pass one output
  (``preprocess.output["train.csv"]``), or a Jinja pull, straight into the next
  execution's ``inputs``. Airflow infers the dependency from the XComArg.
- Its ``metrics`` XCom holds the last value of each metric the execution printed as a
  JSON line; ``execution_record`` holds commit, step, environment, parameters, inputs,
  outputs, metrics, duration and the link to the execution's page in Valohai.
- DAG params are global parameters: every step gets ``seed`` unless it sets its own.
- ``ValohaiDownloadOutputsOperator`` copies outputs to any ObjectStoragePath folder.

Set up a connection ``valohai_default`` of type ``valohai``: host ``https://app.valohai.com``
(or your installation), the API token in the password field, and optionally the default
project in the extra field ``project``.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_mlplatform.operators.valohai import (
    ValohaiDownloadOutputsOperator,
    ValohaiSubmitExecutionOperator,
)

with DAG(
    dag_id="example_valohai_chain",
    schedule=None,
    catchup=False,
    params={"seed": 42},
    tags=["example", "valohai"],
    doc_md=__doc__,
) as dag:
    preprocess = ValohaiSubmitExecutionOperator(
        task_id="preprocess",
        project="my-org/my-project",  # or its id; one lookup per name, then cached
        step="preprocess",
        commit="main",  # a branch, tag or commit identifier
        inputs={"raw": "s3://my-bucket/raw/data.csv"},
        parameters={"test_fraction": 0.2},
        tags=["example"],
    )

    train = ValohaiSubmitExecutionOperator(
        task_id="train",
        project="my-org/my-project",
        step="train",
        commit="main",
        inputs={
            # one output of the upstream execution, as an XComArg ...
            "train": preprocess.output["train.csv"],
            # ... or with Jinja
            "test": "{{ ti.xcom_pull(task_ids='preprocess')['test.csv'] }}",
        },
        parameters={"learning_rate": 0.01, "epochs": 3},
        environment_variables={"PYTHONHASHSEED": "0"},
        time_limit=3600,  # Valohai stops it after an hour
        tags=["example"],
    )

    download_model = ValohaiDownloadOutputsOperator(
        task_id="download_model",
        execution="{{ ti.xcom_pull(task_ids='train', key='valohai_execution')['id'] }}",
        names=["model.pkl"],
        destination="/tmp/valohai-models/{{ run_id | replace(':', '_') | replace('+', '_') }}",
    )

    train >> download_model
