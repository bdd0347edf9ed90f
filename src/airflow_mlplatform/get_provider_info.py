"""Provider metadata, in one place. Airflow reads it through the ``apache_airflow_provider``
entry point (``airflow providers list`` shows the provider); tests prove it agrees with the
package (version, classes that exist, connection types of the hooks).
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "airflow-provider-mlplatform"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata in the shape Airflow's ProvidersManager expects."""
    from airflow_mlplatform import __version__

    return {
        "package-name": PACKAGE_NAME,
        "name": "ML Platform",
        "description": (
            "Task types of an ML platform for Airflow: parameterized notebooks, R jobs, "
            "distributed training, Dask jobs and remote ML-platform executions."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Jupyter notebooks (papermill)",
                "external-doc-url": "https://papermill.readthedocs.io/",
                "tags": ["software"],
            },
            {
                "integration-name": "R (Rscript, R Markdown)",
                "external-doc-url": "https://rmarkdown.rstudio.com/",
                "tags": ["software"],
            },
            {
                "integration-name": "Valohai",
                "external-doc-url": "https://docs.valohai.com/",
                "tags": ["service"],
            },
            {
                "integration-name": "TensorFlow (Kubeflow training operator)",
                "external-doc-url": "https://www.kubeflow.org/docs/components/trainer/legacy-v1/user-guides/tensorflow/",
                "tags": ["software"],
            },
            {
                "integration-name": "Dask (RAPIDS)",
                "external-doc-url": "https://docs.dask.org/",
                "tags": ["software"],
            },
            {
                "integration-name": "Kubernetes (compute profiles, pods)",
                "external-doc-url": "https://kubernetes.io/docs/concepts/workloads/pods/",
                "tags": ["software"],
            },
            {
                "integration-name": "Apache Spark (spark-submit, Kubeflow Spark operator)",
                "external-doc-url": "https://spark.apache.org/docs/3.5.5/",
                "tags": ["software"],
            },
            {
                "integration-name": "MLflow (model registry, tracking)",
                "external-doc-url": "https://mlflow.org/docs/latest/ml/model-registry/",
                "tags": ["software"],
            },
            {
                "integration-name": "KServe (model deployment)",
                "external-doc-url": "https://kserve.github.io/website/",
                "tags": ["software"],
            },
        ],
        "operators": [
            {
                "integration-name": "Jupyter notebooks (papermill)",
                "python-modules": ["airflow_mlplatform.operators.notebook"],
            },
            {
                "integration-name": "R (Rscript, R Markdown)",
                "python-modules": ["airflow_mlplatform.operators.rstudio"],
            },
            {"integration-name": "Valohai", "python-modules": ["airflow_mlplatform.operators.valohai"]},
            {
                "integration-name": "TensorFlow (Kubeflow training operator)",
                "python-modules": ["airflow_mlplatform.operators.tfjob"],
            },
            {"integration-name": "Dask (RAPIDS)", "python-modules": ["airflow_mlplatform.operators.rapids"]},
            {
                "integration-name": "Kubernetes (compute profiles, pods)",
                "python-modules": ["airflow_mlplatform.operators.pod"],
            },
            {
                "integration-name": "Apache Spark (spark-submit, Kubeflow Spark operator)",
                "python-modules": ["airflow_mlplatform.operators.spark"],
            },
            {
                "integration-name": "MLflow (model registry, tracking)",
                "python-modules": ["airflow_mlplatform.operators.models"],
            },
            {
                "integration-name": "KServe (model deployment)",
                "python-modules": ["airflow_mlplatform.operators.deploy"],
            },
        ],
        "hooks": [
            {"integration-name": "Valohai", "python-modules": ["airflow_mlplatform.hooks.valohai"]},
            {"integration-name": "Dask (RAPIDS)", "python-modules": ["airflow_mlplatform.hooks.dask"]},
            {
                "integration-name": "Kubernetes (compute profiles, pods)",
                "python-modules": ["airflow_mlplatform.hooks.kubernetes"],
            },
            {
                "integration-name": "MLflow (model registry, tracking)",
                "python-modules": ["airflow_mlplatform.hooks.mlflow"],
            },
            {
                "integration-name": "KServe (model deployment)",
                "python-modules": ["airflow_mlplatform.hooks.serving"],
            },
        ],
        "triggers": [
            {"integration-name": "Valohai", "python-modules": ["airflow_mlplatform.triggers.valohai"]},
            {
                "integration-name": "Kubernetes (compute profiles, pods)",
                "python-modules": ["airflow_mlplatform.triggers.kubernetes"],
            },
        ],
        "sensors": [
            {"integration-name": "Valohai", "python-modules": ["airflow_mlplatform.sensors.valohai"]},
        ],
        "connection-types": [
            {
                "connection-type": "valohai",
                "hook-class-name": "airflow_mlplatform.hooks.valohai.ValohaiHook",
                "hook-name": "Valohai",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "Valohai URL", "password": "API token"},
                    "placeholders": {"host": "https://app.valohai.com"},
                },
                "conn-fields": {
                    "project": {
                        "label": "Default project",
                        "description": "Project id or owner/name used when an operator names none.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            },
            {
                "connection-type": "dask",
                "hook-class-name": "airflow_mlplatform.hooks.dask.DaskHook",
                "hook-name": "Dask",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "password"],
                    "relabeling": {
                        "host": "Scheduler host (or full address)",
                        "schema": "Protocol (tcp, tls)",
                    },
                    "placeholders": {
                        "host": "dask-scheduler.ml.svc or tcp://10.0.0.5:8786",
                        "port": "8786",
                        "schema": "tcp",
                        "extra": '{"timeout": 10}',
                    },
                },
            },
            {
                "connection-type": "mlflow",
                "hook-class-name": "airflow_mlplatform.hooks.mlflow.MLflowHook",
                "hook-name": "MLflow",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {"host": "Tracking URI (server URL or database URI)"},
                    "placeholders": {
                        "host": "http://mlflow.ml.svc:5000 or postgresql://user@db/mlflow",
                        "extra": '{"artifact_root": "s3://bucket/mlflow"}',
                    },
                },
            },
        ],
        "extra-links": [
            "airflow_mlplatform.links.OutputNotebookLink",
            "airflow_mlplatform.operators.valohai.ValohaiExecutionLink",
        ],
        "config": {
            "mlplatform": {
                "description": "Settings of the airflow-mlplatform provider.",
                "options": {
                    "output_base": {
                        "description": (
                            "Where output notebooks, reports and execution records are written: a "
                            "local path or any ObjectStoragePath URI (s3://, gs://, file://). Each "
                            "try of each task gets its own folder below it."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://my-bucket/mlplatform",
                        "default": None,
                    },
                    "compute_profiles": {
                        "description": "Path of the YAML file that defines the named compute profiles.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/config/compute_profiles.yaml",
                        "default": None,
                    },
                    "workflow_allowed_roots": {
                        "description": (
                            "Comma-separated absolute folders that notebook, script and folder paths "
                            "in workflow files may point into (symlinks resolved). Default: the folder "
                            "tree the workflow file belongs to (the DAGs folder when the file is in it, "
                            "else the git work tree holding it, else the parent of the file's folder)."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/dags,/opt/airflow/shared-notebooks",
                        "default": None,
                    },
                    "workflow_callable_modules": {
                        "description": (
                            "Comma-separated modules (with their submodules) whose functions workflow "
                            "python steps may call. Default: any importable module (workflow files "
                            "are code)."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "team_steps,ml_platform.steps",
                        "default": None,
                    },
                    "ship_max_bytes": {
                        "description": "The most a job's folder may hold, in bytes, when it is shipped "
                        "to its pod (ship='folder').",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "52428800",
                        "default": "20971520",
                    },
                    "tracking": {
                        "description": "'mlflow': every task logs an MLflow run (experiment = DAG id) "
                        "into the mlflow connection's store, or the embedded one. Unset: no tracking.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "mlflow",
                        "default": None,
                    },
                    "tracking_conn_id": {
                        "description": "The mlflow connection tracking logs to (missing: the embedded store).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "mlflow_tracking",
                        "default": "mlflow_default",
                    },
                    "tracking_required": {
                        "description": "A tracking failure fails the task (default: retried, then a warning).",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "mlflow_home": {
                        "description": "Folder of the embedded MLflow store (SQLite + artifacts; one host "
                        "only), used when no mlflow connection exists. Default: $AIRFLOW_HOME/mlplatform/mlflow.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/mlflow",
                        "default": None,
                    },
                },
            },
        },
    }
