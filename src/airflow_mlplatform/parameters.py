"""Job parameters: DAG-level params are the global ones, an operator's are local and win.

Non-finite floats: a parameter may be NaN or +-Infinity (papermill injects ``float('nan')``);
the job receives it as its language's NaN/Inf (Python's ``float('nan')``, JSON ``NaN`` in
``MLPLATFORM_PARAMETERS``). Airflow sends a task's rendered template fields to its API server as
strict JSON, where such a float is refused ("Out of range float values are not JSON
compliant") before ``execute()`` runs; :class:`FiniteRenderedParameters` shows them there as
the strings ``nan``/``inf``/``-inf`` and hands the real floats to the job.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from airflow_mlplatform.exceptions import ParameterError


def _plain(value: Any) -> Any:
    """Resolve Airflow Param objects to their values."""
    return getattr(value, "value", value) if type(value).__name__ == "Param" else value


class NonFinite:
    """A NaN/Infinity parameter while it sits in a rendered template field.

    Airflow's rendered-field serializer calls ``serialize()`` on objects that have one, so the
    UI shows ``nan``/``inf``; :func:`merge_parameters` turns it back into the float.

    :param value: the float.
    """

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def serialize(self) -> str:
        """The text shown in the rendered template fields."""
        return str(self.value)

    def __repr__(self) -> str:
        return f"float({str(self.value)!r})"


def wrap_non_finite(value: Any) -> Any:
    """``value`` with NaN/Infinity floats wrapped in :class:`NonFinite` (dicts and lists walked).

    :param value: a rendered value.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return NonFinite(value)
    if isinstance(value, dict):
        return {k: wrap_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wrap_non_finite(v) for v in value]
    return value


def unwrap_non_finite(value: Any) -> Any:
    """The inverse of :func:`wrap_non_finite`.

    :param value: a value that may hold :class:`NonFinite`.
    """
    if isinstance(value, NonFinite):
        return value.value
    if isinstance(value, dict):
        return {k: unwrap_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_non_finite(v) for v in value]
    return value


class FiniteRenderedParameters:
    """Operator mixin: after rendering, non-finite floats in ``parameters`` travel as
    :class:`NonFinite`, so Airflow can store the rendered fields; the job still gets the floats."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render as Airflow does, then wrap NaN/Infinity in ``parameters``.

        :param context: the task's Airflow context.
        :param jinja_env: the Jinja environment.
        """
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        params = getattr(self, "parameters", None)
        if isinstance(params, (dict, list)):
            self.parameters = wrap_non_finite(params)


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


def _non_finite_in(value: Any) -> float | None:
    """The first NaN/Infinity float in ``value`` (dicts and lists walked), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = _non_finite_in(item)
        if found is not None:
            return found
    return None


def refuse_non_finite(parameters: Mapping[str, Any], *, what: str, why: str) -> None:
    """Raise ParameterError naming the first parameter that is or holds NaN/Infinity.

    For jobs that cannot receive them (a JSON API such as Valohai's: JSON has no NaN/Infinity).

    :param parameters: name to value.
    :param what: who cannot take them, for the message (``Valohai parameter``).
    :param why: why not, for the message.
    """
    for name, value in parameters.items():
        found = _non_finite_in(value)
        if found is not None:
            raise ParameterError(
                f"{what} {name!r} is or holds {found} ({why}); pass a finite number, or None to leave "
                "it unset, or the text (e.g. 'nan') if the job parses it itself"
            )


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
        merged.update(unwrap_non_finite(dict(local)))
    return check_json(merged)
