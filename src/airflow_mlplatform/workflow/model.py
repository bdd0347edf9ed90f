"""The validated workflow: plain dataclasses the builder and the code generator read."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1


@dataclass
class ParamSpec:
    """A global parameter (becomes a DAG ``Param``).

    :param name: its name (``params.NAME`` in references and Jinja).
    :param type: JSON Schema type: string, integer, number, boolean, array, object, null.
    :param default: default value.
    :param description: shown in the trigger form.
    :param extra: other JSON Schema keywords passed to ``Param`` (enum, minimum, ...).
    """

    name: str
    type: str | None
    default: Any
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def param_kwargs(self) -> dict[str, Any]:
        """Keywords for ``airflow.sdk.Param`` besides the default."""
        kw: dict[str, Any] = {}
        if self.type is not None:
            kw["type"] = self.type
        if self.description is not None:
            kw["description"] = self.description
        kw.update(self.extra)
        return kw


@dataclass
class GroupSpec:
    """A task group.

    :param id: group id.
    :param tooltip: shown in the UI.
    :param parent: id of the enclosing group, if nested.
    """

    id: str
    tooltip: str | None = None
    parent: str | None = None


@dataclass
class StepSpec:
    """A step, ready to become one operator.

    :param id: step id (the task id).
    :param type: step type name (a key of the registry).
    :param kwargs: operator keyword -> value (references converted, paths absolute).
    :param outputs: declared output names.
    :param depends_on: explicit upstream step ids.
    :param upstream: every upstream step id (explicit and inferred), in file order.
    :param group: task group id.
    :param task_kwargs: BaseOperator keywords (retries, retry_delay, execution_timeout, ...).
    :param callables: operator keyword -> ``module:function`` for callables.
    :param where: operator keyword -> (line, column) of the field, for errors found when building.
    """

    id: str
    type: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    group: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    callables: dict[str, str] = field(default_factory=dict)
    where: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)


@dataclass
class Workflow:
    """A validated workflow.

    :param id: the DAG id.
    :param file: where it was read from.
    :param text: the source text, kept whole for lossless export.
    :param steps: in an order where every step comes after its upstream steps.
    :param layout: the designer's node positions (``step id -> {x, y}``); the builder ignores it.
    """

    id: str
    file: str
    text: str
    version: int = FORMAT_VERSION
    description: str | None = None
    schedule: str | None = None
    start_date: datetime.datetime | None = None
    catchup: bool = False
    max_active_runs: int | None = None
    tags: list[str] = field(default_factory=list)
    default_args: dict[str, Any] = field(default_factory=dict)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    groups: dict[str, GroupSpec] = field(default_factory=dict)
    steps: list[StepSpec] = field(default_factory=list)
    layout: dict[str, dict[str, float]] = field(default_factory=dict)

    def dag_kwargs(self) -> dict[str, Any]:
        """Keywords for ``DAG`` except ``params`` and ``doc_md`` (set by the builder)."""
        kw: dict[str, Any] = {"dag_id": self.id, "schedule": self.schedule}
        if self.description is not None:
            kw["description"] = self.description
        if self.start_date is not None:
            kw["start_date"] = self.start_date
        kw["catchup"] = self.catchup
        if self.max_active_runs is not None:
            kw["max_active_runs"] = self.max_active_runs
        if self.tags:
            kw["tags"] = list(self.tags)
        if self.default_args:
            kw["default_args"] = dict(self.default_args)
        return kw
