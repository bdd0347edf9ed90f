"""Ship a job's file (a notebook or R script), or its whole folder, to the pod that runs it.

DAG authors change a notebook without rebuilding an image: before the pod is created, the
worker copies the job's file (``ship="file"``) or the folder it is in (``ship="folder"``,
at most ``[mlplatform] ship_max_bytes``) into the try's output folder, under ``_job/``; the
pod runs that copy. ``ship="image"`` keeps the old way: the file is baked into the image at
the same path as in the worker.

The try's output folder is the storage the pod already shares with the worker (a volume
mounted at the same path, or an ObjectStoragePath URI such as ``s3://``): nothing new to
configure. In the pod, :func:`fetch` copies a remote ``_job/`` folder to a local one first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import ConfigurationError

SHIP_MODES = ("file", "folder", "image")
#: Sub-folder of the try's output folder that holds the shipped files.
JOB_DIR = "_job"
#: Default of ``[mlplatform] ship_max_bytes``: the most a shipped folder may hold.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class JobFilesTooLargeError(ConfigurationError):
    """The folder to ship to the pod is larger than ``[mlplatform] ship_max_bytes``."""


def check_mode(ship: str) -> str:
    """``ship`` itself when it is a known mode (operators call this at parse time).

    :param ship: ``file``, ``folder`` or ``image``.
    """
    if ship not in SHIP_MODES:
        raise ConfigurationError(
            f"ship={ship!r} is not a way to get the job's file to the pod; use 'file' (copy the file), "
            "'folder' (copy its folder) or 'image' (it is in the image at the same path)"
        )
    return ship


def max_bytes() -> int:
    """``[mlplatform] ship_max_bytes`` (default 20 MiB)."""
    from airflow_mlplatform import config

    value = config.get_option("ship_max_bytes")
    try:
        return int(value) if value else DEFAULT_MAX_BYTES
    except ValueError as e:
        raise ConfigurationError(
            f"[mlplatform] ship_max_bytes must be a number of bytes, got {value!r}"
        ) from e


@dataclass(frozen=True)
class ShipPlan:
    """Where a job's file goes so that its pod finds it.

    :param source: the job's file in the worker (absolute path).
    :param location: the try's output folder (path or URI).
    :param mode: ``file``, ``folder`` or ``image``.
    """

    source: str
    location: str
    mode: str

    @property
    def job_dir(self) -> str:
        """The folder the pod reads the shipped files from (path or URI); the source's folder for ``image``."""
        if self.mode == "image":
            return str(Path(self.source).parent)
        return f"{self.location.rstrip('/')}/{JOB_DIR}"

    @property
    def target(self) -> str:
        """The job's file as the pod sees it (path or URI)."""
        if self.mode == "image":
            return self.source
        return f"{self.job_dir}/{Path(self.source).name}"

    def files(self) -> list[Path]:
        """The files to copy, checked against the size limit.

        :raises JobFilesTooLargeError: a folder above ``[mlplatform] ship_max_bytes``.
        """
        source = Path(self.source)
        if self.mode == "image":
            return []
        if self.mode == "file":
            return [source]
        limit = max_bytes()
        found: list[Path] = []
        total = 0
        for root, dirs, names in os.walk(source.parent):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for name in sorted(names):
                path = Path(root) / name
                if path.is_file():
                    total += path.stat().st_size
                    found.append(path)
            if total > limit:
                raise JobFilesTooLargeError(
                    f"ship='folder' would copy more than {limit} bytes from {source.parent} to the pod "
                    f"(already {total} bytes in {len(found)} files): keep large data out of the notebook's "
                    "folder (read it from storage), raise [mlplatform] ship_max_bytes, use ship='file', or "
                    "bake the folder into the image (ship='image')"
                )
        return found

    def copy(self) -> dict[str, Any]:
        """Copy the files to :attr:`job_dir`; what was shipped (mode, files, bytes), for the record."""
        from airflow_mlplatform import storage

        files = self.files()
        base = Path(self.source).parent
        for path in files:
            storage.copy_file(str(path), f"{self.job_dir}/{path.relative_to(base).as_posix()}")
        return {
            "mode": self.mode,
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "to": self.job_dir,
        }


def fetch(job_dir: str, dest: Path) -> Path:
    """In the pod: a local folder with the shipped files (``job_dir`` itself when it is local).

    :param job_dir: :attr:`ShipPlan.job_dir`.
    :param dest: an empty local folder for a remote ``job_dir``.
    """
    from airflow_mlplatform import storage

    if storage.is_local(job_dir):
        return storage.local_path(job_dir)
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(job_dir)
    for path in root.rglob("*"):
        if path.is_file():
            target = dest / path.relative_to(root).as_posix()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dest
