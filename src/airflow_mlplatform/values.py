"""The value contract on the Airflow side: read what a job reported, push it to XCom.

A job reports named values with ``record(name, value)`` (one marked line on stdout) or
scrapbook's ``glue``, and metrics as JSON-object lines on stdout. Every operator turns
them into the same XComs: ``return_value`` (dict of values), one key per value,
``metrics`` (last value per key) and ``execution_record``.

Rules (the same for every task type):

- A record line is found wherever it starts in the stream, also glued after a partial line
  (``print("epoch 1/3", end="")`` then ``record(...)``).
- Non-finite floats (NaN, Infinity) in recorded values and metrics are stored as null, with a
  warning naming the key, in XCom and in the execution record alike (parameters reach the job
  as the language's NaN/Inf; the record stores them as null too).
- Size: a recorded value over :data:`MAX_VALUE_BYTES` (as JSON) or more than
  :data:`MAX_TOTAL_BYTES` of values in all is a :class:`RecordError` telling the user to write a
  file under ``output_dir()`` and record its path.
- XCom is bounded, the record file keeps everything: the first :data:`MAX_VALUES` names (in the
  order recorded) are pushed (``return_value`` and one XCom each), the rest only stored in the
  record file, with a warning that says how many names were left out of XCom; the
  ``execution_record`` XCom keeps those names' values and the last :data:`MAX_XCOM_SERIES`
  metric rows.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.exceptions import RecordError
from airflow_mlplatform.runtime import MAX_VALUE_BYTES, RECORD_PREFIX, check_name

log = logging.getLogger(__name__)

#: Most recorded names pushed to XCom per task (each becomes an XCom row; the record file keeps all).
MAX_VALUES = 1000
#: Most bytes of recorded values per task, as JSON.
MAX_TOTAL_BYTES = 4 * MAX_VALUE_BYTES
#: Metric rows kept in the ``execution_record`` XCom (the record file keeps all).
MAX_XCOM_SERIES = 1000
#: Longest stdout line kept for parsing (a longer one is skipped, record prefixes still found).
MAX_LINE_CHARS = 4 * MAX_VALUE_BYTES
#: Characters of one ``feed()`` parsed at a time (a whole stdout given at once is split up).
_WINDOW = 1 << 20
_TOO_BIG_HINT = "write it to a file under output_dir() and record the file's path (output_uri(name)) instead"


def finite(value: Any, *, what: str, warned: set[str] | None = None) -> Any:
    """``value`` with every NaN/Infinity float replaced by None, warning once per ``what``.

    :param value: a JSON-like value (dicts and lists are walked).
    :param what: what holds it, for the warning (``recorded value 'acc'``).
    :param warned: names already warned about (so a long series warns once per key).
    """
    found: list[str] = []

    def walk(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            found.append(str(v))
            return None
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    out = walk(value)
    if found and (warned is None or what not in warned):
        if warned is not None:
            warned.add(what)
        log.warning("%s holds %s: stored as null (non-finite floats are not JSON)", what, found[0])
    return out


def finite_items(values: Mapping[str, Any], *, what: str, warned: set[str] | None = None) -> dict[str, Any]:
    """Each item through :func:`finite`, the warning naming the key.

    :param values: name to value.
    :param what: the noun for the warning (``recorded value``, ``metric``, ``parameter``).
    :param warned: names already warned about.
    """
    return {k: finite(v, what=f"{what} {k!r}", warned=warned) for k, v in values.items()}


@dataclass
class JobOutputs:
    """Named values and metric rows reported by one job.

    :param values: recorded values by name; a later record of the same name wins.
    :param metric_rows: every metrics line, in order (the series).
    """

    values: dict[str, Any] = field(default_factory=dict)
    metric_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        """Last value of each metric key (the summary)."""
        return summarize_metrics(self.metric_rows)

    def merge(self, other: JobOutputs) -> None:
        """Add what ``other`` reported after what this one holds.

        :param other: outputs read later (they win on equal names).
        """
        self.values.update(other.values)
        self.metric_rows.extend(other.metric_rows)


class StreamParser:
    """Incremental parser of a job's stdout; feed it chunks as they arrive.

    Linear in the output: chunks of a long line are kept in a list and joined once, a line
    longer than :data:`MAX_LINE_CHARS` is dropped as it grows (only a record prefix in it is
    kept). A partial last line is parsed on ``close()``. Feeding never raises (readers in threads
    must keep draining pipes); a bad record is raised by ``close()``.
    """

    def __init__(self) -> None:
        self.outputs = JobOutputs()
        self.errors: list[RecordError] = []
        self._parts: list[str] = []
        self._size = 0
        self._overflow = False  # the current line grew past MAX_LINE_CHARS: not a metrics row
        self._warned: set[str] = set()

    def feed(self, text: str) -> None:
        """Parse every complete line in ``text`` (plus what was pending).

        :param text: a chunk of stdout.
        """
        if len(text) <= _WINDOW:
            self._feed(text)
            return
        for start in range(0, len(text), _WINDOW):  # bounded memory for a whole stdout at once
            self._feed(text[start : start + _WINDOW])

    def _feed(self, text: str) -> None:
        *lines, rest = text.split("\n")  # split() in C: far cheaper than a find() loop on short lines
        if lines and self._parts:  # the first line ends what was pending
            self._parts.append(lines[0])
            line, overflow = "".join(self._parts), self._overflow
            self._parts, self._size, self._overflow = [], 0, False
            self._line(line, overflow)
            lines = lines[1:]
        parse = self._line
        for line in lines:
            parse(line, False)
        if rest:
            self._parts.append(rest)
            self._size += len(rest)
            if self._size > MAX_LINE_CHARS:
                self._trim()

    def _trim(self) -> None:
        """Drop the head of an over-long partial line, keeping a record that starts in it."""
        pending = "".join(self._parts)
        at = pending.find(RECORD_PREFIX)
        if at >= 0 and len(pending) - at <= MAX_LINE_CHARS:
            keep = pending[at:]
        elif at >= 0:
            self.errors.append(
                RecordError(f"a record line is longer than {MAX_LINE_CHARS} characters; {_TOO_BIG_HINT}")
            )
            keep = pending[-(len(RECORD_PREFIX) - 1) :]
        else:
            keep = pending[-(len(RECORD_PREFIX) - 1) :]
        self._parts, self._size, self._overflow = [keep], len(keep), True

    def feed_line(self, line: str) -> None:
        """Parse one line of stdout.

        :param line: the line, with or without its newline.
        """
        self._line(line, False)

    def _line(self, line: str, overflow: bool) -> None:
        at = line.find(RECORD_PREFIX)
        if at >= 0:  # wherever it starts: a partial line may precede it
            self._record(line[at + len(RECORD_PREFIX) :])
            return
        if overflow:
            return
        line = line.strip()
        if line and line[0] == "{" and line[-1] == "}":
            row = _loads(line)
            if isinstance(row, dict) and row:
                # fast path: a row of finite scalars (nearly every row) is kept as parsed
                if not _finite_scalars(row):
                    row = finite_items(row, what="metric", warned=self._warned)
                self.outputs.metric_rows.append(row)

    def _record(self, text: str) -> None:
        item = _loads(text)
        if isinstance(item, dict) and "name" in item:
            try:  # keep reading: the job must not block on a full pipe
                name = check_name(item["name"])
                value = finite(item.get("value"), what=f"recorded value {name!r}")
                check_size(name, value)
            except RecordError as e:
                self.errors.append(e)
                return
            self.outputs.values[name] = value

    def close(self) -> JobOutputs:
        """Parse the last partial line and return everything read.

        :raises RecordError: a value was recorded under a reserved or malformed name, or is too
            large (the parser kept reading past it, so the job was never blocked).
        """
        if self._parts:
            line, overflow = "".join(self._parts), self._overflow
            self._parts, self._size, self._overflow = [], 0, False
            self._line(line, overflow)
        if self.errors:
            raise self.errors[0]
        return self.outputs


def _finite_scalars(row: Mapping[str, Any]) -> bool:
    """Whether every value of ``row`` is a scalar other than a NaN/Infinity float (nothing to walk).

    :param row: a parsed metrics row.
    """
    for value in row.values():
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is dict or kind is list:
            return False
    return True


_DECODE = json.JSONDecoder().decode  # json.loads without its per-call argument checks


def _loads(text: str) -> Any:
    try:
        return _DECODE(text)
    except ValueError:
        return None


def parse_stdout(text: str | Iterable[str]) -> JobOutputs:
    """Read recorded values and metric rows from a job's whole stdout.

    :param text: the stdout as one string or as an iterable of chunks.
    """
    parser = StreamParser()
    for chunk in [text] if isinstance(text, str) else text:
        parser.feed(chunk)
    return parser.close()


def summarize_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Last value of each key over metric rows, the way Valohai's ``cumulative_metadata`` does.

    :param rows: metric rows in the order they were printed.
    """
    summary: dict[str, Any] = {}
    for row in rows:
        summary.update(row)
    return summary


