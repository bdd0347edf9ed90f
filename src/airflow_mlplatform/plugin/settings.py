"""The designer's and output viewer's settings, from ``[mlplatform]`` (and ``[api] base_url``).

Cheap to import: only the provider's config helper. Read at call time, so a test (or an
operator) changing the configuration sees the change.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_mlplatform import config

MODES = ("react", "iframe")
#: Largest JSON request body the API accepts (a 200-step workflow is about 60 KB).
MAX_BODY_BYTES = 2 * 1024 * 1024


def dags_folder() -> Path:
    """Airflow's ``[core] dags_folder``."""
    from airflow.configuration import conf

    return Path(os.path.expanduser(conf.get("core", "dags_folder")))


def workflows_folder() -> Path:
    """Where the designer saves workflows: ``[mlplatform] workflows_folder``, default
    ``<dags_folder>/workflows``."""
    value = config.get_option("workflows_folder")
    return Path(os.path.expanduser(value)) if value else dags_folder() / "workflows"


def designer_roots() -> list[Path]:
    """Folders the catalog browses: ``[mlplatform] designer_roots`` (comma-separated), default
    the dags folder. The workflows folder is always readable too."""
    value = config.get_option("designer_roots") or ""
    roots = [Path(os.path.expanduser(p.strip())) for p in value.split(",") if p.strip()]
    return roots or [dags_folder()]


def designer_read_only() -> bool:
    """``[mlplatform] designer_read_only``: the designer never saves (a git DAG bundle)."""
    return (config.get_option("designer_read_only", "false") or "false").strip().lower() in (
        "true",
        "1",
        "yes",
    )


def designer_mode() -> str:
    """``[mlplatform] designer_mode``: ``react`` (default; Airflow's React-app loader) or
    ``iframe`` (an external view serving the standalone page)."""
    from airflow_mlplatform.exceptions import ConfigurationError

    mode = (config.get_option("designer_mode", "react") or "react").strip().lower()
    if mode not in MODES:
        raise ConfigurationError(
            f"[mlplatform] designer_mode must be one of {', '.join(MODES)}, got {mode!r}"
        )
    return mode


def base_url() -> str:
    """``[api] base_url`` without a trailing slash ('' when unset)."""
    return config.api_base_url()


def base_path() -> str:
    """The path part of ``[api] base_url`` ('' or ``/prefix``): where same-origin links start."""
    return config.api_base_path()
