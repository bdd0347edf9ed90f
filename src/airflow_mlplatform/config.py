"""The provider's settings, read from the ``[mlplatform]`` section of Airflow's configuration.

Every setting can also be given as an environment variable, e.g.
``AIRFLOW__MLPLATFORM__OUTPUT_BASE=s3://bucket/mlplatform``.
"""

from __future__ import annotations

import os

SECTION = "mlplatform"


def get_option(key: str, fallback: str | None = None) -> str | None:
    """Return ``[mlplatform] key`` from Airflow's configuration.

    :param key: option name inside the ``[mlplatform]`` section.
    :param fallback: value when the option is not set.
    """
    from airflow.sdk import conf

    value = conf.get(SECTION, key, fallback=fallback)
    return value if value not in (None, "") else fallback


def output_base() -> str:
    """Base location of output notebooks, reports and execution records.

    A local path or any ObjectStoragePath URI (``s3://``, ``gs://``, ``file://``...). Default:
    ``$AIRFLOW_HOME/mlplatform/outputs``.
    """
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    default = os.path.join(home, "mlplatform", "outputs")
    return get_option("output_base", default) or default


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from Airflow's configuration (every deferrable operator's default)."""
    from airflow.sdk import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)
