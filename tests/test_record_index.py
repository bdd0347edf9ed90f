"""The date index of stored records (record_index) behind record_store.iter_summaries."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

from airflow_mlplatform import record_index, record_store
from memory_fs import memory_filesystem  # noqa: F401
from usage_records import PROFILES, START, record, write


def _stored(base, day: int, run: str):
    rec = record(
        dag_id="d",
        run_id=run,
        task_id="t",
        started=START + timedelta(days=day),
        seconds=60,
        profile=PROFILES[0],
    )
    path = write(base, rec)
    return str(path), rec


def test_entries_written_with_the_records_are_read_by_day_without_the_records(tmp_path, caplog):
    base = tmp_path / "store"
    record_index.rebuild(str(base), [])  # a new store: complete from the start
    for day in range(5):
        uri, rec = _stored(base, day, f"r{day}")
        record_index.add(str(base), uri, rec)
    bad = base / record_index.INDEX_DIR / (START + timedelta(days=4)).date().isoformat() / "bad.json"
    bad.write_text("{not json")
    for path in base.glob("d/*/t/try-1/execution_record.json"):
        path.unlink()  # the index alone answers
    with caplog.at_level(logging.WARNING):
        got = list(
            record_store.iter_summaries(
                base=str(base), since=START + timedelta(days=1), until=START + timedelta(days=3)
            )
        )
    assert sorted(s.record["task"]["run_id"] for s in got) == ["r1", "r2"]
    assert got[0].record["usage"]["tenant"] == "research" and "parameters" not in got[0].record
    assert "bad.json" not in caplog.text  # a day outside the range is not read


def test_settled_days_are_compacted_once_and_never_counted_twice(tmp_path):
    base = tmp_path / "store"
    record_index.rebuild(str(base), [])
    for run in ("a", "b"):
        uri, rec = _stored(base, 0, run)
        record_index.add(str(base), uri, rec)
        record_index.add(str(base), uri, rec)  # a retried write: the same entry
    day = START.date().isoformat()
    later = date.fromisoformat(day) + timedelta(days=5)
    first = dict(record_index.read_days(str(base), [day], today=later))
    root = base / record_index.INDEX_DIR
    assert sorted(first) == sorted(str(p) for p in base.glob("d/*/t/try-1/execution_record.json"))
    assert (root / f"{day}.jsonl").is_file() and not list((root / day).iterdir())
    uri, rec = _stored(base, 0, "c")  # a late record of that day
    record_index.add(str(base), uri, rec)
    again = dict(record_index.read_days(str(base), [day], today=later))
    assert len(again) == 3 and len((root / f"{day}.jsonl").read_text().splitlines()) == 3


def test_an_older_store_is_indexed_once_by_the_full_scan(tmp_path):
    base = tmp_path / "store"
    for day in range(3):
        _stored(base, day, f"r{day}")
    assert not record_index.is_complete(str(base))
    got = list(record_store.iter_summaries(base=str(base)))
    assert len(got) == 3 and record_index.is_complete(str(base))
    packed = sorted((base / record_index.INDEX_DIR).glob("*.jsonl"))
    assert (
        len(packed) == 3
        and json.loads(packed[0].read_text().splitlines()[0])["record"]["schema_version"] == 2
    )
    assert (
        list(record_store.iter_records(base=str(base)))
        and len(list(record_store.iter_records(base=str(base)))) == 3
    )


def test_the_index_works_on_object_storage(memory_filesystem):  # noqa: F811
    import uuid

    from airflow.sdk import ObjectStoragePath

    base = f"memory://usage-{uuid.uuid4().hex}/outputs"
    record_index.rebuild(base, [])
    for day in range(2):
        rec = record(
            dag_id="d",
            run_id=f"r{day}",
            task_id="t",
            started=START + timedelta(days=day),
            seconds=60,
            profile=PROFILES[1],
        )
        record_index.add(base, f"{base}/d/r{day}/t/try-1/execution_record.json", rec)
    later = START.date() + timedelta(days=9)
    days = record_index.days(base, None, None)
    assert len(days) == 2
    first = dict(record_index.read_days(base, days, today=later))  # settled: compacted
    assert len(first) == 2 and dict(record_index.read_days(base, days, today=later)) == first
    assert (ObjectStoragePath(base) / record_index.INDEX_DIR / f"{days[0]}.jsonl").exists()
    got = list(record_store.iter_summaries(base=base))
    assert {s.record["usage"]["tenant"] for s in got} == {"vision"}


def test_a_day_that_is_over_is_folded_once_and_again_when_a_late_record_arrives(tmp_path):
    base = tmp_path / "store"
    record_index.rebuild(str(base), [])
    calls: list[int] = []

    def fold(records):
        calls.append(len(records))
        return len(records)

    for run in ("a", "b"):
        uri, rec = _stored(base, 0, run)
        record_index.add(str(base), uri, rec)
    day = dict(base=str(base), since=START, until=START + timedelta(days=1), name="count-1", fold=fold)
    assert [list(record_store.fold_days(**day)) for _ in range(3)] == [[2], [2], [2]]
    assert calls == [2, 2]  # compacted on the first read, folded and cached on the second, then read
    uri, rec = _stored(base, 0, "late")
    record_index.add(str(base), uri, rec)
    assert list(record_store.fold_days(**day)) == [3] and list(record_store.fold_days(**day)) == [3]
    half = dict(day, since=START + timedelta(hours=12))  # a part of the day: its records in range
    assert list(record_store.fold_days(**half)) == [0]
