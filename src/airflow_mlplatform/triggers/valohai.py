"""ValohaiExecutionTrigger: waits in the triggerer until a Valohai execution finishes.

It polls ``GET /executions/{id}/`` with backoff (quick at first, then up to a cap), with
one shared HTTP client per event loop, and fires one event:

- ``{"status": "finished", "execution": {...}}`` when the execution finished (any outcome);
- ``{"status": "timeout", "execution_id": ...}`` after ``deadline`` (it stops the execution first);
- ``{"status": "error", "message": ..., "execution_id": ...}`` when Valohai could not be asked.

When a user kills the deferred task (mark failed/success, clear), Airflow 3.3 calls
``on_kill`` in the triggerer, which stops the execution when ``stop_on_kill`` is set (the
submitting operator owns its execution; a sensor waiting on someone else's does not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlplatform.valohai_payloads import FINISHED, poll_intervals, trim_execution


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
            },
        )

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.valohai import ValohaiHook

        return ValohaiHook(self.valohai_conn_id, **self.hook_kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
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
                execution = await hook.aget_execution(self.execution_id)
                status = execution.get("status")
                if status in FINISHED:
                    yield TriggerEvent({"status": "finished", "execution": trim_execution(execution)})
                    return
                self.log.debug("execution %s is %s", self.execution_id, status)
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
