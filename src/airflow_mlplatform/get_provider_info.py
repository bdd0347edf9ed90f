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
        ],
        "operators": [
            {
                "integration-name": "Jupyter notebooks (papermill)",
                "python-modules": ["airflow_mlplatform.operators.notebook"],
            },
        ],
        "hooks": [],
        "triggers": [],
        "sensors": [],
        "connection-types": [],
        "extra-links": [
            "airflow_mlplatform.links.OutputNotebookLink",
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
                },
            },
        },
    }
