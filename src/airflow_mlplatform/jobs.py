"""Run one job the contract's way: time it, record it, store the record, push the XComs.

Operators call :func:`run_recorded` with a callable that does the actual work (a notebook
in the worker, an R script, a pod); this module owns what is the same for all of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform import execution_record as er
from airflow_mlplatform import usage as usage_facts
from airflow_mlplatform.storage import OutputFolder
from airflow_mlplatform.values import JobOutputs, check_values, push_outputs, record_for_xcom

log = logging.getLogger(__name__)


@dataclass
class JobRun:
    """What a job's callable returns.

    :param outputs: recorded values and metric rows.
    :param environment: extra facts about where and with what it ran (kernel, versions).
    :param ran_on: overrides the default "local worker" location (e.g. a pod).
    :param metrics: the metrics summary when the job's platform computes it (else the last value
        of each key in ``outputs.metric_rows``).
    """

    outputs: JobOutputs
    environment: dict[str, Any] = field(default_factory=dict)
    ran_on: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


def store_record(folder: OutputFolder, record: Mapping[str, Any]) -> None:
    """Write ``execution_record.json`` into ``folder`` and publish the folder.

    :param folder: the try's output folder.
    :param record: the execution record.
    """
    (folder.path / er.RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    folder.publish()
    index_record(folder, record)


def index_record(folder: OutputFolder, record: Mapping[str, Any]) -> None:
    """Add the stored record to its store's date index (``record_index``); never fails the task.

    :param folder: the try's output folder (``{base}/{dag}/{run}/{task}/try-{n}``).
    :param record: the execution record.
    """
    from airflow_mlplatform import record_index

    base = folder.location.rstrip("/").rsplit("/", 4)[0]
    try:
        record_index.add(base, folder.uri(er.RECORD_FILE), record)
    except Exception:
        log.warning("could not add the execution record to the usage index of %s", base, exc_info=True)


def outcome(error: BaseException | None, context: Mapping[str, Any]) -> tuple[str, str | None]:
    """The record's ``status`` and ``error`` for how a job ended.

    ``success``; ``killed`` when the job was stopped rather than failing on its own (a
    :class:`JobStoppedError`, Airflow's execution_timeout or termination), with an error that
    starts with ``stopped:`` and says by what; else ``failed`` and the error's first line.

    :param error: what the job raised (None: it succeeded).
    :param context: the task's Airflow context (for the task's execution_timeout).
    """
    from airflow_mlplatform.exceptions import JobStoppedError

    if error is None:
        return "success", None
    first = (str(error).splitlines() or [type(error).__name__])[0]
    kind = type(error).__name__
    if kind == "AirflowTaskTimeout":
        task = getattr(context.get("ti"), "task", None) or context.get("task")
        limit = getattr(task, "execution_timeout", None)
        after = f" ({limit.total_seconds():g} s)" if limit is not None else ""
        return "killed", f"stopped: the task ran longer than its execution_timeout{after}"
    if kind == "AirflowTaskTerminated":
        return "killed", f"stopped: the task was terminated by Airflow ({first})"
    if isinstance(error, JobStoppedError):
        return "killed", first if first.startswith("stopped:") else f"stopped: {first}"
    return "failed", first


def with_models(record: dict[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its optional ``models`` section (model versions the task used or registered).

    :param record: the execution record.
    :param context: the task's Airflow context.
    """
    from airflow_mlplatform.models.section import section

    models = section(context)
    return {**record, "models": models} if models else record


def track(
    context: Mapping[str, Any], record: Mapping[str, Any], *, failed: BaseException | None = None
) -> None:
    """Log the stored record as an MLflow run when ``[mlplatform] tracking = mlflow``.

    :param context: the task's Airflow context.
    :param record: the stored execution record.
    :param failed: the error of a failed job: its run is logged best effort (never raises), and
        not again when tracking itself was the failure.
    """
    from airflow_mlplatform import tracking
    from airflow_mlplatform.exceptions import TrackingError

    if failed is None:
        tracking.track(context, record)
    elif not isinstance(failed, TrackingError):
        with contextlib.suppress(Exception):
            tracking.track(context, record)


