"""Execution records written the way jobs.run_recorded writes them (er.build_record, then
jobs.store_record into storage.output_location's folder), for the readers' tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_mlplatform import execution_record as er
from airflow_mlplatform.jobs import store_record
from airflow_mlplatform.storage import OutputFolder, output_location

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def write(base: str, *, dag: str, run: str, task: str, try_: int = 1, map_index: int = -1, hour: float = 0,
          version: int = 1, parameters: Mapping[str, Any] | None = None,
          metric_rows: Sequence[Mapping[str, Any]] = ({"accuracy": 0.5},), status: str = "success",
          code: Mapping[str, Any] | None = None, where: Mapping[str, Any] | None = None,
          extra: Mapping[str, Any] | None = None) -> str:  # fmt: skip
    """Store one real record under ``base``; returns its try folder."""
    location = output_location(
        dag_id=dag, run_id=run, task_id=task, map_index=map_index, try_number=try_, base=base
    )
    folder = OutputFolder(location)
    started = T0 + timedelta(hours=hour)
    summary: dict[str, Any] = {}
    for row in metric_rows:
        summary.update(row)
    record = er.build_record(
        task={"dag_id": dag, "task_id": task, "run_id": run, "map_index": map_index, "try_number": try_},
        code=code if code is not None else {"path": "train.ipynb", "sha256": "ab" * 32},
        environment={},
        parameters=parameters if parameters is not None else {"C": hour},
        values={},
        metric_rows=list(metric_rows),
        metrics=summary,
        outputs={"record": folder.uri(er.RECORD_FILE)},
        started=started,
        ended=started + timedelta(seconds=3),
        ran_on=where if where is not None else {"backend": "local", "hostname": "worker-1"},
        status=status,
    )
    record["schema_version"] = version  # build_record writes the current version (2)
    if version == 2:
        record["usage"] = {"cpu_seconds": 1.0}
    record.update(extra or {})
    store_record(folder, record)
    folder.cleanup()
    return location
