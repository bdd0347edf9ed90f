"""Entry points: read, validate, build and export workflows."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import WorkflowError, WorkflowValidationError
from airflow_mlplatform.workflow.model import Workflow

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml", ".json")
#: A workflow saved as a draft by the designer (``name.draft.yaml``): the loader skips it.
DRAFT_MARK = ".draft"


def is_draft(path: str | Path) -> bool:
    """Whether ``path`` is a draft workflow file (``*.draft.yaml``/``.yml``/``.json``).

    :param path: a workflow file name.
    """
    p = Path(path)
    return p.suffix in SUFFIXES and p.stem.endswith(DRAFT_MARK)


def schema_path() -> Path:
    """The JSON Schema of the workflow format (version 1), shipped in the package."""
    return Path(__file__).with_name("schema") / "workflow-v1.schema.json"


def read_workflow(path: str | Path) -> Workflow:
    """Read and validate a workflow file; raises WorkflowValidationError listing every problem.

    :param path: a ``.yaml``, ``.yml`` or ``.json`` file.
    """
    from airflow_mlplatform.workflow.source import read_file
    from airflow_mlplatform.workflow.validate import check_source

    return check_source(read_file(path))


def validate_files(paths: Iterable[str | Path]) -> list[WorkflowError]:
    """Every problem in every file (an empty list when all are valid).

    :param paths: workflow files.
    """
    errors: list[WorkflowError] = []
    for p in paths:
        try:
            read_workflow(p)
        except WorkflowValidationError as e:
            errors.extend(e.errors)
        except WorkflowError as e:
            errors.append(e)
        except Exception as e:  # RecursionError, MemoryError...: one bad file never hides the others
            errors.append(_unexpected(p, e))
    return errors


def _unexpected(path: str | Path, e: BaseException) -> WorkflowError:
    """A WorkflowError for a failure the checks did not foresee, naming the file."""
    log.debug("unexpected failure reading %s", path, exc_info=e)
    return WorkflowError(f"cannot load this workflow: {type(e).__name__}: {e}"[:2000], file=str(path))


def load_workflow(path: str | Path) -> Any:
    """The DAG built from one workflow file.

    :param path: a workflow file.
    """
    from airflow_mlplatform.workflow.build import build_dag

    return build_dag(read_workflow(path))


def load_workflows(
    folder: str | Path,
    globals_dict: MutableMapping[str, Any] | None = None,
    *,
    on_error: str = "raise",
) -> dict[str, Any]:
    """Build one DAG per workflow file found (recursively) in ``folder``; the DAG-folder loader.

    Drafts (``*.draft.yaml``, saved by the designer) are skipped. Every file is tried; with ``on_error="raise"`` the problems of all broken files are then
    raised together (Airflow shows them as the loader's import error, with file:line:column),
    with ``"log"`` they are logged and the good workflows still load.

    :param folder: where the ``.yaml``/``.yml``/``.json`` workflow files are.
    :param globals_dict: the DAG file's ``globals()``; each DAG is put there for the DagBag.
    :param on_error: ``raise`` or ``log``.
    """
    if on_error not in ("raise", "log"):
        raise ValueError("on_error must be 'raise' or 'log'")
    dags: dict[str, Any] = {}
    errors: list[WorkflowError] = []
    found = (p for p in Path(folder).rglob("*") if p.suffix in SUFFIXES and not is_draft(p) and p.is_file())
    for path in sorted(found):
        try:
            dag = load_workflow(path)
        except WorkflowValidationError as e:
            errors.extend(e.errors)
            continue
        except WorkflowError as e:
            errors.append(e)
            continue
        except Exception as e:  # isolate every failure per file (RecursionError, MemoryError...)
            errors.append(_unexpected(path, e))
            continue
        if dag.dag_id in dags:
            errors.append(
                WorkflowError(f"workflow id {dag.dag_id!r} is used by another file too", file=str(path))
            )
            continue
        dags[dag.dag_id] = dag
        if globals_dict is not None:
            globals_dict["workflow__" + re.sub(r"\W", "_", dag.dag_id)] = dag
    if errors:
        if on_error == "raise":
            raise WorkflowValidationError(errors)
        for problem in errors:
            log.error("%s", problem)
    return dags


def export_dag(dag: Any) -> str:
    """The workflow source a DAG was built from (the exact text of the file).

    :param dag: a DAG (or serialized DAG) built from a workflow, or generated from one.
    """
    from airflow_mlplatform.workflow.embed import MAX_EMBED_CHARS, TOO_LARGE, extract_workflow

    doc_md = getattr(dag, "doc_md", None)
    found = extract_workflow(doc_md)
    if found is None and TOO_LARGE in (doc_md or ""):
        raise WorkflowError(
            f"DAG {getattr(dag, 'dag_id', dag)!r} was built from a workflow file too large to embed in "
            f"its doc_md (over {MAX_EMBED_CHARS} characters); export the workflow file itself"
        )
    if found is None:
        raise WorkflowError(
            f"DAG {getattr(dag, 'dag_id', dag)!r} was not built from a workflow file "
            "(its doc_md holds no workflow source)"
        )
    return found[1]
