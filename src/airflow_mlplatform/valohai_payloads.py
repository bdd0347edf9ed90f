"""Pure functions for Valohai: request payloads, tags, statuses, outputs, poll intervals.

No HTTP here: everything is unit-tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_mlplatform.exceptions import ParameterError, ValohaiStepError
from airflow_mlplatform.runtime import RESERVED_NAMES

#: Statuses of an execution that is still in progress / has finished.
IN_PROGRESS = ("created", "queued", "started", "stopping")
FINISHED = ("complete", "error", "crashed", "stopped")
SUCCESS = "complete"

#: Prefix of the tags that tie an execution to an Airflow task.
TAG_PREFIX = "airflow-"

#: Keys of an execution object kept in trigger events and execution records.
EXECUTION_KEYS = (
    "id",
    "counter",
    "status",
    "step",
    "title",
    "commit",
    "parameters",
    "inputs",
    "environment",
    "image",
    "tags",
    "outputs",
    "duration",
    "ctime",
    "cumulative_metadata",
    "urls",
)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,249}$")


def is_project_id(project: str) -> bool:
    """Whether ``project`` is a project id (a UUID) rather than a name.

    :param project: project id or ``owner/name``.
    """
    return bool(_UUID.match(project))


def task_tags(identity: Mapping[str, Any]) -> list[str]:
    """Tags that identify the Airflow task an execution belongs to (without the try).

    :param identity: ``task_identity(context)``.
    """
    tags = [
        f"{TAG_PREFIX}dag:{identity['dag_id']}",
        f"{TAG_PREFIX}task:{identity['task_id']}",
        f"{TAG_PREFIX}run:{identity['run_id']}",
    ]
    map_index = identity.get("map_index")
    if map_index is not None and map_index >= 0:
        tags.append(f"{TAG_PREFIX}map:{map_index}")
    return tags


def try_tag(identity: Mapping[str, Any]) -> str:
    """The tag naming the try that submitted an execution.

    :param identity: ``task_identity(context)``.
    """
    return f"{TAG_PREFIX}try:{identity.get('try_number') or 1}"


def normalize_inputs(inputs: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``{input name: [url, ...]}`` from the forms DAG authors write.

    A value may be one URL, a list of URLs, or a dict of upstream outputs
    (``{file name: "datum://..."}``, e.g. a whole ``return_value``), whose values are used.

    :param inputs: input name to URL(s).
    :raises ParameterError: for a value that is not a URL or a list/dict of URLs.
    """
    result: dict[str, list[str]] = {}
    for name, value in (inputs or {}).items():
        urls = list(_urls(name, value))
        if not urls:
            raise ParameterError(f"Valohai input {name!r} has no URL; pass a URL or datum:// id")
        result[str(name)] = urls
    return result


