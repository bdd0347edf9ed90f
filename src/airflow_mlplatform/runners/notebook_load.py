"""Read a notebook as papermill does: log what the nbformat schema finds off, refuse only
what cannot be executed.

papermill reads with ``nbformat.reads`` (which logs schema errors and goes on) and upgrades
to the latest nbformat 4 minor version. So cell ``id`` fields in an nbformat 4.4 file (VS
Code and jupytext write them) and odd cell metadata (nteract, other editors) run; a file
that is not a notebook at all, or whose cells papermill cannot execute, is refused here
with a clear error before any kernel starts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import InvalidNotebookError, NotebookNotFoundError

log = logging.getLogger(__name__)

_CELL_TYPES = ("code", "markdown", "raw")
#: schema findings logged at most this many, then a count
MAX_FINDINGS = 10


def _refuse(path: str, why: str) -> InvalidNotebookError:
    return InvalidNotebookError(
        f"{path!r} is not a valid Jupyter notebook (nbformat 4): {why}. Open and save it in "
        "Jupyter, or check that the file is an .ipynb JSON document"
    )


def _check_executable(path: str, nb: Any) -> None:
    """What papermill needs: a list of cells, each with a known type, source and metadata."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise _refuse(path, f"'cells' must be a list, got {type(cells).__name__}")
    if not isinstance(nb.get("metadata"), dict):
        raise _refuse(path, "the notebook has no 'metadata' object")
    for number, cell in enumerate(cells, start=1):
        where = f"cell {number}"
        if not isinstance(cell, dict):
            raise _refuse(path, f"{where} is a {type(cell).__name__}, not an object")
        if cell.get("cell_type") not in _CELL_TYPES:
            raise _refuse(
                path, f"{where} has cell_type {cell.get('cell_type')!r} (expected one of {_CELL_TYPES})"
            )
        source = cell.get("source")
        if not (
            isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))
        ):
            raise _refuse(path, f"{where} has no source text")
        if not isinstance(cell.get("metadata"), dict):
            raise _refuse(path, f"{where} has no 'metadata' object")


def schema_findings(nb: Any) -> list[str]:
    """What the nbformat schema finds off in ``nb`` (empty: valid), one line each.

    :param nb: a notebook node (nbformat 4).
    """
    from nbformat.validator import iter_validate

    findings = []
    for error in iter_validate(nb):
        where = "/".join(str(p) for p in error.absolute_path) or "notebook"
        findings.append(f"{where}: {error.message}")
    return findings


def load_notebook(path: str) -> Any:
    """Read ``path`` as papermill will (nbformat 4, latest minor), logging schema findings.

    :param path: the notebook's path.
    :raises NotebookNotFoundError: the path does not exist.
    :raises InvalidNotebookError: the file is not a notebook papermill can execute.
    """
    import nbformat
    from nbformat.reader import NotJSONError
    from nbformat.validator import ValidationError

    p = Path(path)
    if not p.is_file():
        raise NotebookNotFoundError(
            f"notebook {path!r} does not exist (working directory {os.getcwd()!r}); give an absolute "
            "path or one relative to the DAG file's folder"
        )
    try:
        raw = nbformat.reader.reads(p.read_text(encoding="utf-8"))
    except (
        NotJSONError,
        UnicodeDecodeError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        ValidationError,
    ) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _refuse(path, first[:300]) from e
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise _refuse(path, "no 'nbformat' version number")
    try:
        nb = nbformat.convert(raw, 4)
        upgraded = nbformat.v4.upgrade(nb)
    except Exception as e:  # a v1-v3 document too broken to convert
        raise _refuse(path, f"cannot convert nbformat {raw.get('nbformat')} to 4 ({e})") from e
    nb = upgraded if upgraded is not None else nb
    _check_executable(path, nb)
    findings = schema_findings(nb)
    if findings:
        shown = findings[:MAX_FINDINGS]
        more = f"\n  ... and {len(findings) - MAX_FINDINGS} more" if len(findings) > MAX_FINDINGS else ""
        log.warning(
            "%s does not follow the nbformat schema in %d place(s); running it anyway, as papermill "
            "does:\n  %s%s",
            path,
            len(findings),
            "\n  ".join(shown),
            more,
        )
    return nb
