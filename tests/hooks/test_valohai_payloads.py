"""Pure Valohai payload builders, tags, outputs, intervals and valohai.yaml validation: no server."""

from __future__ import annotations

import itertools

import pytest

from airflow_mlplatform.exceptions import ParameterError, ValohaiStepError
from airflow_mlplatform.valohai_payloads import (
    api_error_detail,
    execution_payload,
    is_project_id,
    normalize_inputs,
    output_key,
    output_values,
    poll_intervals,
    retry_delay,
    task_tags,
    try_tag,
    validate_step,
)

VALOHAI_YAML = """
- step:
    name: train
    image: python:3.12
    command: python train.py {parameters}
    parameters:
      - name: learning_rate
        type: float
        default: 0.01
      - name: epochs
        type: integer
        default: 3
    inputs:
      - name: train
      - name: test
        optional: true
"""


def test_payload_leaves_out_unset_fields_and_dedupes_tags():
    payload = execution_payload(
        project_id="p",
        commit="main",
        step="train",
        inputs={"train": ["datum://1"]},
        parameters={"epochs": 3},
        environment_variables={"SEED": 1},
        tags=["a", "b", "a"],
        time_limit=600.0,  # type: ignore[arg-type]
    )
    assert payload == {
        "project": "p",
        "commit": "main",
        "step": "train",
        "inputs": {"train": ["datum://1"]},
        "parameters": {"epochs": 3},
        "environment_variables": {"SEED": "1"},
        "tags": ["a", "b"],
        "time_limit": 600,
    }
    assert execution_payload(project_id="p", commit="c", step="s") == {
        "project": "p",
        "commit": "c",
        "step": "s",
    }


def test_inputs_accept_url_list_and_upstream_outputs_dict():
    assert normalize_inputs(
        {
            "one": "s3://b/x.csv",
            "many": ["datum://1", "gs://b/y"],
            "upstream": {"train.csv": "datum://2", "test.csv": "datum://3"},
        }
    ) == {
        "one": ["s3://b/x.csv"],
        "many": ["datum://1", "gs://b/y"],
        "upstream": ["datum://2", "datum://3"],
    }
    assert normalize_inputs(None) == {}


@pytest.mark.parametrize("bad", ["", 3, [], {"a": None}])
def test_bad_inputs_name_the_input(bad):
    with pytest.raises(ParameterError, match="'data'"):
        normalize_inputs({"data": bad})


def test_tags_identify_task_without_try_and_with_map_index():
    identity = {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 2}
    assert task_tags(identity) == ["airflow-dag:d", "airflow-task:t", "airflow-run:r"]
    assert task_tags({**identity, "map_index": 4})[-1] == "airflow-map:4"
    assert try_tag(identity) == "airflow-try:2"


def test_outputs_become_datum_urls_under_valid_names():
    datums = [
        {"id": "a1", "name": "model.pkl"},
        {"id": "b2", "name": "plots/loss.png"},
        {"id": "c3", "name": "metrics"},
        {"id": "d4", "name": "1st.csv"},
    ]
    assert output_values(datums) == {
        "model.pkl": "datum://a1",
        "plots__loss.png": "datum://b2",
        "output_metrics": "datum://c3",
        "_1st.csv": "datum://d4",
    }
    assert output_key("a b.txt") == "a_b.txt"


@pytest.mark.parametrize(("first", "second"), [("a/b.csv", "a__b.csv"), ("x y", "x_y")])
def test_two_outputs_on_one_value_name_are_an_error_naming_both(first, second):
    from airflow_mlplatform.exceptions import ValohaiError

    datums = [{"id": "a1", "name": first}, {"id": "b2", "name": second}, {"id": "c3", "name": "ok.txt"}]
    with pytest.raises(ValohaiError, match=rf"outputs '{first}' and '{second}' both become the value name"):
        output_values(datums)


def test_poll_intervals_grow_to_the_cap():
    assert list(itertools.islice(poll_intervals(5, 90), 7)) == [5, 10, 20, 40, 80, 90, 90]
    jittered = list(itertools.islice(poll_intervals(5, 90, jitter=0.1, seed="ex-1"), 7))
    assert jittered == list(itertools.islice(poll_intervals(5, 90, jitter=0.1, seed="ex-1"), 7))
    assert all(0.9 * a <= b <= 1.1 * a for a, b in zip([5, 10, 20, 40, 80, 90, 90], jittered, strict=True))
    assert jittered != [5, 10, 20, 40, 80, 90, 90]


def test_retry_delay_honours_retry_after_capped():
    assert retry_delay(1, base=1, cap=60) == 1
    assert retry_delay(3, base=1, cap=60) == 4
    assert retry_delay(10, base=1, cap=60) == 60
    assert retry_delay(1, base=1, cap=60, retry_after="7") == 7
    assert retry_delay(1, base=1, cap=60, retry_after="3600") == 60
    assert retry_delay(2, base=1, cap=60, retry_after="Wed, 21 Oct 2015 07:28:00 GMT") == 2


def test_project_id_or_name():
    assert is_project_id("017f5c6d-0000-4000-8000-000000000001")
    assert not is_project_id("my-org/my-project")


def test_error_detail_is_readable():
    assert api_error_detail({"detail": "Invalid token."}) == "Invalid token."
    assert api_error_detail({"step": ["not found"], "commit": "bad"}) == "step: not found; commit: bad"


def test_valohai_yaml_validation():
    declared = validate_step(VALOHAI_YAML, step="train", parameters={"epochs": 5}, inputs={"train": ["x"]})
    assert declared == {"learning_rate", "epochs"}
    with pytest.raises(ValohaiStepError, match=r"step 'trian' is not declared.*declared: train"):
        validate_step(VALOHAI_YAML, step="trian", parameters={}, inputs={})
    with pytest.raises(ValohaiStepError, match=r"no parameter 'lr'.*declared: epochs, learning_rate"):
        validate_step(VALOHAI_YAML, step="train", parameters={"lr": 1}, inputs={})
    with pytest.raises(ValohaiStepError, match=r"no input 'validation'"):
        validate_step(VALOHAI_YAML, step="train", parameters={}, inputs={"validation": ["x"]})


def test_status_log_on_every_change_and_at_a_bounded_interval_otherwise():
    from airflow_mlplatform.valohai_payloads import StatusLog

    log = StatusLog(execution_id="ex1", interval=300, started=1000.0)
    ex = {"counter": 7}
    assert (
        log.line({**ex, "status": "queued"}, 1005.0) == "Valohai execution #7 (ex1) is queued; waiting for 5s"
    )
    assert log.line({**ex, "status": "queued"}, 1200.0) is None
    assert log.line({**ex, "status": "started"}, 1210.0) == (
        "Valohai execution #7 (ex1) is started (was queued); waiting for 3m 30s"
    )
    assert log.line({**ex, "status": "started"}, 1500.0) is None  # 290 s since the last line
    assert log.line({**ex, "status": "started"}, 1510.0) == (
        "Valohai execution #7 (ex1) is still started; waiting for 8m 30s"
    )
    assert log.line({**ex, "status": "started"}, 1600.0) is None
    assert log.line({"status": "complete"}, 1000.0 + 2 * 3600 + 65) == (
        "Valohai execution ex1 is complete (was started); waiting for 2h 01m"
    )
