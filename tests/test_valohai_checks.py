"""Pre-submit checks against valohai.yaml, built from valohai-yaml's own test material and
expectations (its examples, valid/warning/error files and parameter-validation cases)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import valohai_yaml

from airflow_mlplatform.exceptions import ValohaiStepError
from airflow_mlplatform.valohai_checks import check_submission

DATA = Path(__file__).parent / "data" / "valohai_yaml"

STEP = """
- step:
    name: test
    image: busybox
    command: echo {parameters}
    parameters:
      - name: count
        type: integer
        min: 0
        max: 10
      - name: rate
        type: float
      - name: mode
        type: string
        choices: [blep, mlem]
      - name: verbose
        type: flag
      - name: note
        type: string
        optional: true
"""


def _check(text: str = STEP, step: str = "test", **parameters):
    return check_submission(text, step=step, parameters=parameters, inputs={})


def _steps(folder: str):
    for path in sorted((DATA / folder).glob("*.yaml")):
        for name in valohai_yaml.parse(path.read_text()).steps:
            yield pytest.param(path, name, id=f"{path.stem}:{name}")


@pytest.mark.parametrize(("path", "step"), [*_steps("examples"), *_steps("valid_examples")])
def test_every_step_of_valohai_yamls_examples_passes(path, step, caplog):
    with caplog.at_level(logging.WARNING):
        check_submission(path.read_text(), step=step, parameters={}, inputs={})
    assert not caplog.records


# valohai-yaml tests/test_param_validation.py: the same values fail, with the same messages
@pytest.mark.parametrize("value", [-5, 15])
def test_integer_out_of_range_names_the_parameter_and_the_rule(value):
    with pytest.raises(ValohaiStepError) as info:
        _check(count=value)
    message = str(info.value)
    assert f"parameter 'count' = {value} breaks its definition (type integer, min 0, max 10" in message
    assert (
        "less than the minimum allowed (0)" if value < 0 else "greater than the maximum allowed (10)"
    ) in message
    assert "nothing was submitted" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5.3", "5.3 is not an integer"),
        ("hello", "hello is not an integer"),
        (True, "True is not an integer"),
        (False, "False is not an integer"),
        (None, "No value supplied"),
        ("", "No value supplied"),
    ],
)
def test_integer_values(value, expected):
    with pytest.raises(ValohaiStepError, match=f"parameter 'count' = .*: {expected}"):
        _check(count=value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello is not a floating-point number"),
        (True, "True is not a floating-point number"),
        (None, "No value supplied"),
    ],
)
def test_float_values(value, expected):
    with pytest.raises(ValohaiStepError, match=f"parameter 'rate' = .*: {expected}"):
        _check(rate=value)


def test_choices_flags_single_values_and_what_passes():
    with pytest.raises(
        ValohaiStepError, match=r"'mode' = 'blop' .*choices \['blep', 'mlem'\].*not among the choices"
    ):
        _check(mode="blop")
    with pytest.raises(ValohaiStepError, match=r"'verbose' = 'yes' .*type flag.*not among the choices"):
        _check(verbose="yes")
    with pytest.raises(
        ValohaiStepError, match=r"'count' = \[1, 2\] .*a single value.*Only a single value is allowed"
    ):
        _check(count=[1, 2])
    # every problem at once, each named
    with pytest.raises(ValohaiStepError) as info:
        _check(count=99, mode="blop")
    assert "'count' = 99" in str(info.value) and "'mode' = 'blop'" in str(info.value)
    # valid values, the typecasts valohai-yaml accepts, and None for an optional parameter
    assert _check(count=5, rate=1.5, mode="blep", verbose=True, note=None) >= {"count", "rate"}
    assert _check(count="7", rate="0.5")


def test_multiple_parameters_as_in_valohai_yamls_tests():
    # tests/test_multiple_param.py::test_multiple_param_validate, on examples/multiple-param.yaml
    text = (DATA / "examples" / "multiple-param.yaml").read_text()
    assert check_submission(text, step="example", parameters={"denoising-cost-x": 0.2}, inputs={})
    with pytest.raises(ValohaiStepError, match=r"'denoising-cost-x' = \(2, 'e'\) .*multiple: separate"):
        check_submission(text, step="example", parameters={"denoising-cost-x": (2, "e")}, inputs={})
    with pytest.raises(ValohaiStepError, match=r"'encoder-layers' = \[1.133\]"):
        check_submission(text, step="example", parameters={"encoder-layers": [1.133]}, inputs={})
    with pytest.raises(ValohaiStepError, match=r"john is not among the choices"):
        check_submission(text, step="example", parameters={"decoder-spec": ["gauss", "john"]}, inputs={})


def test_dag_level_parameters_the_step_declares_are_checked_too():
    with pytest.raises(ValohaiStepError, match=r"'count' = 50"):
        check_submission(
            STEP, step="test", parameters={}, inputs={}, global_parameters={"count": 50, "other": "x"}
        )
    # a DAG param the step does not declare is not sent, so not checked
    check_submission(STEP, step="test", parameters={}, inputs={}, global_parameters={"other": object()})


# valohai-yaml tests/test_linter.py: error files stop the submission, with the linter's message
@pytest.mark.parametrize(
    ("name", "step", "expected"),
    [
        ("step-stop-condition.yaml", "no-stop", "Step no-stop, `stop-condition` is not a valid expression:"),
        ("step-preset-without-environment.yaml", "preset without environment", 'missing "environment"'),
    ],
)
def test_linter_errors_stop_the_submission(name, step, expected):
    text = (DATA / "error_examples" / name).read_text()
    with pytest.raises(ValohaiStepError) as info:
        check_submission(text, step=step, parameters={}, inputs={})
    assert "linter finds an error" in str(info.value) and expected in str(info.value)


def test_an_environment_given_at_submission_satisfies_a_runtime_preset():
    text = (DATA / "error_examples" / "step-preset-without-environment.yaml").read_text()
    check_submission(
        text,
        step="preset without environment",
        parameters={},
        inputs={},
        environment="aws-eu-west-1-g4dn-xlarge",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invalid-numeric-range-parameter-default.yaml", "greater than the maximum allowed"),
        ("invalid-numeric-parameter-default.yaml", "is not an integer"),
        ("invalid-string-parameter-default.yaml", "is not a string"),
        ("ineffective-optional-on-flag.yaml", "`optional` has no effect on flag-type parameters"),
    ],
)
def test_linter_warnings_are_logged_and_do_not_stop_the_submission(name, expected, caplog):
    text = (DATA / "warning_examples" / name).read_text()
    with caplog.at_level(logging.WARNING):
        check_submission(text, step="test", parameters={}, inputs={})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("valohai.yaml lint, step 'test'" in w and expected in w for w in warnings), warnings
