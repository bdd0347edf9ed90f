"""A date-partitioned index of stored execution records: what reading a month needs, fast.

Scanning ``{base}/{dag}/{run}/{task}/try-{n}/execution_record.json`` for 100,000 records means
listing some 400,000 folders and parsing 100,000 whole records. The index keeps, per UTC day a
try started, one summary line per record (``task``, ``timings``, ``status``, ``usage`` without
its labels, ``environment.profile``, ``where.backend``: what usage reports read)::

    {base}/.usage-index/2026-11-03.jsonl        compacted days: {"uri": ..., "record": summary}
    {base}/.usage-index/2026-11-03/<hash>.json  entries added since (one small file per try)
    {base}/.usage-index/COMPLETE                written once the whole store was indexed

- writing: ``jobs.store_record`` adds each record's entry (:func:`add`); a failure to do so is
  logged and never fails the task (the record itself is stored);
- reading (:func:`read_days`, used by :func:`airflow_mlplatform.record_store.iter_summaries`): a
  day's compacted lines and its newer entries, deduplicated by record URI; days that are over
  (before yesterday, UTC) get their entries folded into the compacted file;
- a store whose index is not ``COMPLETE`` (records written before the index existed) is read by
  the full scan once, which builds the index (:func:`rebuild`).

Works on a local base and on any ObjectStoragePath URI (no appends: one object per entry).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

log = logging.getLogger(__name__)

INDEX_DIR = ".usage-index"
COMPLETE = "COMPLETE"


#: Fields of the usage section the index leaves out (the record has them; ``tenant``,
#: ``cost_centre`` and ``node_pool`` say what usage reports need of them).
_USAGE_LEFT_OUT = ("labels", "worker")
_REPLICA_LEFT_OUT = ("node_pool",)


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a record the index keeps.

    :param record: an execution record.
    """
    out: dict[str, Any] = {
        k: record[k] for k in ("schema_version", "status", "task", "timings", "error") if k in record
    }
    section = record.get("usage")
    if isinstance(section, Mapping):
        slim = {k: v for k, v in section.items() if k not in _USAGE_LEFT_OUT}
        if isinstance(slim.get("replicas"), list):
            slim["replicas"] = [
                {k: v for k, v in r.items() if k not in _REPLICA_LEFT_OUT} if isinstance(r, Mapping) else r
                for r in slim["replicas"]
            ]
        out["usage"] = slim
    profile = (record.get("environment") or {}).get("profile")
    if profile is not None:
        out["environment"] = {"profile": profile}
    backend = (record.get("where") or {}).get("backend")
    if backend is not None:
        out["where"] = {"backend": backend}
    return out


def _root(base: str) -> Any:
    from airflow_mlplatform.storage import is_local, local_path

    if is_local(base):
        return local_path(base).expanduser() / INDEX_DIR
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(base.rstrip("/")) / INDEX_DIR


def day_of(record: Mapping[str, Any]) -> str | None:
    """The UTC day the try started (``YYYY-MM-DD``), or None."""
    started = str((record.get("timings") or {}).get("started") or "")
    try:
        when = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).date().isoformat()


def add(base: str, uri: str, record: Mapping[str, Any]) -> None:
    """Add one stored record's entry to the index of ``base``.

    :param base: the record store (``[mlplatform] output_base``).
    :param uri: where the record is stored.
    :param record: the record.
    """
    day = day_of(record)
    if day is None:
        return
    folder = _root(base) / day
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(uri.encode()).hexdigest()[:32] + ".json"
    (folder / name).write_text(json.dumps({"uri": uri, "record": summary(record)}))


def is_complete(base: str) -> bool:
    """Whether every record of ``base`` is in its index (:func:`rebuild` ran once)."""
    return bool((_root(base) / COMPLETE).exists())


