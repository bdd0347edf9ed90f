"""Reading execution records back from ``[mlplatform] output_base``.

The one scanner of stored records (``runs compare``, the Experiments view, usage reports all
read through it). The layout is the one :func:`airflow_mlplatform.storage.output_location`
writes: ``{base}/{dag_id}/{run_id}/{task_id}[.{map_index}]/try-{n}/execution_record.json``,
on a local path or any ObjectStoragePath URI (``s3://``, ``gs://``, ``file://``...).

A malformed or partial record (not JSON, not an object, no task identity or start time) is
skipped with one warning naming its file; reading never raises because of one bad file.
Records of schema version 1 and 2 (2 adds ``usage``) are read alike.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_mlplatform.execution_record import RECORD_FILE
from airflow_mlplatform.storage import _safe, is_local, local_path

_log = logging.getLogger(__name__)
_TRY_PREFIX = "try-"


@dataclass(frozen=True)
class StoredRecord:
    """One stored execution record.

    :param uri: where it is stored (a local path, or the URI under a remote base).
    :param record: the record as read (a dict with at least ``task`` and ``timings.started``).
    """

    uri: str
    record: dict[str, Any]

    @property
    def task(self) -> dict[str, Any]:
        """The record's task identity (dag_id, task_id, run_id, map_index, try_number)."""
        return dict(self.record["task"])

    @property
    def started(self) -> datetime:
        """When the try started (timezone-aware UTC)."""
        started = _parse_time(self.record.get("timings", {}).get("started"))
        assert started is not None  # checked when the record was read
        return started


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _aware(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=timezone.utc)


def _problem(record: Any) -> str | None:
    """What makes ``record`` unusable, or None when it is a usable record."""
    if not isinstance(record, dict):
        return f"it is a JSON {type(record).__name__}, not an object"
    version = record.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version is {version!r}, not a positive integer"
    task = record.get("task")
    if not isinstance(task, dict):
        return "it has no 'task' object"
    for key in ("dag_id", "task_id", "run_id"):
        if not isinstance(task.get(key), str) or not task.get(key):
            return f"task.{key} is missing"
    timings = record.get("timings")
    if not isinstance(timings, dict) or _parse_time(timings.get("started")) is None:
        return "timings.started is missing or not an ISO-8601 time"
    return None


def _task_dir_matches(name: str, safe_task: str | None) -> bool:
    if safe_task is None:
        return True
    if name == safe_task:
        return True
    head, dot, index = name.rpartition(".")
    return bool(dot) and head == safe_task and index.isdigit()


def _local_candidates(root: str, dag_id: str | None, task_id: str | None) -> Iterator[str]:
    """Paths of every ``execution_record.json`` under a local base, in sorted order."""

    def dirs(path: str) -> list[str]:
        try:
            with os.scandir(path) as it:
                return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return []

    safe_task = _safe(task_id) if task_id is not None else None
    dags = [_safe(dag_id)] if dag_id is not None else dirs(root)
    for dag in dags:
        dag_dir = os.path.join(root, dag)
        for run in dirs(dag_dir):
            run_dir = os.path.join(dag_dir, run)
            for task in dirs(run_dir):
                if not _task_dir_matches(task, safe_task):
                    continue
                task_dir = os.path.join(run_dir, task)
                for try_ in dirs(task_dir):
                    if try_.startswith(_TRY_PREFIX):
                        path = os.path.join(task_dir, try_, RECORD_FILE)
                        if os.path.isfile(path):
                            yield path


def _remote_candidates(base: str, dag_id: str | None, task_id: str | None) -> Iterator[tuple[str, Any]]:
    """(URI, ObjectStoragePath) of every record under a remote base, in sorted order."""
    from airflow.sdk import ObjectStoragePath

    root = ObjectStoragePath(base)
    fs = root.fs
    prefix = root.path.rstrip("/")
    dag = _safe(dag_id) if dag_id is not None else "*"
    safe_task = _safe(task_id) if task_id is not None else None
    task = f"{safe_task}*" if safe_task is not None else "*"
    try:
        found = fs.glob(f"{prefix}/{dag}/*/{task}/{_TRY_PREFIX}*/{RECORD_FILE}")
    except (FileNotFoundError, OSError):
        return
    for name in sorted(found):
        rel = name[len(prefix) :].strip("/").split("/") if name.startswith(prefix) else []
        if len(rel) != 5 or not _task_dir_matches(rel[2], safe_task):
            continue
        yield f"{base.rstrip('/')}/{'/'.join(rel)}", root.joinpath(*rel)


def _in_range(started: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or started >= since) and (until is None or started < until)


def _reader(logger: Any) -> Any:
    def read(uri: str, text: Any) -> StoredRecord | None:
        try:
            record = json.loads(text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError) as e:
            logger.warning("Skipping execution record %s: it cannot be read as JSON (%s)", uri, e)
            return None
        problem = _problem(record)
        if problem is not None:
            logger.warning("Skipping execution record %s: %s", uri, problem)
            return None
        return StoredRecord(uri=uri, record=record)

    return read


def _local_text(path: str) -> Any:
    def text() -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    return text


