"""Build an Airflow DAG from a validated workflow (at DAG-parse time: cheap, no heavy imports)."""

from __future__ import annotations

import os
from typing import Any

from airflow_mlplatform.exceptions import WorkflowError
from airflow_mlplatform.workflow import refs
from airflow_mlplatform.workflow.embed import workflow_doc_md
from airflow_mlplatform.workflow.model import Workflow
from airflow_mlplatform.workflow.registry import STEP_TYPES, load_callable


def runtime_value(value: Any, ops: dict[str, Any], *, strings: bool = False) -> Any:
    """Turn references into what the operator receives: XComArg, :func:`~.refs.param`, or Jinja.

    :param value: a converted field value (may hold references).
    :param ops: step id -> operator already built.
    :param strings: render every reference as a Jinja string (for string-only fields).
    """
    if isinstance(value, refs.StepOutput):
        if strings:
            return value.jinja()
        out = ops[value.step].output
        return out if value.name == "return_value" else out[value.name]
    if isinstance(value, refs.ParamRef):
        return value.jinja() if strings else value
    if isinstance(value, refs.Interpolation):
        return value.jinja()
    if isinstance(value, dict):
        return {k: runtime_value(v, ops, strings=strings) for k, v in value.items()}
    if isinstance(value, list):
        return [runtime_value(v, ops, strings=strings) for v in value]
    return value


def build_dag(wf: Workflow) -> Any:
    """The DAG of a workflow; each step becomes its type's operator, in a task group if it names one.

    Task ids are the step ids (groups do not prefix them), so references, ``xcom_pull`` and
    export all use the names written in the workflow file.

    :param wf: a workflow returned by :func:`~.validate.check_source`.
    """
    from airflow.sdk import DAG, Param, TaskGroup

    params = {p.name: Param(p.default, **p.param_kwargs()) for p in wf.params.values()}
    doc_md = workflow_doc_md(wf.text, name=os.path.basename(wf.file), description=wf.description)
    ops: dict[str, Any] = {}
    with DAG(**wf.dag_kwargs(), params=params, doc_md=doc_md) as dag:
        groups: dict[str, Any] = {}

        def group(gid: str | None) -> Any:
            if gid is None:
                return None
            if gid not in groups:
                spec = wf.groups[gid]
                kw: dict[str, Any] = {"prefix_group_id": False, "parent_group": group(spec.parent)}
                if spec.tooltip is not None:
                    kw["tooltip"] = spec.tooltip
                groups[gid] = TaskGroup(gid, dag=dag, **kw)
            return groups[gid]

        for gid in wf.groups:
            group(gid)
        for step in wf.steps:
            st = STEP_TYPES[step.type]
            try:
                cls = st.load()
            except ImportError as e:
                raise WorkflowError(
                    f"step {step.id!r}: cannot import {st.operator}: {e}", file=wf.file
                ) from e
            callables = {}
            for k, target in step.callables.items():
                try:
                    callables[k] = load_callable(target)
                except (ImportError, AttributeError) as e:
                    line, col = step.where.get(k, (None, None))
                    raise WorkflowError(
                        f"step {step.id!r}: cannot import callable {target!r} ({e}); the dags folder is on "
                        "sys.path, so a module beside the loader works",
                        file=wf.file,
                        line=line,
                        column=col,
                    ) from e
            kwargs = {k: runtime_value(v, ops, strings=_strings(st.name, k)) for k, v in step.kwargs.items()}
            op = cls(task_id=step.id, task_group=group(step.group), **kwargs, **callables, **step.task_kwargs)
            for up in step.upstream:
                ops[up] >> op
            ops[step.id] = op
    return dag


def _strings(type_name: str, kwarg: str) -> bool:
    return any(f.strings for f in STEP_TYPES[type_name].fields.values() if f.kwarg == kwarg)
