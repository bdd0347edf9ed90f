"""The output viewer (``/outputs/{dag_id}/{run_id}/{task_id}/{try_number}``): a try's executed
notebook rendered as HTML (or its R Markdown report), and every file of its output folder,
downloadable. Read through ObjectStoragePath, so any ``[mlplatform] output_base`` works.
Needs DAG read permission on that DAG.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from airflow_mlplatform.exceptions import DesignerNotFoundError
from airflow_mlplatform.plugin.auth import User, require
from airflow_mlplatform.plugin.paths import check_relative

router = APIRouter(tags=["outputs"])
RECORD_FILE = "execution_record.json"
MAX_RENDER_BYTES = 200 * 1024 * 1024


def _storage_path(location: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    from airflow_mlplatform.storage import is_local, local_path

    if is_local(location):
        return ObjectStoragePath("file://" + str(local_path(location).expanduser().resolve()))
    return ObjectStoragePath(location)


def try_folder(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int) -> Any:
    """The ObjectStoragePath of one try's output folder.

    :param dag_id: the DAG.
    :param run_id: the run.
    :param task_id: the task.
    :param try_number: the try.
    :param map_index: the mapped index.
    """
    from airflow_mlplatform.storage import output_location

    return _storage_path(
        output_location(
            dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number
        )
    )


def list_files(folder: Any) -> list[tuple[str, int | None]]:
    """Every file under ``folder`` as (relative name, size), sorted.

    :param folder: an ObjectStoragePath.
    """
    fs = folder.fs
    root = folder.path.rstrip("/")
    try:
        found = fs.find(root, detail=True)
    except (FileNotFoundError, OSError):
        return []
    out = []
    for name, info in found.items():
        rel = name[len(root) :].lstrip("/") if name.startswith(root) else None
        if rel and info.get("type", "file") == "file":
            out.append((rel, info.get("size")))
    return sorted(out)


def _record(folder: Any, ids: dict[str, Any]) -> Any:
    import json

    path = folder / RECORD_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, OSError, ValueError):
        pass
    from airflow_mlplatform.plugin.records import task_record

    record = task_record(
        dag_id=ids["dag_id"], run_id=ids["run_id"], task_id=ids["task_id"], map_index=ids["map_index"]
    )
    task = record.get("task", {}) if isinstance(record, dict) else {}
    return record if task.get("try_number") in (None, ids["try_number"]) else None


def _read(path: Any) -> tuple[bytes, str]:
    info = path.fs.info(path.path)
    if (info.get("size") or 0) > MAX_RENDER_BYTES:
        raise DesignerNotFoundError(
            f"{path.name} is larger than {MAX_RENDER_BYTES} bytes: download it instead"
        )
    key = f"{path}:{info.get('size')}:{info.get('mtime') or info.get('LastModified') or info.get('created')}"
    return path.read_bytes(), key


@router.get("/{dag_id}/{run_id}/{task_id}/{try_number}", response_class=HTMLResponse)
def output_page(
    dag_id: str, run_id: str, task_id: str, try_number: int, request: Request, user: User,
    map_index: int = Query(-1, ge=-1),
) -> Response:  # fmt: skip
    """The executed notebook (or report) of one try and the list of its files."""
    require(user, "GET", dag_id)
    from airflow_mlplatform.links import main_output_uri
    from airflow_mlplatform.plugin import render

    ids = {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": try_number,
        "map_index": map_index,
    }
    folder = try_folder(dag_id, run_id, task_id, try_number, map_index)
    files = list_files(folder)
    record = _record(folder, ids)
    if not files and record is None:
        raise DesignerNotFoundError(
            f"no outputs for task {task_id!r} try {try_number} of run {run_id!r} (DAG {dag_id!r}) in {folder}"
        )
    main = main_output_uri(record)
    document = None
    main_name = None
    failed = False
    if main:
        path = _storage_path(main)
        try:
            data, key = _read(path)
        except FileNotFoundError:
            data, key = b"", ""
        main_name = path.name
        if data and main_name.endswith(".ipynb"):
            document = render.notebook_body(data.decode("utf-8"), key=key)
            failed = "data-failed-cells=" in document[:20000] or "mlp-failed-banner" in document
        elif data:
            document = data.decode("utf-8", errors="replace")
    status = (record or {}).get("status", "") if isinstance(record, dict) else ""
    failed = failed or status == "failed"
    sub = f"run {run_id} · try {try_number}" + (f" · map index {map_index}" if map_index >= 0 else "")
    sub += f" · {status}" if status else ""
    base = str(request.url.path).rstrip("/")
    q = f"?map_index={map_index}" if map_index >= 0 else ""
    top = render.header(title=f"{dag_id} / {task_id}", subtitle=sub, failed=failed, main_name=main_name)
    bottom = render.file_list(files, href=lambda n: f"{base}/files/{quote(n)}{q}")
    headers = {
        "Content-Security-Policy": render.CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    return HTMLResponse(render.page(document=document, top=top, bottom=bottom), headers=headers)


@router.get("/{dag_id}/{run_id}/{task_id}/{try_number}/files/{path:path}")
def output_file(
    dag_id: str, run_id: str, task_id: str, try_number: int, path: str, user: User,
    map_index: int = Query(-1, ge=-1),
) -> Response:  # fmt: skip
    """One file of the try's output folder, as a download (never rendered inline)."""
    require(user, "GET", dag_id)
    from airflow_mlplatform.plugin import render

    rel = check_relative(path)
    folder = try_folder(dag_id, run_id, task_id, try_number, map_index)
    target = folder.joinpath(*rel.parts)
    if folder.protocol in ("file", "local", ""):
        from pathlib import Path

        from airflow_mlplatform.plugin.paths import inside

        if not inside(Path(folder.path), Path(target.path)):
            raise DesignerNotFoundError(f"no file {path!r} in this try's outputs")
    try:
        data = target.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
        raise DesignerNotFoundError(f"no file {path!r} in this try's outputs") from e
    name = rel.name
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
            "Content-Security-Policy": render.DOWNLOAD_CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-cache",
        },
    )
