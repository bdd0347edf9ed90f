"""Whether a compute profile named in a workflow exists (through :mod:`airflow_mlplatform.compute`)."""

from __future__ import annotations


def compute_problem(name: str) -> str | None:
    """The reason profile ``name`` cannot be used, or None when it can.

    The profiles module is imported lazily; it parses the profiles file once per modification
    time, so this is cheap enough for every DAG parse.

    :param name: the profile name written in the workflow.
    """
    try:
        from airflow_mlplatform.compute import get_profile
    except ImportError:  # pragma: no cover - the module ships with the provider
        return None
    from airflow_mlplatform.exceptions import MLPlatformError

    try:
        get_profile(name)
    except MLPlatformError as e:
        return str(e)
    return None
