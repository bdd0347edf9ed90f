"""Whether a compute profile named in a workflow exists (through :mod:`airflow_mlplatform.compute`)."""

from __future__ import annotations

from typing import Any


def compute_problem(name: str, overrides: dict[str, Any] | None = None) -> str | None:
    """The reason profile ``name`` cannot be used, or None when it can.

    The profiles module is imported lazily; it parses the profiles file once per modification
    time, so this is cheap enough for every DAG parse.

    :param name: the profile name written in the workflow.
    :param overrides: single fields overridden by the step.
    """
    try:
        from airflow_mlplatform.compute import get_profile
    except ImportError:  # pragma: no cover - the module ships with the provider
        return None
    from airflow_mlplatform.exceptions import MLPlatformError

    try:
        get_profile(name, **(overrides or {}))
    except MLPlatformError as e:
        return str(e)
    return None
