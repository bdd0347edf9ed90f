"""ValohaiExecutionSensor: wait for a Valohai execution started elsewhere (UI, CLI, another DAG)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator

from airflow_mlplatform.config import default_deferrable
from airflow_mlplatform.exceptions import ValohaiError, ValohaiExecutionFailedError
from airflow_mlplatform.valohai_payloads import FINISHED, SUCCESS, output_values


class ValohaiExecutionSensor(BaseSensorOperator):
    """Succeed when an execution is ``complete``; fail when it ends ``error``/``crashed``/``stopped``.

    Returns ``{output file: "datum://id"}`` like the submitting operator, so a downstream
    execution can take them as inputs.

    :param execution: execution id or ``project_id:counter``.
    :param valohai_conn_id: the ``valohai`` connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param max_poll_interval: longest wait between polls in deferrable mode (the first is ``poke_interval``).
    :param hook_kwargs: extra ValohaiHook arguments.
    """

    template_fields: Sequence[str] = ("execution", "valohai_conn_id")

    def __init__(
        self,
        *,
        execution: str,
        valohai_conn_id: str = "valohai_default",
        deferrable: bool | None = None,
        max_poll_interval: float = 90.0,
        hook_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution = execution
        self.valohai_conn_id = valohai_conn_id
        self.deferrable = deferrable
        self.max_poll_interval = max_poll_interval
        self.hook_kwargs = dict(hook_kwargs or {})

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.valohai import ValohaiHook

        return ValohaiHook(self.valohai_conn_id, **self.hook_kwargs)

    def _check(self, hook: Any, execution: Mapping[str, Any]) -> dict[str, str] | None:
        status = execution.get("status")
        if status not in FINISHED:
            self.log.info("execution #%s is %s", execution.get("counter"), status)
            return None
        if status != SUCCESS:
            tail = "\n".join(f"    {line}" for line in hook.get_log_tail(str(execution["id"])))
            raise ValohaiExecutionFailedError(
                f"Valohai execution #{execution.get('counter')} ended {status!r}. Last log lines:\n{tail}"
            )
        datums = execution.get("outputs")
        return output_values(datums if datums is not None else hook.list_outputs(str(execution["id"])))

    def poke(self, context: Any) -> Any:
        from airflow.sdk import PokeReturnValue

        hook = self._hook()
        values = self._check(hook, hook.get_execution(str(self.execution)))
        return PokeReturnValue(is_done=values is not None, xcom_value=values)

    def execute(self, context: Any) -> Any:
        if not (self.deferrable if self.deferrable is not None else default_deferrable()):
            return super().execute(context)
        from airflow_mlplatform.triggers.valohai import ValohaiExecutionTrigger

        hook = self._hook()
        execution = hook.get_execution(str(self.execution))
        values = self._check(hook, execution)
        if values is not None:
            return values
        self.defer(
            trigger=ValohaiExecutionTrigger(
                execution_id=str(execution["id"]),
                valohai_conn_id=self.valohai_conn_id,
                poll_interval=float(self.poke_interval),
                max_poll_interval=self.max_poll_interval,
                deadline=time.time() + float(self.timeout) if self.timeout else None,
                stop_on_timeout=False,
                stop_on_kill=False,
                hook_kwargs=self.hook_kwargs,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired.

        :param context: the task's context.
        :param event: the trigger's event.
        """
        if event.get("status") == "timeout":
            from airflow.sdk.exceptions import AirflowSensorTimeout

            raise AirflowSensorTimeout(
                f"Valohai execution {event.get('execution_id')} did not finish in time"
            )
        if event.get("status") != "finished":
            raise ValohaiError(f"waiting for Valohai execution failed: {event.get('message')}")
        return self._check(self._hook(), event["execution"])
