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
from airflow_mlplatform.storage import OutputFolder
from airflow_mlplatform.values import JobOutputs, push_outputs

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

    On success: pushes ``metrics`` and ``execution_record`` and returns the values (the
    operator returns them, so they become ``return_value`` and, with ``multiple_outputs``,
    one XCom each). On failure (any exception, timeouts included): the record, with
    ``status: failed`` and the error, is stored and pushed, then the error propagates.

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
    error: BaseException | None = None
    try:
        result = job()
    except BaseException as e:  # AirflowTaskTimeout derives from BaseException
        error = e
        raise
    finally:
        if result is not None:
            job_outputs = result.outputs
        else:
            job_outputs = JobOutputs()
            if partial is not None:
                with contextlib.suppress(Exception):
                    job_outputs = partial()
        if result is not None and result.ran_on:
            where = dict(result.ran_on)
        elif ran_on is not None:
            where = dict(ran_on())
        else:
            where = er.where()
        record = er.build_record(
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
            ended=er.utcnow(),
            ran_on=where,
            status="success" if error is None else "failed",
            error=None if error is None else (str(error).splitlines() or [type(error).__name__])[0],
        )
        try:
            store_record(folder, record)
            if after_store is not None:
                after_store()
        finally:
            folder.cleanup()
        for key, uri in record["outputs"].items():
            log.info("%s: %s", key.replace("_", " ").capitalize(), uri)
        if error is not None:
            context["ti"].xcom_push(key="execution_record", value=record)
    assert result is not None
    return push_outputs(
        context,
        values=result.outputs.values,
        metrics=result.metrics if result.metrics is not None else result.outputs.metrics,
        execution_record=record,
    )