def read_record(location: str, *, log: Any = None) -> StoredRecord | None:
    """The record stored in one try's output folder, or None (no record, or a malformed one:
    one warning naming the file).

    :param location: the try's folder (:func:`airflow_mlplatform.storage.output_location`).
    :param log: a logger for the warning (default: this module's).
    """
    read = _reader(log or _log)
    if is_local(location):
        path = os.path.join(str(local_path(location).expanduser()), RECORD_FILE)
        return read(path, _local_text(path))
    from airflow.sdk import ObjectStoragePath

    uri = f"{location.rstrip('/')}/{RECORD_FILE}"
    return read(uri, ObjectStoragePath(uri).read_text)


def iter_records(
    *,
    base: str | None = None,
    dag_id: str | None = None,
    task_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    log: Any = None,
) -> Iterator[StoredRecord]:
    """Every stored execution record under ``base`` that matches, in path order (DAG, run,
    task, try).

    :param base: where records are stored; default ``[mlplatform] output_base``.
    :param dag_id: only this DAG's records.
    :param task_id: only this task's records (each mapped index of it too).
    :param since: only tries that started at or after this time (naive times are UTC).
    :param until: only tries that started before this time (naive times are UTC).
    :param log: a logger for the warnings about malformed records (default: this module's).
    """
    from airflow_mlplatform import config

    base = base or config.output_base()
    logger = log or _log
    since, until = _aware(since), _aware(until)

    parse = _reader(logger)

    def read(uri: str, text: Any) -> StoredRecord | None:
        stored = parse(uri, text)
        if stored is None:
            return None
        task = stored.record["task"]
        if (dag_id is not None and task["dag_id"] != dag_id) or (
            task_id is not None and task["task_id"] != task_id
        ):
            return None
        return stored if _in_range(stored.started, since, until) else None

    if is_local(base):
        root = str(local_path(base).expanduser())
        for path in _local_candidates(root, dag_id, task_id):
            found = read(path, _local_text(path))
            if found is not None:
                yield found
        return
    for uri, path in _remote_candidates(base, dag_id, task_id):
        found = read(uri, path.read_text)
        if found is not None:
            yield found


def iter_summaries(
    *,
    base: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    log: Any = None,
) -> Iterator[StoredRecord]:
    """The date range's records, summarised (``task``, ``timings``, ``status``, ``usage``,
    ``environment.profile``, ``where.backend``), from the store's date index: the fast path of
    usage reports (:mod:`airflow_mlplatform.record_index`; it reads only the days asked for).

    The first call on a store whose index is not complete (records older than the index) reads
    every record once with :func:`iter_records` and builds the index. Malformed entries are
    skipped with a warning, as records are.

    :param base: where records are stored; default ``[mlplatform] output_base``.
    :param since: only tries that started at or after this time (naive times are UTC).
    :param until: only tries that started before this time (naive times are UTC).
    :param log: a logger for the warnings (default: this module's).
    """
    from airflow_mlplatform import record_index

    base, logger = _indexed_store(base, log)
    since, until = _aware(since), _aware(until)
    for uri, record in record_index.read_days(base, record_index.days(base, since, until)):
        problem = _problem(record)
        if problem is not None:
            logger.warning("Skipping execution record %s (usage index): %s", uri, problem)
            continue
        stored = StoredRecord(uri=uri, record=record)
        if _in_range(stored.started, since, until):
            yield stored


def _indexed_store(base: str | None, log: Any) -> tuple[str, Any]:
    """The store's location and logger, once its date index is complete (built on first use).

    :param base: where records are stored; default ``[mlplatform] output_base``.
    :param log: a logger (default: this module's).
    """
    from airflow_mlplatform import config, record_index

    base = base or config.output_base()
    logger = log or _log
    if not record_index.is_complete(base):
        logger.info("Indexing the execution records under %s by day (once)", base)
        record_index.rebuild(base, iter_records(base=base, log=logger))
    return base, logger


def fold_days(
    *,
    base: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    name: str,
    fold: Callable[[list[StoredRecord]], Any],
    log: Any = None,
) -> Iterator[Any]:
    """``fold(records of one day)`` for each day of the range, from the date index (as
    :func:`iter_summaries` reads it); a whole day that is over is folded once and cached beside it
    under ``name`` (again when late records change it). A day the range covers in part is folded
    from its records in the range, never cached.

    :param base: where records are stored; default ``[mlplatform] output_base``.
    :param since: only tries that started at or after this time (naive times are UTC).
    :param until: only tries that started before this time (naive times are UTC).
    :param name: the cache's name, with a version (``usage-rollup-1``).
    :param fold: the day's valid records -> a JSON-ready value.
    :param log: a logger for the warnings (default: this module's).
    """
    from airflow_mlplatform import record_index

    base, logger = _indexed_store(base, log)
    since, until = _aware(since), _aware(until)

    def valid(entries: dict[str, dict[str, Any]], whole: bool) -> list[StoredRecord]:
        out = []
        for uri, record in entries.items():
            problem = _problem(record)
            if problem is not None:
                logger.warning("Skipping execution record %s (usage index): %s", uri, problem)
                continue
            stored = StoredRecord(uri=uri, record=record)
            if whole or _in_range(stored.started, since, until):
                out.append(stored)
        return out

    for day in record_index.days(base, since, until):
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
        whole = (since is None or since <= start) and (until is None or start + timedelta(days=1) <= until)
        if whole:
            yield record_index.cached_day(base, day, name=name, compute=lambda e: fold(valid(e, True)))
        else:
            yield fold(valid(record_index.read_day(base, day, compact=False), False))
