"""The promotion gate language: what it accepts, what it refuses, and that it never runs code."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import ModelGateError
from airflow_mlplatform.models.gate import parse_gate


@pytest.mark.parametrize(
    ("text", "candidate", "holder", "expected"),
    [
        ("accuracy >= champion.accuracy", {"accuracy": 0.9}, {"accuracy": 0.9}, True),
        ("accuracy >= champion.accuracy", {"accuracy": 0.8}, {"accuracy": 0.9}, False),
        ("candidate.f1 > current.f1 + 0.01", {"f1": 0.82}, {"f1": 0.8}, True),
        ("candidate.f1 > current.f1 + 0.01", {"f1": 0.805}, {"f1": 0.8}, False),
        (
            "accuracy > 0.5 and not (loss > champion.loss * 1.1)",
            {"accuracy": 0.6, "loss": 1.0},
            {"loss": 1.0},
            True,
        ),
        ("accuracy > 0.95 or loss < champion.loss", {"accuracy": 0.6, "loss": 0.5}, {"loss": 1.0}, True),
        ("0.5 < accuracy <= 1", {"accuracy": 0.7}, {}, True),
        ("-loss >= -champion.loss", {"loss": 2.0}, {"loss": 1.0}, False),
    ],
)
def test_gates_evaluate(text, candidate, holder, expected):
    assert parse_gate(text, alias="champion").evaluate(candidate, holder) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "Call"),
        ("accuracy.__class__ >= 1", "before the dot"),
        ("champion.accuracy.real > 1", "before the dot"),
        ("accuracy >= 'high'", "only numbers"),
        ("accuracy >= True", "only numbers"),
        ("[accuracy][0] > 1", "Subscript"),
        ("accuracy >=", "not a valid expression"),
        ("lambda: 1", "Lambda"),
        ("", "empty"),
    ],
)
def test_bad_gates_are_refused_with_a_reason(text, message):
    with pytest.raises(ModelGateError, match=message):
        parse_gate(text, alias="champion")


def test_a_missing_metric_names_what_there_is():
    gate = parse_gate("accuracy >= champion.accuracy", alias="champion")
    assert gate.names() == ({"accuracy"}, {"accuracy"})
    with pytest.raises(ModelGateError, match=r"'accuracy' of the current alias holder.*its metrics: f1"):
        gate.evaluate({"accuracy": 1.0}, {"f1": 0.5})
    with pytest.raises(ModelGateError, match="divides by zero"):
        parse_gate("accuracy / champion.accuracy > 1", alias="champion").evaluate(
            {"accuracy": 1}, {"accuracy": 0}
        )


def test_the_alias_name_refers_to_the_holder():
    gate = parse_gate("auc > staging.auc", alias="staging")
    assert gate.evaluate({"auc": 0.9}, {"auc": 0.8})
    with pytest.raises(ModelGateError, match="before the dot"):
        parse_gate("auc > champion.auc", alias="staging")
