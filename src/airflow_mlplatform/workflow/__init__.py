"""Workflows in YAML (or JSON): a versioned format, validated with file:line:column errors,
built into DAGs at parse time, generated as Python DAG files and exported back.

Public entry points: :func:`load_workflow`, :func:`load_workflows`, :func:`validate_files`,
:func:`export_dag`. The JSON Schema of the format is :func:`schema_path`.
"""

from __future__ import annotations

from airflow_mlplatform.workflow.api import (
    export_dag,
    load_workflow,
    load_workflows,
    read_workflow,
    schema_path,
    validate_files,
)

__all__ = ["export_dag", "load_workflow", "load_workflows", "read_workflow", "schema_path", "validate_files"]
