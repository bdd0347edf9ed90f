"""The designer's JSON API (``/api/designer``): palette, profiles, catalog, workflows (list,
open, save, run-info), validate, preview, hints. Every route needs DAG read permission;
saving needs DAG edit permission on the workflow's DAG. The rules live in the workflow model,
validator and code generator: nothing here decides what a valid workflow is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Header, HTTPException, Response
from pydantic import BaseModel, Field

from airflow_mlplatform.exceptions import DesignerNotFoundError, DesignerPathError, MLPlatformError
from airflow_mlplatform.plugin import documents, settings
from airflow_mlplatform.plugin.auth import Reader, User, require, user_name
from airflow_mlplatform.plugin.paths import check_relative, confine

log = logging.getLogger(__name__)
router = APIRouter(tags=["designer"])
SUFFIXES = (".yaml", ".yml", ".json")


class DocumentBody(BaseModel):
    """A workflow document sent by the designer."""

    document: dict[str, Any]
    path: str | None = Field(
        default=None, description="where it is (or will be) saved, in the workflows folder"
    )


class SaveBody(BaseModel):
    """A save: the document and whether it is a draft."""

    document: dict[str, Any]
    draft: bool = False


def _workflow_path(rel: str) -> Path:
    p = check_relative(rel)
    if p.suffix not in SUFFIXES:
        raise DesignerPathError(f"invalid workflow path {rel!r}: it must end in .yaml, .yml or .json")
    return confine(settings.workflows_folder(), rel)


def _rel(path: Path) -> str:
    return path.relative_to(settings.workflows_folder().resolve()).as_posix()


def _draft_path(path: Path) -> Path:
    from airflow_mlplatform.workflow.api import DRAFT_MARK, is_draft

    return path if is_draft(path) else path.with_name(path.stem + DRAFT_MARK + path.suffix)


def _final_path(path: Path) -> Path:
    from airflow_mlplatform.workflow.api import DRAFT_MARK, is_draft

    return path.with_name(path.stem[: -len(DRAFT_MARK)] + path.suffix) if is_draft(path) else path


def _base_dir(rel: str | None) -> Path:
    folder = settings.workflows_folder()
    return (_workflow_path(rel).parent if rel else folder.resolve()) if folder.exists() or rel else folder


@router.get("/palette")
def palette(user: Reader) -> dict[str, Any]:
    """Every step type of the registry with its JSON Schema, and the document schema."""
    from airflow_mlplatform.workflow.registry import STEP_TYPES
    from airflow_mlplatform.workflow.schema import build_schema

    schema = build_schema()
    kinds = {"notebook": ["ipynb"], "r": ["R", "Rmd"], "rapids": ["py"], "valohai": ["yaml"]}
    return {
        "step_types": [
            {
                "type": st.name,
                "description": st.description,
                "schema": schema["$defs"][f"step_{st.name}"],
                "outputs_ports": st.named_outputs,
                "file_kinds": kinds.get(st.name, []),
                "available": st.available(),
            }
            for st in STEP_TYPES.values()
        ],
        "document_schema": schema,
    }


def _profile_description(p: Any) -> str:
    parts = [p.backend]
    if p.image:
        parts.append(f"image {p.image}")
    if p.gpus:
        parts.append(f"{p.gpus} GPU")
    res = {**dict(p.requests), **dict(p.limits)}
    parts.extend(f"{k} {v}" for k, v in res.items() if k in ("cpu", "memory"))
    return ", ".join(parts)


@router.get("/profiles")
def profiles(user: Reader) -> dict[str, Any]:
    """The compute profiles of the configured profiles file."""
    from airflow_mlplatform.compute import load_profiles

    try:
        found = load_profiles()
    except MLPlatformError as e:
        raise HTTPException(500, f"compute profiles: {e}") from e
    return {
        "profiles": [
            {"name": name, "backend": p.backend, "description": _profile_description(p)}
            for name, p in sorted(found.items())
        ]
    }


@router.get("/catalog")
def catalog(user: Reader) -> dict[str, Any]:
    """Notebooks, R scripts and R Markdown documents under the designer roots, with parameters."""
    from airflow_mlplatform.plugin.catalog import list_catalog

    return list_catalog(settings.designer_roots(), workflows=settings.workflows_folder())


def _dag_id_of(path: Path) -> str | None:
    import yaml

    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.startswith("id:"):
                    value = yaml.safe_load(line[3:])
                    return str(value) if value is not None else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    try:  # JSON or an unusual layout: parse the whole file
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return str(data["id"]) if isinstance(data, dict) and data.get("id") is not None else None


@router.get("/workflows")
def list_workflows(user: Reader) -> dict[str, Any]:
    """The workflow files of the workflows folder."""
    from airflow_mlplatform.workflow.api import is_draft

    folder = settings.workflows_folder()
    items = []
    if folder.is_dir():
        base = folder.resolve()
        for p in sorted(base.rglob("*")):
            if (
                p.suffix not in SUFFIXES
                or not p.is_file()
                or any(x.startswith(".") for x in p.relative_to(base).parts)
            ):
                continue
            items.append(
                {"path": p.relative_to(base).as_posix(), "dag_id": _dag_id_of(p), "draft": is_draft(p)}
            )
    return {
        "folder": folder.resolve().as_posix(),
        "writable": documents.folder_writable(folder),
        "workflows": items,
    }


@router.get("/workflows/{path:path}/run-info")
def run_info(path: str, user: Reader) -> dict[str, Any]:
    """Links into Airflow's UI for the saved workflow's DAG (grid view; the trigger form)."""
    target = _final_path(_workflow_path(path))
    dag_id = _dag_id_of(target) if target.is_file() else None
    if dag_id is None:
        raise DesignerNotFoundError(f"no saved workflow {path!r} with an id (save it first)")
    require(user, "GET", dag_id)
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        exists = session.get(DagModel, dag_id) is not None
    # Airflow 3.3's UI: the DAG page holds the grid and the Trigger button (its params form is a
    # dialog there, with no URL of its own)
    url = f"{settings.base_path()}/dags/{quote(dag_id, safe='')}"
    return {"dag_id": dag_id, "dag_exists": exists, "grid_url": url, "trigger_url": url}


@router.get("/workflows/{path:path}")
def open_workflow(path: str, user: Reader, response: Response) -> dict[str, Any]:
    """A workflow file: its document, text and ETag."""
    target = _workflow_path(path)
    found = documents.read(target)
    response.headers["ETag"] = found["etag"]
    return {"path": _rel(target), **found, "writable": documents.folder_writable(target.parent)}


@router.post("/validate")
def validate(user: Reader, body: DocumentBody) -> dict[str, Any]:
    """Run the workflow validator on a document; errors carry their step id and field path."""
    from airflow_mlplatform.plugin.validation import validate_document

    _, errors = validate_document(body.document, base_dir=_base_dir(body.path))
    return {"valid": not errors, "errors": errors}


@router.post("/preview")
def preview(user: Reader, body: DocumentBody) -> dict[str, Any]:
    """The YAML the designer would save, and the Python DAG the code generator makes of it."""
    from airflow_mlplatform.plugin.validation import check_text
    from airflow_mlplatform.workflow.codegen import generate_source

    target = _workflow_path(body.path) if body.path else None
    original = target.read_text(encoding="utf-8") if target is not None and target.is_file() else None
    text = documents.render(body.document, original=original)
    base = _base_dir(body.path)
    name = str(target) if target is not None else str(base / "workflow.yaml")
    wf, errors, src = check_text(text, file=name, base_dir=base)
    if wf is None:
        from airflow_mlplatform.plugin.validation import map_errors

        return {"yaml": text, "python": "", "errors": map_errors(errors, src, with_position=True)}
    return {"yaml": text, "python": generate_source(wf, out_dir=base, format_with_ruff=False), "errors": []}


@router.put("/workflows/{path:path}")
def save_workflow(
    path: str,
    user: User,
    response: Response,
    body: Annotated[SaveBody, Body()],
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Save a workflow (``If-Match``: the ETag it was opened at; absent: create a new file)."""
    from airflow_mlplatform.plugin.validation import check_text, map_errors

    target = _workflow_path(path)
    target = _draft_path(target) if body.draft else _final_path(target)
    dag_id = body.document.get("id")
    require(user, "PUT", dag_id if isinstance(dag_id, str) and dag_id else None)
    if not documents.folder_writable(target.parent):
        raise HTTPException(
            403,
            f"the workflows folder {settings.workflows_folder()} is read-only (e.g. a git DAG bundle): "
            "nothing was saved; download the workflow and commit it instead",
        )
    if body.draft and not target.is_file():
        if_match = None  # a new draft: If-Match (the main file's ETag) concerns the final save
    source = target if target.is_file() else _final_path(target)
    # merge into the file (or, for a first draft, the main file) so comments and layout survive
    original = source.read_text(encoding="utf-8") if source.is_file() and (if_match or body.draft) else None
    text = documents.render(
        body.document, original=original, base=target.parent, roots=settings.designer_roots()
    )
    if not body.draft:
        wf, errors, src = check_text(text, file=str(target), base_dir=target.parent)
        if wf is None:
            raise HTTPException(
                422,
                {"message": "the workflow has errors: fix them or save it as a draft",
                 "errors": map_errors(errors, src, with_position=True)},
            )  # fmt: skip
    etag = documents.write(target, text, if_match=if_match)
    if not body.draft:
        draft = _draft_path(target)
        if draft.is_file():
            draft.unlink()
    log.info(
        "workflow %s saved by %s%s (dag %s)",
        target,
        user_name(user),
        " as draft" if body.draft else "",
        dag_id,
    )
    response.headers["ETag"] = etag
    return {"path": _rel(target), "etag": etag, "dag_id": dag_id, "draft": body.draft}


@router.get("/hints")
def hints(dag_id: str, user: Reader) -> dict[str, Any]:
    """Values each step's last successful run recorded (from its execution record)."""
    require(user, "GET", dag_id)
    from airflow_mlplatform.plugin.records import last_success_values

    return {"steps": last_success_values(dag_id)}
