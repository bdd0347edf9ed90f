"""record_store.iter_records over records written the way jobs.run_recorded writes them, on a
local base and on an object-storage base (fsspec's in-memory filesystem through
ObjectStoragePath, the same code path as s3:// or gs://)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_mlplatform import execution_record as er
from airflow_mlplatform.record_store import StoredRecord, iter_records
from airflow_mlplatform.storage import output_location
from memory_fs import memory_filesystem  # noqa: F401
from stored_records import T0, write


def _populate(base: str) -> None:
    write(base, dag="d1", run="r1", task="train", hour=0)
    write(base, dag="d1", run="r1", task="train", try_=2, hour=1, version=2)
    write(base, dag="d1", run="r2", task="train", hour=2)
    write(base, dag="d1", run="r2", task="prepare", hour=2)
    write(base, dag="d1", run="r3", task="score", map_index=0, hour=3)
    write(base, dag="d1", run="r3", task="score", map_index=1, hour=3)
    write(base, dag="d2", run="r1", task="train", hour=4)


def _ids(found: list[StoredRecord]) -> list[tuple]:
    return [
        (s.task["dag_id"], s.task["run_id"], s.task["task_id"], s.task["map_index"], s.task["try_number"])
        for s in found
    ]


@pytest.fixture(params=["local", "object"])
def base(request, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "outputs")
    request.getfixturevalue("memory_filesystem")
    return f"memory://records-{uuid.uuid4().hex}/outputs"


def test_filters_by_dag_task_and_time(base: str) -> None:
    _populate(base)
    assert len(list(iter_records(base=base))) == 7
    assert _ids(list(iter_records(base=base, dag_id="d1", task_id="train"))) == [
        ("d1", "r1", "train", -1, 1),
        ("d1", "r1", "train", -1, 2),
        ("d1", "r2", "train", -1, 1),
    ]
    # every mapped index of a task; versions 1 and 2 alike
    assert [s.task["map_index"] for s in iter_records(base=base, dag_id="d1", task_id="score")] == [0, 1]
    v2 = [s for s in iter_records(base=base, dag_id="d1") if s.record["schema_version"] == 2]
    assert len(v2) == 1
    assert v2[0].record["usage"] == {"cpu_seconds": 1.0}
    # since inclusive, until exclusive; naive datetimes are UTC
    found = iter_records(
        base=base, since=T0 + timedelta(hours=2), until=(T0 + timedelta(hours=4)).replace(tzinfo=None)
    )
    assert sorted(s.task["task_id"] for s in found) == ["prepare", "score", "score", "train"]
    first = next(iter_records(base=base, dag_id="d2"))
    assert first.started == T0 + timedelta(hours=4)
    assert first.uri.endswith("/d2/r1/train/try-1/execution_record.json")
    assert first.record["outputs"]["record"] == first.uri
    with pytest.raises(AttributeError):
        first.uri = "x"  # type: ignore[misc]
    assert list(iter_records(base=base, dag_id="nope")) == []


def test_default_base_is_output_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__OUTPUT_BASE", str(tmp_path / "configured"))
    write(str(tmp_path / "configured"), dag="d", run="r", task="t")
    assert _ids(list(iter_records(dag_id="d"))) == [("d", "r", "t", -1, 1)]


def test_task_id_with_dots_is_not_confused_with_a_mapped_index(tmp_path: Path) -> None:
    base = str(tmp_path)
    write(base, dag="d", run="r", task="group.train")
    write(base, dag="d", run="r", task="group", map_index=3)
    assert [s.task["task_id"] for s in iter_records(base=base, task_id="group.train")] == ["group.train"]
    assert [s.task["map_index"] for s in iter_records(base=base, task_id="group")] == [3]


def test_malformed_records_are_skipped_with_one_warning_each(base: str, caplog) -> None:
    from airflow.sdk import ObjectStoragePath

    _populate(base)
    bad = {
        "truncated": '{"schema_version": 1, "task": {"dag_id": "d1"',
        "list": "[1, 2]",
        "no-task": '{"schema_version": 1, "timings": {"started": "2026-03-01T00:00:00+00:00"}}',
        "bad-time": '{"schema_version": 1, "task": {"dag_id": "d1", "task_id": "train", "run_id": "x"}, "timings": {"started": "yesterday"}}',
        "binary": b"\xff\xfe\x00",
    }
    for run, body in bad.items():
        location = output_location(
            dag_id="d1", run_id=run, task_id="train", map_index=-1, try_number=1, base=base
        )
        path = ObjectStoragePath(location if "://" in location else f"file://{location}") / er.RECORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
    caplog.set_level(logging.WARNING)
    found = list(iter_records(base=base, dag_id="d1", task_id="train"))
    assert len(found) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad)
    for run in bad:
        assert sum(f"/d1/{run}/train/try-1/execution_record.json" in w for w in warnings) == 1, warnings
    assert any("cannot be read as JSON" in w for w in warnings)
    assert any("no 'task' object" in w for w in warnings)
    assert any("timings.started" in w for w in warnings)


def test_given_logger_gets_the_warnings(tmp_path: Path, caplog) -> None:
    target = tmp_path / "d" / "r" / "t" / "try-1"
    target.mkdir(parents=True)
    (target / er.RECORD_FILE).write_text("{")
    mine = logging.getLogger("mine.compare")
    caplog.set_level(logging.WARNING)
    assert list(iter_records(base=str(tmp_path), log=mine)) == []
    assert [r.name for r in caplog.records] == ["mine.compare"]
    assert str(target / er.RECORD_FILE) in caplog.records[0].getMessage()


@pytest.mark.usefixtures("memory_filesystem")
def test_missing_base_gives_nothing(tmp_path: Path) -> None:
    assert list(iter_records(base=str(tmp_path / "absent"))) == []
    assert list(iter_records(base=f"memory://absent-{uuid.uuid4().hex}")) == []


def test_read_record_of_one_try(base: str, caplog) -> None:
    from airflow_mlplatform.record_store import read_record

    location = write(base, dag="d", run="r", task="t", try_=2)
    found = read_record(location)
    assert (
        found is not None
        and found.task["try_number"] == 2
        and found.uri.endswith("try-2/execution_record.json")
    )
    assert read_record(location.replace("try-2", "try-3")) is None
    caplog.set_level(logging.WARNING)
    bad = write(base, dag="d", run="r", task="t", try_=4, extra={"task": "oops"})
    assert read_record(bad) is None
    assert next(r.getMessage() for r in caplog.records if "try-4" in r.getMessage()).endswith(
        "it has no 'task' object"
    )
