"""The value contract under hostile output: glued record lines, long lines, NaN, sizes, XCom bounds."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_mlplatform import values
from airflow_mlplatform.exceptions import RecordError
from airflow_mlplatform.parameters import NonFinite, merge_parameters, unwrap_non_finite, wrap_non_finite
from airflow_mlplatform.values import StreamParser, check_values, parse_stdout, record_for_xcom

REC = '::mlplatform::record {"name": "acc", "value": 0.9}'


@pytest.mark.parametrize(
    "chunks",
    [
        ["epoch 1/3 ..." + REC + "\n"],  # print(..., end="") then record()
        ["epoch 1/3 ...", REC[:7], REC[7:] + "\n"],  # the same, in three chunks
        ["50%|#####\r" + REC],  # a progress bar's carriage return, no final newline
    ],
)
def test_a_record_is_found_wherever_it_starts(chunks):
    assert parse_stdout(chunks).values == {"acc": 0.9}


def test_feed_line_finds_a_glued_record_too():
    parser = StreamParser()
    parser.feed_line("loss went down" + REC)
    assert parser.close().values == {"acc": 0.9}


def test_a_huge_line_is_dropped_but_a_record_after_it_is_kept(monkeypatch):
    monkeypatch.setattr(values, "MAX_LINE_CHARS", 1000)
    parser = StreamParser()
    for _ in range(50):
        parser.feed("x" * 997)  # one 50 kB line of garbage, in chunks
    parser.feed('{"not": "a metric, part of a long line"}' + REC + '\n{"loss": 1}\n')
    out = parser.close()
    assert out.values == {"acc": 0.9}
    assert out.metric_rows == [{"loss": 1}]
    assert sum(len(p) for p in parser._parts) == 0


def test_a_record_line_over_the_line_limit_is_an_error(monkeypatch):
    monkeypatch.setattr(values, "MAX_LINE_CHARS", 1000)
    parser = StreamParser()
    parser.feed('::mlplatform::record {"name": "big", "value": "' + "x" * 5000)
    parser.feed('"}\n')
    with pytest.raises(
        RecordError, match=r"longer than 1000 characters; write it to a file under output_dir\(\)"
    ):
        parser.close()


def test_non_finite_metrics_and_values_become_null_with_one_warning_per_key(caplog):
    lines = [json.dumps({"step": i, "loss": float("nan")}) for i in range(3)]
    lines.append('::mlplatform::record {"name": "best", "value": [1.0, Infinity]}')
    with caplog.at_level(logging.WARNING, logger="airflow_mlplatform.values"):
        out = parse_stdout("\n".join(lines) + "\n")
    assert out.metric_rows == [{"step": i, "loss": None} for i in range(3)]
    assert out.values == {"best": [1.0, None]}
    assert caplog.text.count("metric 'loss' holds nan: stored as null") == 1
    assert "recorded value 'best' holds inf" in caplog.text


def test_value_size_name_count_and_total_limits():
    with pytest.raises(
        RecordError, match=r"'big' is \d+ bytes as JSON, over the limit of 1048576 .*; write it to a file"
    ):
        check_values({"big": "x" * (1024 * 1024)})
    assert len(check_values({f"v{i}": i for i in range(1001)})) == 1001  # many names: capped in XCom only
    with pytest.raises(RecordError, match=r"in all, over the limit of 4194304"):
        check_values({f"v{i}": "x" * 900_000 for i in range(5)})
    assert check_values({"x": float("nan")}) == {"x": None}


class _TI:
    task = None

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_more_names_than_xcom_takes_are_capped_with_a_warning_and_kept_in_the_record(caplog):
    recorded = {f"v{i}": i for i in range(1500)}
    record = {"values": dict(recorded), "outputs": {"record": "/out/execution_record.json"}}
    ti = _TI()
    with caplog.at_level(logging.WARNING, logger="airflow_mlplatform.values"):
        returned = values.push_outputs({"ti": ti}, values=recorded, metrics={}, execution_record=record)
    assert list(returned) == [f"v{i}" for i in range(1000)]  # the first 1000, in the order recorded
    assert set(ti.pushed) == {*returned, "metrics", "execution_record"}
    assert "1500 values were recorded" in caplog.text
    assert "500 names were left out of XCom (from 'v1000' on)" in caplog.text
    assert "/out/execution_record.json" in caplog.text
    pushed = ti.pushed["execution_record"]
    assert len(pushed["values"]) == 1000 and pushed["values_truncated"] == {
        "total_names": 1500, "kept_names": 1000, "full_values_in": "/out/execution_record.json"
    }  # fmt: skip
    assert len(record["values"]) == 1500  # the record file keeps every value


def test_a_too_large_record_line_is_refused_when_the_job_ends():
    line = "::mlplatform::record " + json.dumps({"name": "blob", "value": "x" * (2 * 1024 * 1024)})
    with pytest.raises(RecordError, match=r"'blob'.*over the limit"):
        parse_stdout(line + "\n")


def test_the_xcom_record_keeps_the_last_rows_and_says_where_the_rest_is():
    record = {"metrics": {"summary": {"loss": 0}, "series": [{"loss": i} for i in range(5000)]},
              "outputs": {"record": "/out/execution_record.json"}}  # fmt: skip
    small = record_for_xcom(record)
    assert len(small["metrics"]["series"]) == 1000 and small["metrics"]["series"][-1] == {"loss": 4999}
    assert small["metrics"]["series_truncated"] == {
        "total_rows": 5000, "kept_rows": 1000, "full_series_in": "/out/execution_record.json"
    }  # fmt: skip
    assert len(record["metrics"]["series"]) == 5000  # the file keeps all


def test_non_finite_parameters_travel_wrapped_in_rendered_fields_and_reach_the_job_as_floats():
    rendered = wrap_non_finite({"lr": float("nan"), "grid": [1.0, float("-inf")], "n": 3})
    assert isinstance(rendered["lr"], NonFinite) and rendered["lr"].serialize() == "nan"
    back = unwrap_non_finite(rendered)
    assert back["lr"] != back["lr"] and back["grid"] == [1.0, float("-inf")] and back["n"] == 3
    merged = merge_parameters(None, rendered)
    assert merged["grid"][1] == float("-inf")
