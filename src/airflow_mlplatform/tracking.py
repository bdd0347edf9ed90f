"""Every task tracked in MLflow: with ``[mlplatform] tracking = mlflow`` each stored execution
record becomes an MLflow run.

Experiment: the DAG id. Run: parameters, the metric series with step numbers (one batched
call per 1000 points), tags (dag, task, run, try, map_index, code sha, compute profile,
tenant labels), and the record plus the output notebook or report as artifacts.
:func:`track` is called by :func:`airflow_mlplatform.jobs.run_recorded` after the record is
stored. A failure is retried, then logged as a warning: the ML job's result is kept. With
``[mlplatform] tracking_required = True`` it fails the task instead (its record then says so).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from airflow_mlplatform import config
from airflow_mlplatform.exceptions import ConfigurationError, TrackingError

log = logging.getLogger(__name__)

#: MLflow's limits for one log_batch call
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100
_MAX_PARAM = 6000
#: record outputs uploaded as artifacts (local files only)
_ARTIFACT_KEYS = ("record", "notebook", "report", "html", "output")


def enabled() -> bool:
    """Whether ``[mlplatform] tracking`` is ``mlflow`` (a ConfigurationError for unknown values)."""
    value = (config.get_option("tracking", "") or "").strip().lower()
    if value in ("", "none", "off", "false"):
        return False
    if value != "mlflow":
        raise ConfigurationError(
            f"[mlplatform] tracking = {value!r} is not known: use 'mlflow' or leave it unset"
        )
    return True


def required() -> bool:
    """``[mlplatform] tracking_required``: a tracking failure fails the task."""
    from airflow.sdk import conf

    return conf.getboolean(config.SECTION, "tracking_required", fallback=False)


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    out[prefix] = text[:_MAX_PARAM]


def run_tags(record: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, str]:
    """The run's tags: task identity, status, code sha, compute profile and tenant labels.

    :param record: the execution record.
    :param context: the task's Airflow context.
    """
    task = record.get("task") or {}
    code = record.get("code") or {}
    where = record.get("where") or {}
    tags = {f"mlplatform.{k}": str(v) for k, v in task.items() if v is not None}
    tags["mlflow.runName"] = f"{task.get('task_id')} {task.get('run_id')} try {task.get('try_number')}"
    tags["mlplatform.status"] = str(record.get("status"))
    for key in ("sha256", "git_commit"):
        if code.get(key):
            tags[f"mlplatform.code_{key}"] = str(code[key])
    operator = getattr(context.get("task"), "compute", None)
    if operator:
        tags["mlplatform.compute_profile"] = str(operator)
    labels = where.get("labels") if isinstance(where.get("labels"), Mapping) else {}
    for key, value in (labels or {}).items():
        tags[f"mlplatform.label.{key}"] = str(value)
    for key in ("backend", "namespace", "pod", "hostname"):
        if where.get(key):
            tags[f"mlplatform.where.{key}"] = str(where[key])
    return tags


def metric_points(record: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """(key, value, step) for every numeric value of the metric series, in order.

    A row's own ``step`` (or ``epoch``) is its step; else the row's position in the series.

    :param record: the execution record.
    """
    points: list[tuple[str, float, int]] = []
    series = (record.get("metrics") or {}).get("series") or []
    for index, row in enumerate(series):
        if not isinstance(row, Mapping):
            continue
        step = row.get("step", row.get("epoch", index))
        step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else index
        for key, value in row.items():
            if key in ("step", "epoch") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            points.append((str(key), float(value), step))
    if not series:
        for key, value in ((record.get("metrics") or {}).get("summary") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.append((str(key), float(value), 0))
    return points


def log_record(hook: Any, record: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """Create the MLflow run of one execution record; returns its run id.

    :param hook: an MLflowHook.
    :param record: the stored execution record.
    :param context: the task's Airflow context.
    """
    from mlflow.entities import Metric, Param

    from airflow_mlplatform.storage import is_local, local_path

    client = hook.get_conn()
    task = record.get("task") or {}
    tags = {
        **run_tags(record, context),
        "mlplatform.record": str((record.get("outputs") or {}).get("record")),
    }
    run = client.create_run(hook.experiment_id(str(task.get("dag_id"))), tags=tags)
    run_id = run.info.run_id
    params: dict[str, str] = {}
    for key, value in (record.get("parameters") or {}).items():
        _flat(str(key), value, params)
    param_list = [Param(k, v) for k, v in params.items()]
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, s) for k, v, s in metric_points(record)]
    # one call per 1000 entities (MLflow's log_batch limit; at most 100 params a call)
    while param_list or metrics:
        batch_params, param_list = param_list[:_BATCH_PARAMS], param_list[_BATCH_PARAMS:]
        room = _BATCH_METRICS - len(batch_params)
        batch_metrics, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=batch_metrics, params=batch_params)
    for key in _ARTIFACT_KEYS:
        uri = (record.get("outputs") or {}).get(key)
        if isinstance(uri, str) and is_local(uri) and local_path(uri).is_file():
            client.log_artifact(run_id, str(local_path(uri)), artifact_path="mlplatform")
    status = "FINISHED" if record.get("status") == "success" else "FAILED"
    client.set_terminated(run_id, status=status)
    return str(run_id)


def track(
    context: Mapping[str, Any], record: Mapping[str, Any], *, attempts: int = 3, backoff: float = 0.5
) -> str | None:
    """Log ``record`` to MLflow when tracking is on; retried, then a warning (or TrackingError).

    :param context: the task's Airflow context.
    :param record: the stored execution record.
    :param attempts: tries before giving up.
    :param backoff: seconds before the second try (doubled each time).
    """
    if not enabled():
        return None
    from airflow_mlplatform.hooks.mlflow import MLflowHook

    hook = MLflowHook(config.get_option("tracking_conn_id", MLflowHook.default_conn_name) or "mlflow_default")
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            run_id = log_record(hook, record, context)
        except Exception as e:
            last = e
            if attempt + 1 < attempts:
                time.sleep(backoff * 2**attempt)
            continue
        log.info(
            "Tracked in MLflow: run %s (experiment %s)", run_id, (record.get("task") or {}).get("dag_id")
        )
        return run_id
    first = (str(last).splitlines() or [type(last).__name__])[0]
    message = (
        f"tracking the task in MLflow ({hook.store.tracking_uri}) failed after {attempts} tries: {first}; "
        "check that the tracking server is up and the mlflow connection"
    )
    if required():
        raise TrackingError(message + " ([mlplatform] tracking_required = True fails the task)") from last
    log.warning(
        "%s. The task's result is kept (set [mlplatform] tracking_required = True to fail instead)", message
    )
    return None
