"""The provider's settings, read from the ``[mlplatform]`` section of Airflow's configuration.

Every setting can also be given as an environment variable, e.g.
``AIRFLOW__MLPLATFORM__OUTPUT_BASE=s3://bucket/mlplatform``.
"""

from __future__ import annotations

import os
from typing import Any

SECTION = "mlplatform"
#: Where the provider's plugin app (designer, output viewer) is mounted under ``[api] base_url``.
PLUGIN_PREFIX = "/mlplatform"


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


def api_base_url() -> str:
    """``[api] base_url`` without a trailing slash ('' when unset)."""
    from airflow.sdk import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def api_base_path() -> str:
    """The path part of ``[api] base_url`` ('' or ``/prefix``): where same-origin links start."""
    from urllib.parse import urlsplit

    return urlsplit(api_base_url()).path.rstrip("/")


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from Airflow's configuration (every deferrable operator's default)."""
    from airflow.sdk import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


def deploy_storage_map() -> dict[str, str]:
    """``[mlplatform] deploy_storage_map``: JSON object of storage URI prefix -> replacement for
    deployments, e.g. ``{"file:///mnt/mlflow/": "pvc://mlflow-artifacts/"}`` where the workers
    mount the registry's artifact folder from the volume the cluster mounts ({} when unset)."""
    import json

    from airflow_mlplatform.exceptions import ConfigurationError

    raw = get_option("deploy_storage_map")
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
    except ValueError as e:
        raise ConfigurationError(
            f"[mlplatform] deploy_storage_map is not JSON ({e}); write e.g. "
            '{"file:///mnt/mlflow/": "pvc://mlflow-artifacts/"}'
        ) from e
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ConfigurationError("[mlplatform] deploy_storage_map must be a JSON object of prefix -> prefix")
    return {str(k): v for k, v in mapping.items()}


def optional_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``, or None when none is configured (environment, secrets
    backend or metadata database).

    :param conn_id: the connection id.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
