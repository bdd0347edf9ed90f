"""Checks made against the repository's valohai.yaml before an execution is submitted.

What Valohai itself would refuse or get wrong, found before anything is sent: the step,
its parameters and inputs exist (:func:`~airflow_mlplatform.valohai_payloads.validate_step`);
every parameter value fits its definition, as valohai-yaml's own ``Parameter.validate``
decides (type, min/max, choices, single vs ``multiple``); and valohai-yaml's linter passes
on the step as submitted (with the operator's ``environment``/``image`` overrides): its
errors stop the submission, its warnings are logged. Pure functions; no HTTP.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from airflow_mlplatform.exceptions import ValohaiStepError
from airflow_mlplatform.valohai_payloads import validate_step

log = logging.getLogger(__name__)


def parameter_rule(parameter: Any) -> str:
    """A valohai.yaml parameter definition in words: ``type integer, min 1, max 100``.

    :param parameter: a ``valohai_yaml.objs.Parameter``.
    """
    parts = [f"type {parameter.type}"]
    if parameter.min is not None:
        parts.append(f"min {parameter.min}")
    if parameter.max is not None:
        parts.append(f"max {parameter.max}")
    if parameter.choices and parameter.type != "flag":
        parts.append(f"choices {parameter.choices!r}")
    if parameter.multiple:
        parts.append(f"multiple: {parameter.multiple.value}")
    else:
        parts.append("a single value")
    if parameter.optional and parameter.type != "flag":
        parts.append("optional")
    return ", ".join(parts)


def parameter_value_errors(step: Any, values: Mapping[str, Any]) -> list[str]:
    """Every value in ``values`` that its parameter definition refuses, one line each.

    :param step: a ``valohai_yaml.objs.Step``.
    :param values: parameter name to the value that would be submitted (names the step
        does not declare are not looked at: :func:`validate_step` refuses those).
    """
    from valohai_yaml.excs import InvalidType, ValidationErrors

    problems = []
    for name, value in values.items():
        parameter = step.parameters.get(name)
        if parameter is None or (value is None and parameter.optional):
            continue
        try:
            parameter.validate(value)
        except ValidationErrors as e:
            problems.append(
                f"parameter {name!r} = {value!r} breaks its definition ({parameter_rule(parameter)}): "
                + "; ".join(str(m) for m in e)
            )
        except (InvalidType, TypeError, ValueError) as e:
            problems.append(
                f"parameter {name!r} = {value!r} breaks its definition ({parameter_rule(parameter)}): {e}"
            )
    return problems


def lint_step(
    config: Any, step_name: str, *, environment: str | None = None, image: str | None = None
) -> Any:
    """valohai-yaml's linter on one step as it will be submitted; returns its LintResult.

    :param config: the parsed ``valohai_yaml.objs.Config``.
    :param step_name: the step.
    :param environment: the environment the submission sets (overrides the step's).
    :param image: the image the submission sets (overrides the step's).
    """
    from valohai_yaml.lint import LintResult

    step = copy.copy(config.steps[step_name])
    if environment:
        step.environment = environment
    if image:
        step.image = image
    result = LintResult()
    for warning in getattr(config, "_parse_warnings", None) or []:
        result.add_warning(warning)
    step.lint(result, {"config": config})
    return result


def check_submission(
    config_text: str,
    *,
    step: str,
    parameters: Mapping[str, Any],
    inputs: Mapping[str, Any],
    global_parameters: Mapping[str, Any] | None = None,
    environment: str | None = None,
    image: str | None = None,
) -> set[str]:
    """Everything checked against valohai.yaml before submitting; returns the declared parameter names.

    :param config_text: the valohai.yaml text.
    :param step: the step name.
    :param parameters: the operator's (local) parameters: each must be declared.
    :param inputs: the inputs to be sent.
    :param global_parameters: DAG-level parameters; those the step declares are sent, and checked.
    :param environment: the submission's environment override.
    :param image: the submission's image override.
    :raises ValohaiStepError: an unknown step, parameter or input; a value its definition
        refuses (each one named, with the rule); an error from valohai-yaml's linter.
    """
    import valohai_yaml

    declared = validate_step(config_text, step=step, parameters=parameters, inputs=inputs)
    config = valohai_yaml.parse(config_text)
    spec = config.steps[step]
    sent = {**{k: v for k, v in (global_parameters or {}).items() if k in declared}, **parameters}
    problems = parameter_value_errors(spec, sent)
    if problems:
        raise ValohaiStepError(
            f"step {step!r} of valohai.yaml refuses {'this value' if len(problems) == 1 else 'these values'}, "
            "so nothing was submitted:\n  " + "\n  ".join(problems)
        )
    result = lint_step(config, step, environment=environment, image=image)
    for message in result.warnings:
        log.warning("valohai.yaml lint, step %r: %s", step, message["message"])
    errors = [str(m["message"]) for m in result.errors]
    if errors:
        raise ValohaiStepError(
            f"valohai-yaml's linter finds {'an error' if len(errors) == 1 else 'errors'} in step {step!r}, "
            "so nothing was submitted (fix valohai.yaml, or pass environment=... for a "
            "runtime-config-preset):\n  " + "\n  ".join(errors)
        )
    return declared