def run_recorded(
    context: Mapping[str, Any],
    *,
    job: Callable[[], JobRun],
    folder: OutputFolder,
    parameters: Mapping[str, Any],
    code: Mapping[str, Any],
    environment: Mapping[str, Any],
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    after_store: Callable[[], None] | None = None,
    in_worker: bool = True,
    ran_on: Callable[[], Mapping[str, Any]] | None = None,
    partial: Callable[[], JobOutputs] | None = None,
    started: Any = None,
) -> dict[str, Any]:
    """Run ``job`` and follow the value contract, on success and on failure.

    On success: checks the values (names, sizes; non-finite floats become null), pushes
    ``metrics`` and ``execution_record``, stores the record and returns the values (the
    operator returns them, so they become ``return_value`` and, with ``multiple_outputs``,
    one XCom each). On failure (any exception, timeouts included, and a failure to check the
    values, push the XComs or store the record): the record, with ``status: failed`` and the
    error, is stored and pushed, then the error propagates; a job that was stopped (killed,
    timed out) gets ``status: killed`` (see :func:`outcome`). A success record never stays
    behind a task that fails.

    :param context: the task's Airflow context.
    :param job: does the work and returns a :class:`JobRun`.
    :param folder: the try's output folder (the record is written there).
    :param parameters: the parameters the job received.
    :param code: what ran (path, sha256, git commit...).
    :param environment: facts known before running (image or interpreter).
    :param outputs: URIs of the job's files, e.g. ``{"notebook": uri}``.
    :param inputs: input URIs.
    :param after_store: called after the record is stored (e.g. to copy a file elsewhere).
    :param in_worker: the job runs in this process's environment (its Python version and
        packages hash go into the record); False for pods, whose image is recorded instead.
    :param ran_on: where the job ran, asked when it is over, after a failure too (the record's
        ``where``; a :class:`JobRun`'s ``ran_on`` wins); default: this worker.
    :param partial: what the job reported before it failed (recorded with the failure).
    :param started: when the job started (a datetime; default: now), e.g. before a deferral.
    """
    started = started or er.utcnow()
    result: JobRun | None = None
    checked = False
    notes = usage_facts.UsageNotes()

    def record_of(error: BaseException | None) -> dict[str, Any]:
        status, message = outcome(error, context)
        if result is not None:
            job_outputs = result.outputs
            if not checked:  # values refused by the checks are not stored
                job_outputs = JobOutputs(values={}, metric_rows=job_outputs.metric_rows)
        else:
            job_outputs = JobOutputs()
            if partial is not None:
                with contextlib.suppress(Exception):
                    job_outputs = partial()
        if result is not None and result.ran_on:
            where = dict(result.ran_on)
        elif ran_on is not None:
            try:
                where = dict(ran_on())
            except Exception:
                where = er.where()
        else:
            where = er.where()
        ended = er.utcnow()
        return er.build_record(
            task=er.task_identity(context),
            code=code,
            environment={
                **(er.python_environment() if in_worker else {}),
                **environment,
                **(result.environment if result else {}),
            },
            parameters=parameters,
            values=job_outputs.values,
            metric_rows=job_outputs.metric_rows,
            metrics=result.metrics
            if result is not None and result.metrics is not None
            else job_outputs.metrics,
            outputs={**outputs, "record": folder.uri(er.RECORD_FILE)},
            inputs=inputs,
            started=started,
            ended=ended,
            ran_on=where,
            status=status,
            error=message,
            usage=try_usage(context, notes=notes, where=where, started=started, ended=ended, status=status),
        )

    def fail(error: BaseException, *, stored: bool) -> None:
        """Store and push the failed record (best effort when the failure was storing it)."""
        record = with_models(record_of(error), context)
        try:
            store_record(folder, record)
        except Exception:
            if not stored:
                raise
            log.exception("could not store the failed execution record")
        finally:
            folder.cleanup()
        track(context, record, failed=error)
        log.info("Record: %s", record["outputs"]["record"])
        emit_job_metrics(record)
        try:
            context["ti"].xcom_push(key="execution_record", value=record_for_xcom(record))
        except Exception:
            log.exception("could not push the failed execution record")

    try:
        with usage_facts.collecting(profile=task_profile(context)) as notes:
            result = job()
        # every check of the values before any success record exists: a task never fails after it
        values = check_values(result.outputs.values)
        checked = True
    except BaseException as e:  # AirflowTaskTimeout derives from BaseException
        fail(e, stored=False)
        raise
    summary = result.metrics if result.metrics is not None else result.outputs.metrics
    record = with_models(record_of(None), context)
    try:
        pushed = push_outputs(context, values=values, metrics=summary, execution_record=record)
        store_record(folder, record)
        if after_store is not None:
            after_store()
        track(context, record)
    except BaseException as e:
        fail(e, stored=True)
        raise
    folder.cleanup()
    emit_job_metrics(record)
    if values:
        log.info("Recorded values: %s", ", ".join(sorted(values)))
    if summary:
        log.info("Metrics (last values): %s", ", ".join(sorted(summary)))
    for key, uri in record["outputs"].items():
        log.info("%s: %s", key.replace("_", " ").capitalize(), uri)
    return pushed


