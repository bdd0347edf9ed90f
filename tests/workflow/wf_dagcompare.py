"""Describe a DAG as plain data (tasks, every init parameter, edges, groups, params) to compare two."""

from __future__ import annotations

import datetime
from typing import Any

_SKIP = {"dag", "task_group", "params"}


def norm(value: Any) -> Any:
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    from airflow_mlplatform.workflow.refs import ParamRef

    if isinstance(value, PlainXComArg):
        return ("xcom", value.operator.task_id, value.key)
    if isinstance(value, ParamRef):
        return ("param", value.name)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    if callable(value):
        return ("callable", value.__module__, value.__qualname__)
    if isinstance(value, (datetime.datetime, datetime.timedelta)):
        return value
    return value


def snapshot(dag: Any) -> dict[str, Any]:
    """Everything the builder and the generated file decide, as comparable data."""
    tasks = {}
    for t in dag.tasks:
        init = {k: norm(v) for k, v in t._BaseOperator__init_kwargs.items() if k not in _SKIP}
        tasks[t.task_id] = {
            "class": f"{type(t).__module__}.{type(t).__qualname__}",
            "init": init,
            "group": t.task_group.group_id if t.task_group else None,
            "upstream": sorted(t.upstream_task_ids),
            "downstream": sorted(t.downstream_task_ids),
            "attrs": {
                a: norm(getattr(t, a, None))
                for a in ("retries", "retry_delay", "execution_timeout", "trigger_rule", "owner", "doc_md")
            },
        }
    groups = {
        gid: (g.tooltip, g.parent_group.group_id if g.parent_group else None, sorted(g.children))
        for gid, g in dag.task_group_dict.items()
    }
    return {
        "dag_id": dag.dag_id,
        "description": dag.description,
        "timetable": (type(dag.timetable).__name__, {k: repr(v) for k, v in vars(dag.timetable).items()}),
        "start_date": dag.start_date,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tags": sorted(dag.tags),
        "default_args": norm(dag.default_args),
        "params": {
            k: (p.value if p.has_value else None, p.schema, p.description) for k, p in dag.params.items()
        },
        "doc_md": dag.doc_md,
        "groups": groups,
        "tasks": tasks,
    }
