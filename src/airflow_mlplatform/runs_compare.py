"""Runs of one task side by side, from their stored execution records (no tracking server).

:func:`compare` turns :class:`~airflow_mlplatform.record_store.StoredRecord` s into a
:class:`Comparison`: one row per run (its latest try; one row per mapped index), with the
parameters, the final metrics, the code sha, the duration and where it ran, and the metric
series for the charts. ``mlplatform runs compare``, its HTML report and the Experiments view
in Airflow's UI all show this one model. Pure functions (stdlib only), and :func:`load`, which
reads the records through :mod:`airflow_mlplatform.record_store`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: keys of a metrics line that give its step (the x axis of the series), not a metric series
STEP_KEYS = ("step", "epoch", "iteration")
#: the fixed columns, before the parameters and metrics
FIXED_COLUMNS = ("run", "try", "map_index", "started", "status", "duration_s", "code", "where")
#: columns that identify a row, kept by ``diff``
ID_COLUMNS = ("run", "try", "map_index")
PARAM_PREFIX = "param:"
METRIC_PREFIX = "metric:"


@dataclass(frozen=True)
class RunRow:
    """One run of the task (its latest try, for one mapped index).

    :param run_id: the DAG run.
    :param try_number: the try shown (the latest stored one).
    :param map_index: the mapped index (-1 when not mapped).
    :param started: start time (UTC, ``YYYY-MM-DDTHH:MM:SSZ``).
    :param status: ``success``, ``failed`` or ``killed``.
    :param duration_s: how long the try ran.
    :param code: the code's sha256 (or git commit) when the record has one.
    :param where: where it ran, in a few words.
    :param parameters: the parameters it received.
    :param metrics: the final metrics (last value per key).
    :param series: numeric metric series, ``{name: [[step, value], ...]}``.
    :param record_uri: where its execution record is stored.
    """

    run_id: str
    try_number: int
    map_index: int
    started: str
    status: str
    duration_s: float | None
    code: str
    where: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    series: dict[str, list[list[float]]] = field(default_factory=dict)
    record_uri: str = ""

    def cell(self, column: str) -> Any:
        """The row's value in ``column`` (a fixed column, ``param:X`` or ``metric:Y``).

        :param column: the column's name.
        """
        if column.startswith(PARAM_PREFIX):
            return self.parameters.get(column[len(PARAM_PREFIX) :])
        if column.startswith(METRIC_PREFIX):
            return self.metrics.get(column[len(METRIC_PREFIX) :])
        return getattr(self, _ATTRIBUTES[column])


_ATTRIBUTES = {
    "run": "run_id",
    "try": "try_number",
    "map_index": "map_index",
    "started": "started",
    "status": "status",
    "duration_s": "duration_s",
    "code": "code",
    "where": "where",
}


@dataclass(frozen=True)
class Comparison:
    """The runs of one task, oldest first.

    :param dag_id: the DAG.
    :param task_id: the task.
    :param rows: one per run (and mapped index).
    :param parameters: every parameter name seen, sorted.
    :param metrics: every final metric name seen, sorted.
    """

    dag_id: str
    task_id: str
    rows: list[RunRow]
    parameters: list[str]
    metrics: list[str]

    def columns(self, *, diff: bool = False) -> list[str]:
        """The table's columns; with ``diff`` only those whose values differ between rows (the
        run's identity is always kept). ``map_index`` only for a mapped task.

        :param diff: keep only the columns that differ.
        """
        mapped = any(r.map_index >= 0 for r in self.rows)
        cols = [c for c in FIXED_COLUMNS if c != "map_index" or mapped]
        cols += [PARAM_PREFIX + p for p in self.parameters] + [METRIC_PREFIX + m for m in self.metrics]
        if not diff:
            return cols
        return [c for c in cols if c in ID_COLUMNS or len({format_cell(r.cell(c)) for r in self.rows}) > 1]

    def to_json(self, *, diff: bool = False) -> dict[str, Any]:
        """A JSON-ready dict: the columns, and per row its cells and series (what the
        Experiments view draws).

        :param diff: keep only the columns that differ.
        """
        columns = self.columns(diff=diff)
        return {
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "columns": columns,
            "parameters": self.parameters,
            "metrics": self.metrics,
            "rows": [
                {
                    "run_id": r.run_id,
                    "try_number": r.try_number,
                    "map_index": r.map_index,
                    "cells": [r.cell(c) for c in columns],
                    "parameters": r.parameters,
                    "final": r.metrics,
                    "series": r.series,
                }
                for r in self.rows
            ],
        }


def format_cell(value: Any, *, width: int | None = None) -> str:
    """A cell as text: floats with 4 significant digits, None empty, objects as compact JSON.

    :param value: the cell's value.
    :param width: cut longer text to this many characters (ending in ``…``).
    """
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    else:
        text = str(value)
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool).

    :param value: anything.
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def code_of(code: Mapping[str, Any]) -> str:
    """The code's identity: its sha256 (12 characters), else its git commit, else ''.

    :param code: the record's ``code`` section.
    """
    for key in ("sha256", "git_commit"):
        if isinstance(code.get(key), str) and code[key]:
            return str(code[key])[:12]
    return ""


def where_of(where: Mapping[str, Any], environment: Mapping[str, Any]) -> str:
    """Where a try ran, in a few words: backend, compute profile, and the pod/job/host.

    :param where: the record's ``where`` section.
    :param environment: the record's ``environment`` section (its compute ``profile``).
    """
    parts = [str(where.get("backend") or "?")]
    if environment.get("profile"):
        parts[0] += f" ({environment['profile']})"
    for key in ("pod", "tfjob", "daskcluster", "sparkapplication", "execution", "url", "hostname"):
        if where.get(key):
            parts.append(str(where[key]))
            break
    return " ".join(parts)


def series_of(rows: Iterable[Any]) -> dict[str, list[list[float]]]:
    """The numeric metric series of a record: ``{name: [[step, value], ...]}`` in order.

    A line's ``step`` (or ``epoch``/``iteration``) is its x value; without one, the count of
    earlier lines with that metric.

    :param rows: the record's ``metrics.series`` (one dict per stdout JSON line).
    """
    out: dict[str, list[list[float]]] = {}
    isfinite = math.isfinite
    for row in rows:
        if not isinstance(row, dict):
            continue
        step = None
        for k in STEP_KEYS:
            v: Any = row.get(k)
            if type(v) in (int, float) and isfinite(v):
                step = float(v)
                break
        for key, value in row.items():
            # type(), not isinstance(): bools are not metric values
            if type(value) not in (int, float) or key in STEP_KEYS or not isfinite(value):
                continue
            points = out.get(key)
            if points is None:
                points = out[key] = []
            points.append([step if step is not None else float(len(points)), float(value)])
    return out


def _utc_seconds(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds); other text as it is."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value or "")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _section(parent: Mapping[str, Any], key: str, kind: type) -> Any:
    """``parent[key]`` when it is a ``kind``, else an empty one (a partial record)."""
    value = parent.get(key)
    return value if isinstance(value, kind) else kind()


def _map_index(task: Mapping[str, Any]) -> int:
    value = task.get("map_index")
    return int(value) if isinstance(value, int) else -1


def row_of(stored: Any, *, series: bool = True) -> RunRow:
    """One table row from a stored record.

    :param stored: a :class:`~airflow_mlplatform.record_store.StoredRecord`.
    :param series: read the metric series too (the charts need them, the table does not).
    """
    record = stored.record
    task = record["task"]
    metrics: dict[str, Any] = _section(record, "metrics", dict)
    summary: dict[str, Any] = _section(metrics, "summary", dict)
    lines: list[Any] = _section(metrics, "series", list) if series else []
    timings: dict[str, Any] = _section(record, "timings", dict)
    duration: Any = timings.get("duration_s")
    return RunRow(
        run_id=str(task["run_id"]),
        try_number=int(task.get("try_number") or 1),
        map_index=_map_index(task),
        started=_utc_seconds(timings.get("started")),
        status=str(record.get("status", "")),
        duration_s=float(duration) if is_number(duration) else None,
        code=code_of(_section(record, "code", dict)),
        where=where_of(_section(record, "where", dict), _section(record, "environment", dict)),
        parameters=dict(_section(record, "parameters", dict)),
        metrics=dict(summary),
        series=series_of(lines),
        record_uri=stored.uri,
    )


def compare(
    records: Iterable[Any], *, dag_id: str, task_id: str, last: int | None = None, series: bool | int = True
) -> Comparison:
    """The runs of ``task_id`` side by side: the latest try of each run (and mapped index),
    oldest first.

    :param records: stored records (of this task; others are ignored).
    :param dag_id: the DAG.
    :param task_id: the task.
    :param last: keep only the ``last`` most recent runs (every mapped index of each).
    :param series: read the metric series (for the charts); a number N: only those of the N
        most recent rows (the HTML report draws those only; reading them is most of the cost).
    """
    latest: dict[tuple[str, int], Any] = {}
    for stored in records:
        task = stored.record["task"]
        if task.get("dag_id") != dag_id or task.get("task_id") != task_id:
            continue
        key = (str(task["run_id"]), _map_index(task))
        held = latest.get(key)
        if held is None or int(task.get("try_number") or 1) >= int(
            held.record["task"].get("try_number") or 1
        ):
            latest[key] = stored
    everything = series is True
    read = sorted(
        ((row_of(s, series=everything), s) for s in latest.values()),
        key=lambda pair: (pair[0].started, pair[0].run_id, pair[0].map_index),
    )
    if not everything and series:  # the series of the most recent rows only
        cut = max(0, len(read) - int(series))
        read[cut:] = [(row_of(s, series=True), s) for _, s in read[cut:]]
    rows = [row for row, _ in read]
    if last is not None:
        runs: list[str] = []
        for r in reversed(rows):
            if r.run_id not in runs:
                runs.append(r.run_id)
        keep = set(runs[:last])
        rows = [r for r in rows if r.run_id in keep]
    parameters = sorted({p for r in rows for p in r.parameters})
    metrics = sorted({m for r in rows for m in r.metrics})
    return Comparison(dag_id=dag_id, task_id=task_id, rows=rows, parameters=parameters, metrics=metrics)


def load(
    *, dag_id: str, task_id: str, last: int | None = None, base: str | None = None, series: bool | int = True
) -> Comparison:
    """The comparison of a task's runs stored under ``base``.

    :param dag_id: the DAG.
    :param task_id: the task.
    :param last: only the ``last`` most recent runs.
    :param base: where records are stored (default ``[mlplatform] output_base``).
    :param series: read the metric series (for the charts); a number N: those of the N most
        recent rows only.
    """
    from airflow_mlplatform.record_store import iter_records

    records = iter_records(base=base, dag_id=dag_id, task_id=task_id)
    return compare(records, dag_id=dag_id, task_id=task_id, last=last, series=series)


def text_table(comparison: Comparison, *, diff: bool = False, width: int = 24) -> str:
    """The comparison as an aligned plain-text table.

    :param comparison: what to show.
    :param diff: keep only the columns that differ.
    :param width: the widest a cell may be.
    """
    columns = comparison.columns(diff=diff)
    body = [[format_cell(r.cell(c), width=width) for c in columns] for r in comparison.rows]
    head = [format_cell(c, width=width) for c in columns]
    sizes = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(sizes[i]) for i, h in enumerate(head)).rstrip()]
    lines.append("  ".join("-" * s for s in sizes))
    lines += ["  ".join(cell.ljust(sizes[i]) for i, cell in enumerate(b)).rstrip() for b in body]
    return "\n".join(lines)
