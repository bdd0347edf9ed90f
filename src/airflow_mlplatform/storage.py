"""Where a task's outputs (notebooks, reports, execution records) are kept.

The base is ``[mlplatform] output_base``: a local path or any ObjectStoragePath URI.
Each try of each task gets its own folder, so no run overwrites another:
``{base}/{dag_id}/{run_id}/{task_id}[.{map_index}]/try-{n}/``.
Jobs write locally; a remote base gets the files copied up when the job ends.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_mlplatform import config

_UNSAFE = re.compile(r"[^A-Za-z0-9._=\-]")


def _safe(part: object) -> str:
    """One path segment: unsafe characters become ``_``; ``.``/``..`` (or empty) never stay as they are."""
    safe = _UNSAFE.sub("_", str(part))
    return safe if safe.strip(".") else "_" * max(len(safe), 1)


def is_local(location: str) -> bool:
    """Whether ``location`` is a plain local path (or a ``file://`` URI).

    :param location: a path or URI.
    """
    return "://" not in location or location.startswith("file://")


def local_path(location: str) -> Path:
    """The local path of a local ``location``.

    :param location: a path or ``file://`` URI.
    """
    return Path(location[len("file://") :] if location.startswith("file://") else location)


def task_output_location(context: Mapping[str, Any], *, base: str | None = None) -> str:
    """The output folder of the running try of the task in ``context``.

    :param context: the task's Airflow context.
    :param base: overrides ``[mlplatform] output_base``.
    """
    ti = context["ti"]
    return output_location(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=getattr(ti, "map_index", -1),
        try_number=getattr(ti, "try_number", 1) or 1,
        base=base,
    )


def output_location(
    *, dag_id: str, run_id: str, task_id: str, map_index: int | None, try_number: int, base: str | None = None
) -> str:
    """The output folder of one try of one task (what :func:`task_output_location` gives it).

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param task_id: the task.
    :param map_index: the mapped index (-1 or None when not mapped).
    :param try_number: the try (1-based).
    :param base: overrides ``[mlplatform] output_base``.
    """
    base = (base or config.output_base()).rstrip("/")
    task = _safe(task_id)
    if map_index is not None and map_index >= 0:
        task = f"{task}.{map_index}"
    parts = [_safe(dag_id), _safe(run_id), task, f"try-{try_number}"]
    if is_local(base):
        return str(local_path(base).expanduser().resolve().joinpath(*parts))
    return "/".join([base, *parts])


class OutputFolder:
    """A local working folder for a job's outputs, published to ``location`` when done.

    For a local ``location`` the folder is ``location`` itself; for a remote one it is a
    temporary folder whose files ``publish()`` copies to ObjectStoragePath(location).

    :param location: final folder (path or URI).
    """

    def __init__(self, location: str) -> None:
        self.location = location
        if is_local(location):
            self.path = local_path(location)
            self._tmp: str | None = None
        else:
            self._tmp = tempfile.mkdtemp(prefix="mlplatform-out-")
            self.path = Path(self._tmp)
        self.path.mkdir(parents=True, exist_ok=True)

    def uri(self, name: str) -> str:
        """Final location of the file ``name`` inside this folder.

        :param name: relative file name.
        """
        if self._tmp is None:
            return str(self.path / name)
        return f"{self.location.rstrip('/')}/{name}"

    def publish(self) -> None:
        """Copy every file to the remote location (no-op for a local one)."""
        if self._tmp is None:
            return
        from airflow.sdk import ObjectStoragePath

        dest = ObjectStoragePath(self.location)
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                src = Path(root) / name
                target = dest / str(src.relative_to(self.path))
                target.parent.mkdir(parents=True, exist_ok=True)
                with src.open("rb") as fin, target.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)

    def cleanup(self) -> None:
        """Remove the temporary folder of a remote location."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def copy_file(local: str | Path, target: str) -> None:
    """Copy a local file to ``target`` (a path or any ObjectStoragePath URI).

    :param local: the local file.
    :param target: destination path or URI.
    """
    if is_local(target):
        dest = local_path(target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, dest)
        return
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(local, "rb") as fin, path.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
