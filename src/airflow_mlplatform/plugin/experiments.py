"""The Experiments view's API (``/api/experiments/{dag_id}/{task_id}``): the runs of one task
side by side (the table and series ``mlplatform runs compare`` shows), read from the stored
execution records, each row with the link to its try's output viewer page. Needs DAG read
permission on that DAG.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from airflow_mlplatform.plugin.auth import User, require

router = APIRouter(tags=["experiments"])
MAX_RUNS = 1000


@router.get("/{dag_id}/{task_id}")
def experiments(
    dag_id: str, task_id: str, user: User,
    last: int = Query(100, ge=1, le=MAX_RUNS, description="the most recent runs to show"),
    diff: bool = Query(False, description="only the columns whose values differ"),
) -> dict[str, Any]:  # fmt: skip
    """The runs of ``task_id`` in ``dag_id``, oldest first: columns, cells, final metrics and
    metric series per row, and ``output_url`` (the row's output viewer page)."""
    require(user, "GET", dag_id)
    from airflow_mlplatform.links import output_page_url
    from airflow_mlplatform.runs_compare import load

    comparison = load(dag_id=dag_id, task_id=task_id, last=last)
    body = comparison.to_json(diff=diff)
    for row in body["rows"]:
        row["output_url"] = output_page_url(
            dag_id=dag_id,
            run_id=row["run_id"],
            task_id=task_id,
            try_number=row["try_number"],
            map_index=row["map_index"],
        )
    return body
