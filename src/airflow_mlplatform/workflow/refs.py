"""Value references in workflow files: ``${{ steps.ID.outputs.NAME }}``, ``${{ params.NAME }}``
and ``${{ models.NAME@ALIAS }}``.

A string that is exactly one reference becomes a typed value at run time: a step output
becomes the upstream task's XComArg (``train.output["model_path"]``), a global parameter
becomes :func:`param` (resolved from the DAG run's params). A reference inside a longer
string becomes Jinja (``{{ ti.xcom_pull(...) }}`` / ``{{ params.NAME }}``) and the result is
a string. A model reference must be the whole value: it becomes a
:class:`~airflow_mlplatform.models.ModelRef`, resolved when the task runs to the model's local
path (the version used goes into the execution record).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

REF_RE = re.compile(r"\$\{\{(.*?)\}\}")
_STEP_RE = re.compile(r"^steps\.([A-Za-z0-9_\-]+)\.outputs\.(.+)$")
_PARAM_RE = re.compile(r"^params\.([A-Za-z_][A-Za-z0-9_]*)$")
_MODEL_RE = re.compile(r"^models\.([A-Za-z0-9][A-Za-z0-9_.\-]*)@([A-Za-z_][A-Za-z0-9_\-]*)$")


@dataclass(frozen=True)
class StepOutput:
    """``${{ steps.STEP.outputs.NAME }}``: a value recorded by another step."""

    step: str
    name: str

    def jinja(self, task_ids: Mapping[str, str] | None = None) -> str:
        """The Jinja expression that pulls this value (always rendered as a string).

        :param task_ids: step id -> task id (default: the same).
        """
        task_id = (task_ids or {}).get(self.step, self.step)
        return "{{ ti.xcom_pull(task_ids=%r, key=%r) }}" % (task_id, self.name)  # noqa: UP031


@dataclass(frozen=True)
class ParamRef:
    """``${{ params.NAME }}``: a global parameter of the workflow (a DAG param).

    Airflow resolves any templated value that has a ``resolve(context)`` method when it
    renders the task's templated fields, so the value arrives with its type.
    """

    name: str

    def jinja(self, task_ids: Mapping[str, str] | None = None) -> str:
        """The Jinja expression of this parameter (rendered as a string).

        :param task_ids: unused; same signature as :meth:`StepOutput.jinja`.
        """
        return "{{ params.%s }}" % self.name  # noqa: UP031

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """The parameter's value in the running task's context.

        :param context: the task's Airflow context.
        """
        return context["params"][self.name]

    def __repr__(self) -> str:
        return f"param({self.name!r})"


def param(name: str) -> ParamRef:
    """A templated value that resolves to the DAG param ``name`` with its type.

    :param name: the global parameter's name.
    """
    return ParamRef(name)


Ref = StepOutput | ParamRef


@dataclass(frozen=True)
class Interpolation:
    """A string with one or more references inside other text (rendered as a string)."""

    parts: tuple[str | StepOutput | ParamRef, ...]

    def refs(self) -> list[StepOutput | ParamRef]:
        """The references among the parts."""
        return [p for p in self.parts if not isinstance(p, str)]

    def jinja(self, task_ids: Mapping[str, str] | None = None) -> str:
        """The Jinja template of the whole string.

        :param task_ids: step id -> task id (default: the same).
        """
        return "".join(p if isinstance(p, str) else p.jinja(task_ids) for p in self.parts)


def parse_model_ref(expr: str) -> Any:
    """``models.NAME@ALIAS`` as a :class:`~airflow_mlplatform.models.ModelRef`; None for other text.

    :param expr: the text between the braces.
    """
    m = _MODEL_RE.match(expr.strip())
    if not m:
        return None
    from airflow_mlplatform.exceptions import ParameterError
    from airflow_mlplatform.models import ModelRef

    try:
        return ModelRef(m.group(1), alias=m.group(2))
    except ParameterError:
        return None


def parse_ref(expr: str) -> StepOutput | ParamRef | None:
    """Parse the inside of ``${{ ... }}``; None when it is not a known form.

    :param expr: the text between the braces.
    """
    expr = expr.strip()
    m = _STEP_RE.match(expr)
    if m:
        return StepOutput(m.group(1), m.group(2).strip())
    m = _PARAM_RE.match(expr)
    if m:
        return ParamRef(m.group(1))
    return None


def parse_string(value: str) -> tuple[Any, list[str]]:
    """Turn a string into a reference, an interpolation, or itself.

    Returns the value and the bad expressions found (empty when all are well-formed).

    :param value: a string from the workflow file.
    """
    if "${{" not in value:
        return value, []
    whole = REF_RE.fullmatch(value.strip())
    if whole and (model := parse_model_ref(whole.group(1))) is not None:
        return model, []
    bad: list[str] = []
    parts: list[str | StepOutput | ParamRef] = []
    pos = 0
    for m in REF_RE.finditer(value):
        if m.start() > pos:
            parts.append(value[pos : m.start()])
        ref = parse_ref(m.group(1))
        if ref is None:
            bad.append(m.group(0))
            parts.append(m.group(0))
        else:
            parts.append(ref)
        pos = m.end()
    if pos < len(value):
        parts.append(value[pos:])
    if "${{" in "".join(p for p in parts if isinstance(p, str)) and not bad:
        bad.append(value)
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0], bad
    return Interpolation(tuple(parts)), bad


def iter_refs(value: Any) -> Iterator[StepOutput | ParamRef]:
    """Every reference inside a converted value (dicts and lists are walked).

    :param value: a value returned by :func:`convert`.
    """
    if isinstance(value, (StepOutput, ParamRef)):
        yield value
    elif isinstance(value, Interpolation):
        yield from value.refs()
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_refs(v)
