"""Operator extra links."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

#: Keys of ``execution_record["outputs"]`` that hold a task's main human-readable output.
MAIN_OUTPUT_KEYS = ("notebook", "report")


def main_output_uri(execution_record: Any) -> str:
    """The URI of the main output (notebook or report) in an execution record, or ''.

    :param execution_record: the record pushed to XCom ``execution_record``.
    """
    outputs = (execution_record or {}).get("outputs", {}) if isinstance(execution_record, dict) else {}
    for key in MAIN_OUTPUT_KEYS:
        if outputs.get(key):
            uri = str(outputs[key])
            return uri if "://" in uri else f"file://{uri}"
    return ""


def output_page_url(*, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
    """The output viewer's page for one try (a same-origin path under ``[api] base_url``).

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param try_number: the try.
    :param map_index: the mapped index (-1 when not mapped).
    """
    from airflow_mlplatform.config import PLUGIN_PREFIX, api_base_path

    parts = "/".join(quote(str(p), safe="") for p in (dag_id, run_id, task_id, try_number))
    query = f"?map_index={map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{api_base_path()}{PLUGIN_PREFIX}/outputs/{parts}{query}"


class OutputNotebookLink(BaseOperatorLink):
    """Link from a task to its executed notebook (or rendered report), served by the provider's
    plugin at ``/mlplatform/outputs/...`` (Airflow's UI draws only same-origin/http(s) links)."""

    name = "Output notebook"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The output page's URL, or '' when the try has no notebook or report to show.

        :param operator: the operator.
        :param ti_key: the task instance key.
        """
        from airflow.sdk.execution_time.xcom import XCom

        if not main_output_uri(XCom.get_value(ti_key=ti_key, key="execution_record")):
            return ""
        return output_page_url(
            dag_id=ti_key.dag_id,
            run_id=ti_key.run_id,
            task_id=ti_key.task_id,
            try_number=ti_key.try_number,
            map_index=getattr(ti_key, "map_index", -1),
        )
