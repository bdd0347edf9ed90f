"""Validate a designer document with the workflow validator and say where each error is as
step id + field path (the validator speaks file:line:column).

The document (JSON from the browser) is written out as indented JSON text, which the
workflow reader parses like any YAML file, remembering the line and column of every key and
value. Each error's line:column is then looked up in those marks to find the path it points
at: ``("steps", 2, "parameters", "C")`` becomes step ``train`` (the id of step 2), field
``parameters.C``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import WorkflowError, WorkflowValidationError


def document_text(document: Any) -> str:
    """The document as JSON text (what the validator reads for a document).

    :param document: the workflow document as JSON values.
    """
    return json.dumps(document, indent=1, ensure_ascii=False, default=str)


_NEEDS_FIELD = re.compile(r"needs field '([A-Za-z_][A-Za-z0-9_]*)'")


def _locations(src: Any) -> dict[tuple[int, int], tuple[Any, ...]]:
    # a mapping's value starts where its first key does: the value (the whole step) wins
    where: dict[tuple[int, int], tuple[Any, ...]] = {}
    for path, mark in src.key_marks.items():
        where[mark] = path
    for path, mark in src.value_marks.items():
        where[mark] = path
    return where


def _describe(path: tuple[Any, ...], data: Any) -> tuple[str | None, str | None]:
    if not path:
        return None, None
    if path[0] == "steps" and len(path) >= 2 and isinstance(path[1], int):
        steps = data.get("steps") if isinstance(data, dict) else None
        step = steps[path[1]] if isinstance(steps, list) and path[1] < len(steps) else None
        sid = step.get("id") if isinstance(step, dict) else None
        step_id = sid if isinstance(sid, str) and sid else f"#{path[1]}"
        return step_id, ".".join(str(p) for p in path[2:]) or None
    return None, ".".join(str(p) for p in path)


def map_errors(errors: list[WorkflowError], src: Any | None, *, with_position: bool) -> list[dict[str, Any]]:
    """Errors as the API returns them: ``{"step", "field", "message"}`` (+ ``line``, ``column``).

    :param errors: the validator's errors.
    :param src: the parsed source they refer to (None when it did not parse).
    :param with_position: include line and column (for errors in a file the user sees).
    """
    where = _locations(src) if src is not None else {}
    data = src.data if src is not None else None
    out = []
    for e in errors:
        path = where.get((e.line, e.column), ()) if e.line is not None else ()
        step, fld = _describe(path, data)
        if fld is None and step is not None and (m := _NEEDS_FIELD.search(e.message)):
            fld = m.group(1)  # a missing required field: point at the field the form must fill
        item: dict[str, Any] = {"step": step, "field": fld, "message": e.message}
        if with_position and e.line is not None:
            item["line"] = e.line
            item["column"] = e.column
        out.append(item)
    return out


def check_text(text: str, *, file: str, base_dir: Path) -> tuple[Any | None, list[WorkflowError], Any]:
    """Parse and validate workflow text; returns (workflow or None, errors, source or None).

    :param text: YAML or JSON text.
    :param file: the name used in errors.
    :param base_dir: the folder relative file paths start from.
    """
    from airflow_mlplatform.workflow.source import read_source
    from airflow_mlplatform.workflow.validate import check_source

    try:
        src = read_source(text, file=file)
    except WorkflowValidationError as e:
        return None, list(e.errors), None
    except WorkflowError as e:
        return None, [e], None
    try:
        return check_source(src, base_dir=base_dir), [], src
    except WorkflowValidationError as e:
        return None, list(e.errors), src
    except WorkflowError as e:
        return None, [e], src


def validate_document(document: Any, *, base_dir: Path) -> tuple[Any | None, list[dict[str, Any]]]:
    """Validate a document from the designer; returns (workflow or None, mapped errors).

    :param document: the workflow document as JSON values.
    :param base_dir: the folder its relative file paths start from (where it is or will be saved).
    """
    wf, errors, src = check_text(document_text(document), file="<designer>", base_dir=base_dir)
    return wf, map_errors(errors, src, with_position=False)
