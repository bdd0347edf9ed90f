"""The execution record: what ran, on what, with which inputs, and what came out.

A JSON document per task try (version control for each ML task), stored beside the
outputs as ``execution_record.json`` and pushed to XCom ``execution_record``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RECORD_FILE = "execution_record.json"
#: 2 added the ``usage`` section (docs/execution-record.md); readers accept 1 and 2.
SCHEMA_VERSION = 2


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes.

    :param path: the file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(path: str | Path) -> str | None:
    """The git commit of the repository holding ``path``, or None outside a repository.

    :param path: a file or folder.
    """
    folder = Path(path)
    folder = folder if folder.is_dir() else folder.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


_PACKAGES_HASH: str | None = None


def python_environment() -> dict[str, Any]:
    """Python version and a hash of the installed distributions (name==version, sorted)."""
    global _PACKAGES_HASH
    if _PACKAGES_HASH is None:
        from importlib import metadata

        names = sorted(f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions())
        _PACKAGES_HASH = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "packages_sha256": _PACKAGES_HASH,
    }


def where() -> dict[str, Any]:
    """Where the job ran, for a job run in the worker."""
    return {"backend": "local", "hostname": socket.gethostname(), "platform": platform.platform()}


def build_record(
    *,
    task: Mapping[str, Any],
    code: Mapping[str, Any],
    environment: Mapping[str, Any],
    parameters: Mapping[str, Any],
    values: Mapping[str, Any],
    metric_rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    outputs: Mapping[str, Any],
    started: datetime,
    ended: datetime,
    ran_on: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    status: str = "success",
    error: str | None = None,
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble an execution record (a JSON-serializable dict), ready to store.

    Non-finite floats in parameters, values and metrics are stored as null (a warning names the
    key), and every secret Airflow's masker knows (connection passwords, values registered with
    ``mask_secret``, values under sensitive keys such as ``token``) is stored as ``***``.

    :param task: dag_id, task_id, run_id, map_index, try_number.
    :param code: what ran (path, sha256, git commit, ...).
    :param environment: image or interpreter, versions, packages hash.
    :param parameters: the parameters the job received.
    :param values: the recorded values.
    :param metric_rows: the metrics series.
    :param metrics: the metrics summary (last value per key).
    :param outputs: URIs of the files the job produced.
    :param started: start time (UTC).
    :param ended: end time (UTC).
    :param ran_on: where it ran.
    :param inputs: input URIs (with content hashes where cheap).
    :param status: ``success``, ``failed`` or ``killed`` (stopped: killed or timed out).
    :param error: the error message of a failed job.
    :param usage: what the try used (:func:`airflow_mlplatform.usage.usage_section`).
    """
    from airflow_mlplatform.masking import redact
    from airflow_mlplatform.values import finite_items

    warned: set[str] = set()
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "task": dict(task),
        "code": dict(code),
        "data": {"inputs": dict(inputs or {})},
        "environment": dict(environment),
        "parameters": finite_items(parameters, what="parameter", warned=warned),
        "values": finite_items(values, what="recorded value", warned=warned),
        "metrics": {
            "summary": finite_items(metrics, what="metric", warned=warned),
            "series": [finite_items(r, what="metric", warned=warned) for r in metric_rows],
        },
        "outputs": dict(outputs),
        "timings": {
            "started": started.isoformat(),
            "ended": ended.isoformat(),
            "duration_s": round((ended - started).total_seconds(), 3),
        },
        "where": dict(ran_on),
    }
    if error is not None:
        record["error"] = error
    if usage is not None:
        record["usage"] = dict(usage)
    return redact(json.loads(json.dumps(record, default=str, allow_nan=False)))


def task_identity(context: Mapping[str, Any]) -> dict[str, Any]:
    """dag_id, task_id, run_id, map_index and try_number of the running task.

    :param context: the task's Airflow context.
    """
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None),
    }