def record_failed_before_run(context: Mapping[str, Any], error: BaseException) -> None:
    """Store and push the failed record of a try whose job never started (e.g. a templated
    parameter that could not be resolved); the caller raises ``error`` itself.

    :param context: the task's Airflow context (nothing is recorded without a task instance).
    :param error: why the try fails.
    """
    from airflow_mlplatform import storage

    if not isinstance(context, Mapping) or context.get("ti") is None:
        return
    task = context.get("task")
    operator = f"{type(task).__module__}.{type(task).__name__}" if task is not None else None

    def job() -> JobRun:
        raise error

    try:
        run_recorded(
            context,
            job=job,
            folder=OutputFolder(storage.task_output_location(context)),
            parameters={},
            code={"operator": operator},
            environment={},
            outputs={},
        )
    except BaseException as raised:
        if raised is not error:
            log.warning("could not record the failure before the job started", exc_info=True)


def task_profile(context: Mapping[str, Any]) -> Any:
    """The running task's compute profile (its ``compute`` and ``compute_overrides``), or None."""
    task = getattr(context.get("ti"), "task", None) or context.get("task")
    compute = getattr(task, "compute", None)
    if not compute:
        return None
    try:
        from airflow_mlplatform.compute import resolve_compute

        return resolve_compute(compute, dict(getattr(task, "compute_overrides", None) or {}))
    except Exception:  # the task resolved it before it ran; never fail a record for it
        return None


def try_usage(
    context: Mapping[str, Any],
    *,
    notes: usage_facts.UsageNotes,
    where: Mapping[str, Any],
    started: Any,
    ended: Any,
    status: str,
) -> dict[str, Any]:
    """The record's ``usage`` section of this try (:func:`airflow_mlplatform.usage.usage_section`)."""
    task = getattr(context.get("ti"), "task", None) or context.get("task")
    return usage_facts.usage_section(
        notes=notes,
        profile=task_profile(context),
        task_type=type(task).__name__ if task is not None else "unknown",
        where=where,
        started=started,
        ended=ended,
        status=status,
    )


def emit_job_metrics(record: Mapping[str, Any]) -> None:
    """The try's outcome, duration and start latency through Airflow's Stats (docs/monitoring.md)."""
    from airflow_mlplatform import metrics

    if record.get("usage"):
        metrics.job_ended(record["usage"])


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
