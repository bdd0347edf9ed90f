"""The value contract: what jobs print, what operators push."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import RecordError
from airflow_mlplatform.values import (
    StreamParser,
    check_values,
    parse_stdout,
    push_outputs,
    summarize_metrics,
)


def test_records_metrics_and_noise_are_told_apart():
    out = parse_stdout(
        "starting\n"
        '::mlplatform::record {"name": "acc", "value": 0.9}\n'
        '{"epoch": 1, "loss": 0.5}\n'
        '  {"epoch": 2, "loss": 0.25}  \n'
        "[1, 2, 3]\n"
        "{not json}\n"
        "{}\n"
        '::mlplatform::record {"name": "acc", "value": 0.95}\n'
        '::mlplatform::record {"name": "model", "value": {"uri": "s3://b/m", "n": [1, null]}}'
    )
    assert out.values == {"acc": 0.95, "model": {"uri": "s3://b/m", "n": [1, None]}}
    assert out.metric_rows == [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    assert out.metrics == {"epoch": 2, "loss": 0.25}


def test_lines_split_across_chunks_are_joined():
    parser = StreamParser()
    for chunk in ["::mlplatform::rec", 'ord {"name": "x", "val', 'ue": 1}\n{"a"', ": 1}\n", '{"b": 2}']:
        parser.feed(chunk)
    out = parser.close()
    assert out.values == {"x": 1}
    assert out.metric_rows == [{"a": 1}, {"b": 2}]


def test_a_reserved_name_in_stdout_is_an_error_raised_at_close_not_while_reading():
    parser = StreamParser()
    parser.feed('::mlplatform::record {"name": "return_value", "value": 1}\n')
    parser.feed('::mlplatform::record {"name": "ok", "value": 2}\n' + "x" * 100_000 + "\n")  # still reading
    assert parser.outputs.values == {"ok": 2}
    with pytest.raises(RecordError, match="reserved"):
        parser.close()
    with pytest.raises(RecordError, match="'test acc'"):
        parse_stdout('::mlplatform::record {"name": "test acc", "value": 1}\n')


def test_summary_keeps_last_value_per_key():
    assert summarize_metrics([{"a": 1, "b": 1}, {"a": 2}, {"c": 3}]) == {"a": 2, "b": 1, "c": 3}


@pytest.mark.parametrize("name", ["return_value", "metrics", "execution_record"])
def test_check_values_rejects_reserved_names(name):
    with pytest.raises(RecordError, match="reserved by the provider"):
        check_values({name: 1})


def test_check_values_rejects_non_json():
    with pytest.raises(RecordError, match="'blob' is not JSON-serializable"):
        check_values({"blob": object()})


class _TI:
    def __init__(self, multiple_outputs):
        self.pushed = {}
        self.task = type("T", (), {"multiple_outputs": multiple_outputs})()

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.mark.parametrize("multiple_outputs", [True, False])
def test_push_outputs(multiple_outputs):
    ti = _TI(multiple_outputs)
    ret = push_outputs({"ti": ti}, values={"a": 1, "b": None}, metrics={"m": 2}, execution_record={"r": 1})
    assert ret == {"a": 1, "b": None}
    expected = {"metrics": {"m": 2}, "execution_record": {"r": 1}}
    if not multiple_outputs:  # otherwise Airflow pushes each key of the returned dict itself
        expected |= {"a": 1, "b": None}
    assert ti.pushed == expected
