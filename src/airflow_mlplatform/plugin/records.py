"""Execution records from Airflow's metadata DB: the designer's hints and the output viewer's
fallback when a try's folder holds no record."""

from __future__ import annotations

from typing import Any

RECORD_KEY = "execution_record"


def task_record(*, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    """The execution record a task pushed to XCom (its latest try), or None.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param map_index: the mapped index.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=RECORD_KEY, map_index=map_index)
            .one_or_none()
        )
        return XComModel.deserialize_value(row) if row is not None else None


def last_success_values(dag_id: str, *, scan: int = 500) -> dict[str, dict[str, Any]]:
    """For each task of ``dag_id``: the values its last successful try recorded.

    :param dag_id: the DAG.
    :param scan: how many of the latest successful task instances to look at.
    :returns: ``{task_id: {"values", "run_id", "try"}}``.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    latest: dict[str, tuple[str, int, int]] = {}
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.run_id, TaskInstance.try_number, TaskInstance.map_index)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.state == "success")
            .order_by(TaskInstance.end_date.desc())
            .limit(scan)
        ).all()
        for task_id, run_id, try_number, map_index in rows:
            latest.setdefault(task_id, (run_id, try_number, map_index))
        out: dict[str, dict[str, Any]] = {}
        for task_id, (run_id, try_number, map_index) in latest.items():
            row = (
                session.query(XComModel)
                .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=RECORD_KEY, map_index=map_index)
                .one_or_none()
            )
            record = XComModel.deserialize_value(row) if row is not None else None
            if isinstance(record, dict) and isinstance(record.get("values"), dict):
                out[task_id] = {"values": record["values"], "run_id": run_id, "try": try_number}
    return out
