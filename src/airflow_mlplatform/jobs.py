"""Run one job the contract's way: time it, record it, store the record, push the XComs.

Operators call :func:`run_recorded` with a callable that does the actual work (a notebook
in the worker, an R script, a pod); this module owns what is the same for all of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform import execution_record as er
from airflow_mlplatform.storage import OutputFolder
from airflow_mlplatform.values import JobOutputs, check_values, push_outputs, record_for_xcom

log = logging.getLogger(__name__)


@dataclass
class JobRun:
    """What a job's callable returns.

    :param outputs: recorded values and metric rows.
    :param environment: extra facts about where and with what it ran (kernel, versions).
    :param ran_on: overrides the default "local worker" location (e.g. a pod).
    """

    outputs: JobOutputs
    environment: dict[str, Any] = field(default_factory=dict)
    ran_on: dict[str, Any] | None = None


def store_record(folder: OutputFolder, record: Mapping[str, Any]) -> None:
    """Write ``execution_record.json`` into ``folder`` and publish the folder.

    :param folder: the try's output folder.
    :param record: the execution record.
    """
    (folder.path / er.RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    folder.publish()


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
) -> dict[str, Any]:
    """Run ``job`` and follow the value contract, on success and on failure.

    On success: checks the values (names, sizes; non-finite floats become null), pushes
    ``metrics`` and ``execution_record``, stores the record and returns the values (the
    operator returns them, so they become ``return_value`` and, with ``multiple_outputs``,
    one XCom each). On failure (any exception, timeouts included, and a failure to check the
    values, push the XComs or store the record): the record, with ``status: failed`` and the
    error, is stored and pushed, then the error propagates; a success record never stays
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
    """
    started = er.utcnow()
    result: JobRun | None = None

    checked = False

    def record_of(status: str, error: BaseException | None) -> dict[str, Any]:
        job_outputs = result.outputs if result is not None else JobOutputs()
        if result is not None and not checked:  # values refused by the checks are not stored
            job_outputs = JobOutputs(values={}, metric_rows=job_outputs.metric_rows)
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
            metrics=job_outputs.metrics,
            outputs={**outputs, "record": folder.uri(er.RECORD_FILE)},
            inputs=inputs,
            started=started,
            ended=er.utcnow(),
            ran_on=(result.ran_on if result is not None and result.ran_on else er.where()),
            status=status,
            error=None if error is None else _first_line(error),
        )

    def fail(error: BaseException, *, stored: bool) -> None:
        """Store and push the failed record (best effort when the failure was storing it)."""
        record = record_of("failed", error)
        try:
            store_record(folder, record)
        except Exception:
            if not stored:
                raise
            log.exception("could not store the failed execution record")
        finally:
            folder.cleanup()
        log.info("Record: %s", record["outputs"]["record"])
        try:
            context["ti"].xcom_push(key="execution_record", value=record_for_xcom(record))
        except Exception:
            log.exception("could not push the failed execution record")

    try:
        result = job()
        # every check of the values before any success record exists: a task never fails after it
        values = check_values(result.outputs.values)
        checked = True
    except BaseException as e:  # AirflowTaskTimeout derives from BaseException
        fail(e, stored=False)
        raise
    record = record_of("success", None)
    try:
        pushed = push_outputs(context, values=values, metrics=result.outputs.metrics, execution_record=record)
        store_record(folder, record)
        if after_store is not None:
            after_store()
    except BaseException as e:
        fail(e, stored=True)
        raise
    folder.cleanup()
    for key, uri in record["outputs"].items():
        log.info("%s: %s", key.replace("_", " ").capitalize(), uri)
    return pushed


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def push_recorded(
    context: Mapping[str, Any],
    *,
    folder: OutputFolder,
    record: Mapping[str, Any],
    values: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """Push the contract's XComs for a record already stored; if that fails (a value too large,
    a refused name, the XCom backend), the stored record is rewritten as failed before the error
    propagates, so no success record stays behind a failed task.

    For operators that store their record themselves (TFJob, RAPIDS); :func:`run_recorded`
    does the same for the others.

    :param context: the task's Airflow context.
    :param folder: the try's output folder the record was stored in.
    :param record: the stored (success) record.
    :param values: the recorded values.
    :param metrics: the metric summary.
    """
    try:
        return push_outputs(context, values=values, metrics=metrics, execution_record=record)
    except BaseException as e:
        failed = {**record, "status": "failed", "error": _first_line(e), "values": {}}
        try:
            folder.path.mkdir(parents=True, exist_ok=True)
            store_record(folder, failed)
        except Exception:
            log.exception("could not rewrite the execution record as failed")
        finally:
            folder.cleanup()
        try:
            context["ti"].xcom_push(key="execution_record", value=record_for_xcom(failed))
        except Exception:
            log.exception("could not push the failed execution record")
        raise
