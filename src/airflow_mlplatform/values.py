"""The value contract on the Airflow side: read what a job reported, push it to XCom.

A job reports named values with ``record(name, value)`` (one marked line on stdout) or
scrapbook's ``glue``, and metrics as JSON-object lines on stdout. Every operator turns
them into the same XComs: ``return_value`` (dict of values), one key per value,
``metrics`` (last value per key) and ``execution_record``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.exceptions import RecordError
from airflow_mlplatform.runtime import RECORD_PREFIX, check_name


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

    Lines split across chunks are joined; a partial last line is parsed on ``close()``.
    Feeding never raises (readers in threads must keep draining pipes); a bad record is
    raised by ``close()``.
    """

    def __init__(self) -> None:
        self.outputs = JobOutputs()
        self.errors: list[RecordError] = []
        self._pending = ""

    def feed(self, text: str) -> None:
        """Parse every complete line in ``text`` (plus what was pending).

        :param text: a chunk of stdout.
        """
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        for line in lines:
            self.feed_line(line)

    def feed_line(self, line: str) -> None:
        """Parse one line of stdout.

        :param line: the line, with or without its newline.
        """
        line = line.strip()
        if not line:
            return
        if line.startswith(RECORD_PREFIX):
            item = _loads(line[len(RECORD_PREFIX) :])
            if isinstance(item, dict) and "name" in item:
                try:
                    name = check_name(item["name"])
                except RecordError as e:  # keep reading: the job must not block on a full pipe
                    self.errors.append(e)
                    return
                self.outputs.values[name] = item.get("value")
            return
        if line[0] == "{" and line[-1] == "}":
            row = _loads(line)
            if isinstance(row, dict) and row:
                self.outputs.metric_rows.append(row)

    def close(self) -> JobOutputs:
        """Parse the last partial line and return everything read.

        :raises RecordError: a value was recorded under a reserved or malformed name (the
            parser kept reading past it, so the job was never blocked).
        """
        if self._pending:
            self.feed_line(self._pending)
            self._pending = ""
        if self.errors:
            raise self.errors[0]
        return self.outputs


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
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


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every name and value against the contract before anything is pushed.

    :param values: named values a job reported.
    :raises RecordError: for a reserved or malformed name or a non-JSON value.
    """
    for name, value in values.items():
        check_name(name)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise RecordError(f"recorded value {name!r} is not JSON-serializable: {e}") from e
    return dict(values)


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
    :param values: recorded values; each is also pushed under its own key.
    :param metrics: metric summary (last value per key).
    :param execution_record: the execution record, or None.
    """
    checked = check_values(values)
    ti = context["ti"]
    # Operators set multiple_outputs=True (as TaskFlow does): Airflow then pushes each key of
    # the returned dict itself, and XComArg resolves a recorded None as None.
    if not getattr(getattr(ti, "task", None), "multiple_outputs", False):
        for name, value in checked.items():
            ti.xcom_push(key=name, value=value)
    ti.xcom_push(key="metrics", value=dict(metrics))
    if execution_record is not None:
        ti.xcom_push(key="execution_record", value=dict(execution_record))
    return checked