def check_size(name: str, value: Any) -> int:
    """The JSON size of ``value``; raise when it is over :data:`MAX_VALUE_BYTES`.

    :param name: the value's name, for the message.
    :param value: a JSON-serializable value.
    """
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode())
    except (TypeError, ValueError) as e:
        raise RecordError(f"recorded value {name!r} is not JSON-serializable: {e}") from e
    if size > MAX_VALUE_BYTES:
        raise RecordError(
            f"recorded value {name!r} is {size} bytes as JSON, over the limit of {MAX_VALUE_BYTES} "
            f"(values travel through Airflow's metadata DB); {_TOO_BIG_HINT}"
        )
    return size


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every name and value against the contract before anything is pushed or recorded.

    Non-finite floats become null (with a warning naming the key).

    :param values: named values a job reported.
    :raises RecordError: for a reserved or malformed name, a non-JSON value, a value over
        :data:`MAX_VALUE_BYTES` or more than :data:`MAX_TOTAL_BYTES` in all (more than
        :data:`MAX_VALUES` names is no error: see :func:`xcom_values`).
    """
    out: dict[str, Any] = {}
    total = 0
    for name, value in values.items():
        check_name(name)
        out[name] = finite(value, what=f"recorded value {name!r}")
        total += check_size(name, out[name])
    if total > MAX_TOTAL_BYTES:
        raise RecordError(
            f"the recorded values are {total} bytes as JSON in all, over the limit of {MAX_TOTAL_BYTES}; "
            f"{_TOO_BIG_HINT}"
        )
    return out


def xcom_values(values: Mapping[str, Any], *, record_uri: str | None = None) -> dict[str, Any]:
    """The values that go to XCom: the first :data:`MAX_VALUES` names, in the order recorded.

    More names are left out of XCom (each would be an XCom row) with a warning that says how many
    and where all of them are: the execution record file keeps every value.

    :param values: checked values (:func:`check_values`).
    :param record_uri: where the record file is, for the warning.
    """
    if len(values) <= MAX_VALUES:
        return dict(values)
    names = list(values)
    left_out = names[MAX_VALUES:]
    log.warning(
        "%d values were recorded; XCom takes at most %d names per task (each is an XCom row): "
        "%d names were left out of XCom (from %r on); every value is in the execution record file%s. "
        "Record one dict of them, or write them to a file under output_dir(), to pass them on.",
        len(names),
        MAX_VALUES,
        len(left_out),
        left_out[0],
        f" {record_uri}" if record_uri else "",
    )
    return {name: values[name] for name in names[:MAX_VALUES]}


def record_for_xcom(record: Mapping[str, Any]) -> dict[str, Any]:
    """The execution record as pushed to XCom: the values of the names XCom takes
    (:func:`xcom_values`) and the metric series cut to its last :data:`MAX_XCOM_SERIES` rows (the
    record file keeps all of both; ``values_truncated`` and ``series_truncated`` say so).

    :param record: the execution record.
    """
    out = dict(record)
    full_in = (out.get("outputs") or {}).get("record")
    recorded = out.get("values")
    if isinstance(recorded, Mapping) and len(recorded) > MAX_VALUES:
        out["values"] = {name: recorded[name] for name in list(recorded)[:MAX_VALUES]}
        out["values_truncated"] = {
            "total_names": len(recorded),
            "kept_names": MAX_VALUES,
            "full_values_in": full_in,
        }
    metrics = out.get("metrics")
    if isinstance(metrics, Mapping) and len(metrics.get("series") or []) > MAX_XCOM_SERIES:
        series = list(metrics["series"])
        out["metrics"] = {
            **metrics,
            "series": series[-MAX_XCOM_SERIES:],
            "series_truncated": {
                "total_rows": len(series),
                "kept_rows": MAX_XCOM_SERIES,
                "full_series_in": full_in,
            },
        }
    return out


def push_outputs(
    context: Mapping[str, Any],
    *,
    values: Mapping[str, Any],
    metrics: Mapping[str, Any],
    execution_record: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Push the contract's XComs and return the dict that becomes ``return_value``.

    Each value is pushed under its own key too: by Airflow when the operator has
    ``multiple_outputs=True`` (the provider's operators do), otherwise here.

    :param context: the task's Airflow context (needs ``ti``).
    :param values: recorded values; each is also pushed under its own key (the first
        :data:`MAX_VALUES` names: :func:`xcom_values`).
    :param metrics: metric summary (last value per key).
    :param execution_record: the execution record, or None.
    """
    record_uri = ((execution_record or {}).get("outputs") or {}).get("record")
    checked = xcom_values(check_values(values), record_uri=record_uri)
    ti = context["ti"]
    # Operators set multiple_outputs=True (as TaskFlow does): Airflow then pushes each key of
    # the returned dict itself, and XComArg resolves a recorded None as None.
    if not getattr(getattr(ti, "task", None), "multiple_outputs", False):
        for name, value in checked.items():
            ti.xcom_push(key=name, value=value)
    ti.xcom_push(key="metrics", value=finite_items(metrics, what="metric"))
    if execution_record is not None:
        ti.xcom_push(key="execution_record", value=record_for_xcom(execution_record))
    return checked
