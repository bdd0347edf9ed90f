"""ValohaiExecutionTrigger: waits in the triggerer until a Valohai execution finishes.

It polls ``GET /executions/{id}/`` with backoff (quick at first, then up to a cap), with
one shared HTTP client per event loop, logs the execution's status at INFO when it changes
and every ``status_log_interval`` seconds otherwise (the triggerer's log is what the UI shows
for a deferred task), and fires one event:

- ``{"status": "finished", "execution": {...}}`` when the execution finished (any outcome);
- ``{"status": "timeout", "execution_id": ...}`` after ``deadline`` (it stops the execution first);
- ``{"status": "error", "message": ..., "execution_id": ...}`` when Valohai could not be asked.

When a user kills the deferred task (mark failed/success, clear), Airflow 3.3 calls
``on_kill`` in the triggerer, which stops the execution when ``stop_on_kill`` is set (the
submitting operator owns its execution; a sensor waiting on someone else's does not).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlplatform.valohai_payloads import (
    FINISHED,
    STATUS_LOG_INTERVAL,
    StatusLog,
    poll_intervals,
    trim_execution,
)


class ValohaiExecutionTrigger(BaseTrigger):
    """Wait for a Valohai execution to finish.

    :param execution_id: the execution's id.
    :param valohai_conn_id: the ``valohai`` connection.
    :param poll_interval: first wait between polls, seconds.
    :param max_poll_interval: longest wait between polls, seconds.
    :param deadline: wall-clock time (epoch seconds) after which the execution is stopped
        and a ``timeout`` event fires; None waits without limit.
    :param stop_on_timeout: stop the execution when the deadline passes.
    :param stop_on_kill: stop the execution when the deferred task is killed; False for
        executions the task does not own (the sensor).
    :param hook_kwargs: extra ValohaiHook arguments (timeout, retries, backoff, backoff_max).
    :param status_log_interval: longest time without an INFO status line while the status does
        not change, seconds.
    """

    def __init__(
        self,
        *,
        execution_id: str,
        valohai_conn_id: str = "valohai_default",
        poll_interval: float = 5.0,
        max_poll_interval: float = 90.0,
        deadline: float | None = None,
        stop_on_timeout: bool = True,
        stop_on_kill: bool = True,
        hook_kwargs: dict[str, Any] | None = None,
        status_log_interval: float = STATUS_LOG_INTERVAL,
    ) -> None:
        super().__init__()
        self.execution_id = execution_id
        self.valohai_conn_id = valohai_conn_id
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.deadline = deadline
        self.stop_on_timeout = stop_on_timeout
        self.stop_on_kill = stop_on_kill
        self.hook_kwargs = dict(hook_kwargs or {})
        self.status_log_interval = status_log_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "execution_id": self.execution_id,
                "valohai_conn_id": self.valohai_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "deadline": self.deadline,
                "stop_on_timeout": self.stop_on_timeout,
                "stop_on_kill": self.stop_on_kill,
                "hook_kwargs": self.hook_kwargs,
                "status_log_interval": self.status_log_interval,
            },
        )

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.valohai import ValohaiHook

        return ValohaiHook(self.valohai_conn_id, **self.hook_kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        progress = StatusLog(
            execution_id=self.execution_id, interval=self.status_log_interval, started=time.monotonic()
        )
        try:
            intervals = poll_intervals(
                self.poll_interval, self.max_poll_interval, jitter=0.1, seed=self.execution_id
            )
            for interval in intervals:
                if self.deadline is not None:
                    left = self.deadline - time.time()
                    if left <= 0:
                        if self.stop_on_timeout:
                            await hook.astop_execution(self.execution_id)
                        yield TriggerEvent({"status": "timeout", "execution_id": self.execution_id})
                        return
                    interval = min(interval, left)
                await asyncio.sleep(interval)
                _count_poll()
                execution = await hook.aget_execution(self.execution_id)
                line = progress.line(execution, time.monotonic())
                if line:
                    self.log.info(line)
                elif self.log.isEnabledFor(logging.DEBUG):
                    self.log.debug("execution %s is %s", self.execution_id, execution.get("status"))
                if execution.get("status") in FINISHED:
                    yield TriggerEvent({"status": "finished", "execution": trim_execution(execution)})
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            from airflow_mlplatform.masking import redact_text

            yield TriggerEvent(
                {"status": "error", "message": redact_text(str(e)), "execution_id": self.execution_id}
            )

    async def on_kill(self) -> None:
        """The user killed the deferred task: stop the execution (bounded by the hook's timeouts).

        Only with ``stop_on_kill``: a sensor's trigger leaves an execution it did not start running.
        """
        if not self.stop_on_kill:
            self.log.info(
                "task killed while deferred: leaving Valohai execution %s running (not ours)",
                self.execution_id,
            )
            return
        self.log.info("task killed while deferred: stopping Valohai execution %s", self.execution_id)
        await self._hook().astop_execution(self.execution_id)


def _count_poll() -> None:
    from airflow_mlplatform import metrics

    metrics.incr("mlplatform.trigger.polls", tags={"api": "valohai"})
