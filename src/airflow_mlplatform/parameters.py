"""Job parameters: DAG-level params are the global ones, an operator's are local and win."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from airflow_mlplatform.exceptions import ParameterError


def _plain(value: Any) -> Any:
    """Resolve Airflow Param objects to their values."""
    return getattr(value, "value", value) if type(value).__name__ == "Param" else value


def dag_params(context: Mapping[str, Any]) -> dict[str, Any]:
    """The DAG-level params of the running task (the global parameters).

    :param context: the task's Airflow context.
    """
    params = context.get("params") or {}
    dump = getattr(params, "dump", None)
    items = dump() if callable(dump) else dict(params)
    return {str(k): _plain(v) for k, v in items.items()}


def check_json(parameters: Mapping[str, Any], *, what: str = "parameter") -> dict[str, Any]:
    """Raise ParameterError naming the first value that cannot travel as JSON.

    :param parameters: name to value.
    :param what: the noun used in the error message.
    """
    for name, value in parameters.items():
        if not isinstance(name, str):
            raise ParameterError(f"{what} names must be strings, got {name!r}")
        try:
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as e:
            raise ParameterError(
                f"{what} {name!r} has a value of type {type(value).__name__} that is not "
                f"JSON-serializable ({e}); pass str, int, float, bool, None, list or dict, "
                "and large data or files as a path/URI"
            ) from e
        if isinstance(value, float) and math.isnan(value):
            continue
    return dict(parameters)


def merge_parameters(
    context: Mapping[str, Any] | None, local: Mapping[str, Any] | None, *, include_dag_params: bool = True
) -> dict[str, Any]:
    """Global (DAG params) overlaid with local (operator) parameters, checked for JSON.

    :param context: the task's Airflow context (None: no DAG params).
    :param local: the operator's ``parameters`` (already rendered).
    :param include_dag_params: whether DAG-level params are passed to the job.
    """
    merged: dict[str, Any] = dag_params(context) if (context is not None and include_dag_params) else {}
    if local:
        if not isinstance(local, Mapping):
            raise ParameterError(f"parameters must be a dict of name to value, got {type(local).__name__}")
        merged.update(local)
    return check_json(merged)
