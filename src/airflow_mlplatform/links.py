"""Operator extra links."""

from __future__ import annotations

from typing import Any

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


class OutputNotebookLink(BaseOperatorLink):
    """Link from a task to the output notebook (or rendered report) of the selected try."""

    name = "Output notebook"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """Return the output's URI (``file://`` for a local path), or '' before it exists.

        :param operator: the operator.
        :param ti_key: the task instance key.
        """
        from airflow.sdk.execution_time.xcom import XCom

        return main_output_uri(XCom.get_value(ti_key=ti_key, key="execution_record"))