def _urls(name: str, value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if not value.strip():
            raise ParameterError(f"Valohai input {name!r} is an empty string; pass a URL or datum:// id")
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _urls(name, item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _urls(name, item)
    else:
        raise ParameterError(
            f"Valohai input {name!r} is a {type(value).__name__}; pass a URL (s3://, gs://, https://, "
            "datum://), a list of them, or an upstream task's outputs dict"
        )


def execution_payload(
    *,
    project_id: str,
    commit: str,
    step: str,
    inputs: Mapping[str, list[str]] | None = None,
    parameters: Mapping[str, Any] | None = None,
    environment: str | None = None,
    image: str | None = None,
    environment_variables: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    title: str | None = None,
    time_limit: int | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /api/v0/executions/``; unset optional fields are left out.

    :param project_id: the project's id.
    :param commit: commit identifier or ref.
    :param step: step name in valohai.yaml.
    :param inputs: ``{input name: [url, ...]}``.
    :param parameters: ``{name: value}``.
    :param environment: environment slug or id.
    :param image: Docker image overriding the step's.
    :param environment_variables: ``{NAME: value}`` (values become strings).
    :param tags: tags, in order, without duplicates.
    :param title: execution title.
    :param time_limit: seconds after which Valohai stops the execution.
    """
    payload: dict[str, Any] = {"project": project_id, "commit": commit, "step": step}
    if inputs:
        payload["inputs"] = {k: list(v) for k, v in inputs.items()}
    if parameters:
        payload["parameters"] = dict(parameters)
    if environment:
        payload["environment"] = environment
    if image:
        payload["image"] = image
    if environment_variables:
        payload["environment_variables"] = {str(k): str(v) for k, v in environment_variables.items()}
    unique_tags = list(dict.fromkeys(str(t) for t in tags))
    if unique_tags:
        payload["tags"] = unique_tags
    if title:
        payload["title"] = title
    if time_limit is not None:
        payload["time_limit"] = int(time_limit)
    return payload


def trim_execution(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an execution object that events and records need.

    :param execution: an execution object as Valohai returns it.
    """
    return {k: execution[k] for k in EXECUTION_KEYS if k in execution}


def output_key(name: str) -> str:
    """The XCom key for an output file: its name, made a valid value name if needed.

    ``model.pkl`` stays ``model.pkl``; ``sub/dir/x.csv`` becomes ``sub__dir__x.csv``;
    a reserved name such as ``metrics`` becomes ``output_metrics``.

    :param name: the datum's name (its path under /valohai/outputs).
    """
    key = name.replace("/", "__")
    key = re.sub(r"[^A-Za-z0-9_.\-]", "_", key)
    if not key or not (key[0].isalpha() or key[0] == "_"):
        key = f"_{key}"
    if key in RESERVED_NAMES:
        key = f"output_{key}"
    return key[:250] if _NAME_OK.match(key[:250]) else "_output"


def output_keys(names: Iterable[str]) -> dict[str, str]:
    """``{output name: value name}`` (see :func:`output_key`), refusing two outputs on one key.

    ``a/b.csv`` and ``a__b.csv`` (or ``x y`` and ``x_y``) would both become one value name and
    one of them would be lost: a ValohaiError names both instead.

    :param names: the outputs' names (paths under /valohai/outputs).
    """
    from airflow_mlplatform.exceptions import ValohaiError

    keys: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in names:
        key = output_key(name)
        if key in owner and owner[key] != name:
            raise ValohaiError(
                f"outputs {owner[key]!r} and {name!r} both become the value name {key!r} "
                "(/ is written __ and other characters outside A-Za-z0-9_.- are written _), so "
                "one would be lost: rename one of them in the step"
            )
        owner[key] = name
        keys[name] = key
    return keys


def output_values(datums: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{output file name: "datum://<id>"}`` for an execution's output datums.

    :param datums: datum objects (``id``, ``name``).
    :raises ValohaiError: two outputs map to one value name (see :func:`output_keys`).
    """
    datums = list(datums)
    keys = output_keys(str(d["name"]) for d in datums)
    return {keys[str(d["name"])]: f"datum://{d['id']}" for d in datums}


def poll_intervals(
    first: float, maximum: float, factor: float = 2.0, *, jitter: float = 0.0, seed: str | int | None = None
) -> Iterator[float]:
    """Seconds to wait before each status poll: ``first``, then ``factor`` times more, up to ``maximum``.

    :param first: the first wait.
    :param maximum: the cap.
    :param factor: growth per poll.
    :param jitter: each wait is multiplied by a random factor in [1 - jitter, 1 + jitter], so
        many waiters started together do not poll in lockstep.
    :param seed: seed of the jitter's random numbers.
    """
    import random

    rng = random.Random(seed)  # spreads polls; not for cryptography
    interval = max(first, 0.0)
    while True:
        wait = min(interval, maximum)
        yield wait * (1 + rng.uniform(-jitter, jitter)) if jitter else wait
        interval = min(max(interval * factor, 0.001), maximum)


#: Longest time, in seconds, a waiter goes without logging the execution's status at INFO.
STATUS_LOG_INTERVAL = 300.0


class StatusLog:
    """When a waiter logs an execution's status: on every change, else every ``interval`` seconds.

    An hours-long execution shows progress in the task's (or the triggerer's) log, at most one
    line per poll and without a line per poll.

    :param execution_id: the execution, for the lines.
    :param interval: longest silence while the status does not change, seconds.
    :param started: when the wait began (``time.monotonic()`` clock).
    """

    def __init__(self, *, execution_id: str, interval: float = STATUS_LOG_INTERVAL, started: float) -> None:
        self.execution_id = execution_id
        self.interval = interval
        self.started = started
        self.status: str | None = None
        self.logged_at = started

    def line(self, execution: Mapping[str, Any], now: float) -> str | None:
        """The line to log for the status just polled, or None to stay quiet.

        :param execution: the execution object just fetched.
        :param now: the time of the poll (same clock as ``started``).
        """
        status = str(execution.get("status"))
        counter = execution.get("counter")
        name = (
            f"Valohai execution #{counter} ({self.execution_id})"
            if counter
            else f"Valohai execution {self.execution_id}"
        )
        waited = _duration(now - self.started)
        if status != self.status:
            was = f" (was {self.status})" if self.status else ""
            self.status, self.logged_at = status, now
            return f"{name} is {status}{was}; waiting for {waited}"
        if now - self.logged_at >= self.interval:
            self.logged_at = now
            return f"{name} is still {status}; waiting for {waited}"
        return None


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def retry_delay(attempt: int, *, base: float, cap: float, retry_after: str | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): Retry-After when given, else base * 2**(n-1).

    :param attempt: the number of the retry about to be made.
    :param base: the first delay.
    :param cap: the longest delay.
    :param retry_after: the response's Retry-After header (seconds), if any.
    """
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), cap)
        except ValueError:
            pass  # an HTTP date: fall back to the exponential delay
    return min(base * (2 ** (attempt - 1)), cap)


def api_error_detail(body: Any) -> str:
    """A short, readable summary of an error body (``{"detail": ...}`` or field errors).

    :param body: the parsed JSON body, or text.
    """
    if isinstance(body, Mapping):
        if "detail" in body and len(body) == 1:
            return str(body["detail"])
        return "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in body.items()
        )
    text = str(body or "").strip()
    return text[:300]