def _lines(text: str, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            yield str(entry["uri"]), dict(entry["record"])
        except (ValueError, KeyError, TypeError):
            log.warning("Skipping line %d of usage index %s: not an index entry", n, where)


def read_day(base: str, day: str, *, compact: bool) -> dict[str, dict[str, Any]]:
    """``{record uri: summary}`` of the tries that started on ``day``.

    :param base: the record store.
    :param day: ``YYYY-MM-DD``.
    :param compact: fold the day's newer entries into its compacted file (the day is over).
    """
    root = _root(base)
    packed = root / f"{day}.jsonl"
    entries: dict[str, dict[str, Any]] = {}
    if packed.exists():
        entries.update(_lines(packed.read_text(), str(packed)))
    folder = root / day
    loose = sorted(folder.iterdir()) if folder.exists() else []
    for path in loose:
        try:
            entry = json.loads(path.read_text())
            entries[str(entry["uri"])] = dict(entry["record"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("Skipping usage index entry %s: it cannot be read (a write in progress?)", path)
    if compact and loose:
        _write_packed(packed, entries)
        for path in loose:
            with contextlib.suppress(OSError):
                path.unlink()
    return entries


def _write_packed(packed: Any, entries: Mapping[str, Mapping[str, Any]]) -> None:
    _write_lines(packed, {u: json.dumps({"uri": u, "record": r}) for u, r in entries.items()})


def _write_lines(packed: Any, lines: Mapping[str, str]) -> None:
    """Write a day's compacted file (its lines sorted by record URI), atomically where the store can."""
    text = "".join(lines[u] + "\n" for u in sorted(lines))
    tmp = packed.with_name(packed.name + ".tmp")
    tmp.write_text(text)
    try:
        tmp.replace(packed)  # atomic on a local disk
    except (AttributeError, NotImplementedError, OSError):
        packed.write_text(text)
        tmp.unlink()


def days(base: str, since: datetime | None, until: datetime | None) -> list[str]:
    """The days of the index within [since, until) (every indexed day when open-ended)."""
    if since is not None and until is not None:
        first, last = (
            since.astimezone(timezone.utc).date(),
            (until - timedelta(microseconds=1)).astimezone(timezone.utc).date(),
        )
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    root = _root(base)
    names = {p.name.removesuffix(".jsonl") for p in root.iterdir()} if root.exists() else set()
    found = sorted(n for n in names if len(n) == 10 and n[4] == "-" and n[7] == "-")
    lo = since.astimezone(timezone.utc).date().isoformat() if since else ""
    hi = (until - timedelta(microseconds=1)).astimezone(timezone.utc).date().isoformat() if until else "9999"
    return [d for d in found if lo <= d <= hi]


def read_days(
    base: str, day_list: Iterable[str], *, today: date | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(uri, summary)`` of every entry of those days (days before yesterday get compacted).

    :param base: the record store.
    :param day_list: ``YYYY-MM-DD`` days.
    :param today: the current UTC day (default: now).
    """
    today = today or datetime.now(timezone.utc).date()
    settled = (today - timedelta(days=1)).isoformat()
    for day in day_list:
        yield from read_day(base, day, compact=day < settled).items()


def rebuild(base: str, stored: Iterable[Any]) -> int:
    """Index every record of a full scan (``record_store.iter_records``), then mark it ``COMPLETE``.

    :param base: the record store.
    :param stored: every ``StoredRecord`` of the store.
    :returns: how many records were indexed.
    """
    per_day: dict[str, dict[str, str]] = {}  # day -> uri -> its index line (text: small in memory)
    for s in stored:
        day = day_of(s.record)
        if day is not None:
            per_day.setdefault(day, {})[s.uri] = json.dumps({"uri": s.uri, "record": summary(s.record)})
    root = _root(base)
    root.mkdir(parents=True, exist_ok=True)
    for day, lines in per_day.items():
        folder = root / day
        loose = sorted(folder.iterdir()) if folder.exists() else []
        existing = read_day(base, day, compact=False)
        merged = {u: json.dumps({"uri": u, "record": r}) for u, r in existing.items() if u not in lines}
        merged.update(lines)
        _write_lines(root / f"{day}.jsonl", merged)
        for path in loose:  # packed now; entries written since stay for the next read
            with contextlib.suppress(OSError):
                path.unlink()
    (root / COMPLETE).write_text(datetime.now(timezone.utc).isoformat())
    return sum(len(lines) for lines in per_day.values())


def cached_day(base: str, day: str, *, name: str, compute: Any, today: date | None = None) -> Any:
    """A value derived from a day's entries, cached beside the day once it is over and compacted.

    Recomputed when the day's compacted file changes (late records); not cached for a day that
    is not over or still has entries to compact (they are compacted first when the day is over).

    :param base: the record store.
    :param day: ``YYYY-MM-DD``.
    :param name: the cache's name (say its version: ``usage-rollup-1``).
    :param compute: ``{uri: summary}`` of the day -> a JSON-ready value.
    :param today: the current UTC day (default: now).
    """
    today = today or datetime.now(timezone.utc).date()
    settled = day < (today - timedelta(days=1)).isoformat()
    root = _root(base)
    folder = root / day
    if not settled or (folder.exists() and any(True for _ in folder.iterdir())):
        return compute(read_day(base, day, compact=settled))
    packed = root / f"{day}.jsonl"
    source = packed.stat().st_size if packed.exists() else 0
    cache = root / f"{day}.{name}.json"
    if cache.exists():
        try:
            data = json.loads(cache.read_text())
            if data.get("source") == source:
                return data["value"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("Ignoring the unreadable cache %s (it is computed again)", cache)
    value = compute(read_day(base, day, compact=False))
    cache.write_text(json.dumps({"source": source, "value": value}))
    return value
