"""The JSON Schema of the workflow format, derived from the step-type registry.

The schema is shipped as ``schema/workflow-v1.schema.json`` (for editors and the designer); a
test proves the shipped file equals :func:`build_schema`. Regenerate it with
``python -m airflow_mlplatform.workflow.schema > src/airflow_mlplatform/workflow/schema/workflow-v1.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_mlplatform.workflow.model import FORMAT_VERSION
from airflow_mlplatform.workflow.registry import COMMON_FIELDS, STEP_TYPES, Field

REF_PATTERN = r"\$\{\{.*\}\}"
_DURATION = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[smhd]?\s*$"},
    ],
    "description": "seconds, or a duration like 30s, 5m, 2h, 1d",
}
_KINDS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "list": {"type": "array"},
    "dict": {"type": "object"},
    "command": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "callable": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*[:.][A-Za-z_][\w.]*$"},
    "path": {"type": "string", "minLength": 1},
    "dir": {"type": "string", "minLength": 1},
    "any": {},
}


def _field_schema(f: Field) -> dict[str, Any]:
    s: dict[str, Any] = dict(_KINDS[f.kind])
    if f.choices:
        s = {"enum": list(f.choices)}
    if f.templated and s.get("type") not in ("string", "object", "array") and "anyOf" not in s:
        s = {"anyOf": [s, {"type": "string", "pattern": REF_PATTERN}]}
    if f.description:
        s["description"] = f.description
    return s


def _common() -> dict[str, Any]:
    names = {"type": "array", "items": {"type": "string"}}
    return {
        "id": {"type": "string", "pattern": r"^[A-Za-z0-9_\-]+$", "description": COMMON_FIELDS["id"]},
        "type": {"enum": list(STEP_TYPES), "description": COMMON_FIELDS["type"]},
        "description": {"type": "string", "description": COMMON_FIELDS["description"]},
        "depends_on": {"anyOf": [{"type": "string"}, names], "description": COMMON_FIELDS["depends_on"]},
        "outputs": {"anyOf": [{"type": "string"}, names], "description": COMMON_FIELDS["outputs"]},
        "group": {"type": "string", "description": COMMON_FIELDS["group"]},
        "compute": {"type": "string", "description": COMMON_FIELDS["compute"]},
        "retries": {"type": "integer", "minimum": 0, "description": COMMON_FIELDS["retries"]},
        "retry_delay": {**_DURATION, "description": COMMON_FIELDS["retry_delay"]},
        "timeout": {**_DURATION, "description": COMMON_FIELDS["timeout"]},
        "trigger_rule": {"type": "string", "description": COMMON_FIELDS["trigger_rule"]},
    }


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of workflow format version 1."""
    common = _common()
    defs: dict[str, Any] = {}
    branches = []
    for st in STEP_TYPES.values():
        props = {k: v for k, v in common.items() if k != "compute" or st.compute}
        if st.compute_overrides:
            by_name = {
                "type": "object",
                "required": ["profile"],
                "properties": {"profile": {"type": "string"}},
            }
            props["compute"] = {
                "anyOf": [{"type": "string"}, by_name],
                "description": COMMON_FIELDS["compute"],
            }
        props["type"] = {"const": st.name}
        props.update({name: _field_schema(f) for name, f in st.fields.items()})
        d: dict[str, Any] = {
            "description": st.description,
            "type": "object",
            "required": ["id", "type", *[n for n, f in st.fields.items() if f.required]],
            "properties": props,
            "additionalProperties": False,
        }
        if st.one_of:
            d["oneOf"] = [{"required": [name]} for group in st.one_of for name in group]
        defs[f"step_{st.name}"] = d
        branches.append(
            {"if": {"properties": {"type": {"const": st.name}}}, "then": {"$ref": f"#/$defs/step_{st.name}"}}
        )
    param_types = ["string", "integer", "number", "boolean", "array", "object", "null"]
    defs["param"] = {
        "type": "object",
        "properties": {
            "type": {"enum": param_types},
            "default": {},
            "description": {"type": "string"},
            "title": {"type": "string"},
            "enum": {"type": "array"},
            "minimum": {"type": "number"},
            "maximum": {"type": "number"},
            "minLength": {"type": "integer"},
            "maxLength": {"type": "integer"},
            "pattern": {"type": "string"},
            "items": {"type": "object"},
        },
        "additionalProperties": False,
    }
    defs["step"] = {
        "type": "object",
        "required": ["id", "type"],
        "properties": {"type": {"enum": list(STEP_TYPES)}},
        "allOf": branches,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://airflow-mlplatform.dev/schemas/workflow-v1.schema.json",
        "title": "airflow-mlplatform workflow (format version 1)",
        "description": "A workflow of notebook, R, TFJob, RAPIDS, Valohai, bash and python steps; "
        "references are written ${{ steps.STEP.outputs.NAME }} and ${{ params.NAME }}.",
        "type": "object",
        "required": ["version", "id", "steps"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": FORMAT_VERSION, "description": "the workflow format version"},
            "id": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,250}$", "description": "the DAG id"},
            "description": {"type": "string"},
            "schedule": {"type": ["string", "null"], "description": "cron expression or @preset"},
            "start_date": {"type": "string", "description": "ISO date or date-time (UTC by default)"},
            "catchup": {"type": "boolean"},
            "max_active_runs": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "default_args": {
                "type": "object",
                "properties": {
                    "owner": {"type": "string"},
                    "retries": {"type": "integer", "minimum": 0},
                    "retry_delay": _DURATION,
                    "timeout": _DURATION,
                    "depends_on_past": {"type": "boolean"},
                    "email": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "trigger_rule": {"type": "string"},
                },
                "additionalProperties": False,
            },
            "params": {
                "type": "object",
                "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                "additionalProperties": {"anyOf": [{"$ref": "#/$defs/param"}, {"not": {"type": "object"}}]},
                "description": "global parameters: NAME: {type, default, description} or NAME: default",
            },
            "groups": {
                "type": "object",
                "additionalProperties": {
                    "type": ["object", "null"],
                    "properties": {"tooltip": {"type": "string"}, "group": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
            "layout": {
                "type": "object",
                "description": "the designer's node positions (step id -> {x, y}); not used to build the DAG",
                "additionalProperties": {
                    "type": "object",
                    "required": ["x", "y"],
                    "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                    "additionalProperties": False,
                },
            },
        },
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(build_schema(), indent=2) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(schema_text(), end="")