def validate_step(
    config_text: str,
    *,
    step: str,
    parameters: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> set[str]:
    """Check a step, its parameters and inputs against a valohai.yaml; return the declared parameter names.

    :param config_text: the valohai.yaml text.
    :param step: step name.
    :param parameters: parameters to be sent.
    :param inputs: inputs to be sent.
    :raises ValohaiStepError: for an unknown step, parameter or input.
    """
    import valohai_yaml

    try:
        config = valohai_yaml.parse(config_text)
    except Exception as e:
        raise ValohaiStepError(f"valohai.yaml is not valid: {e}") from e
    if step not in config.steps:
        known = ", ".join(sorted(config.steps)) or "none"
        raise ValohaiStepError(
            f"step {step!r} is not declared in valohai.yaml (declared: {known}); fix the step name "
            "or push the valohai.yaml that declares it"
        )
    spec = config.steps[step]
    declared = set(spec.parameters)
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValohaiStepError(
            f"step {step!r} declares no parameter {', '.join(map(repr, unknown))} "
            f"(declared: {', '.join(sorted(declared)) or 'none'})"
        )
    unknown_inputs = sorted(set(inputs) - set(spec.inputs))
    if unknown_inputs:
        raise ValohaiStepError(
            f"step {step!r} declares no input {', '.join(map(repr, unknown_inputs))} "
            f"(declared: {', '.join(sorted(spec.inputs)) or 'none'})"
        )
    return declared
