"""TFJobTrigger: wait in the triggerer for a TFJob's Succeeded or Failed condition (deferrable mode).

One watch (resumed after drops, relisted after 410 Gone, through the provider's async Kubernetes
hook), then one event; the worker reads the leader's log and cleans up. The TFJob is deleted when
the user kills the task (``on_kill``), when the task's deadline passes (execution_timeout), and on
errors; a triggerer restart leaves it alone (the next triggerer resumes the wait).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlplatform.exceptions import KubernetesNotFoundError, KubernetesTimeoutError, MLPlatformError


class TFJobTrigger(BaseTrigger):
    """Wait until a TFJob is Succeeded or Failed; event ``{"status": "done"|"timeout"|"error", ...}``.

    :param name: the TFJob.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param resource_version: the TFJob's resourceVersion when deferring (the watch starts there).
    :param deadline: UNIX time when the job must be over; the TFJob is deleted then.
    :param startup_timeout: seconds for the TFJob to run (its Running condition); if it does not,
        it is deleted and the event says what to check (None: no start-up check).
    :param plan: what the operator needs back when it resumes (JSON), echoed in the event.
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        kubernetes_conn_id: str = "kubernetes_default",
        resource_version: str | None = None,
        deadline: float | None = None,
        plan: dict[str, Any] | None = None,
        startup_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.resource_version = resource_version
        self.deadline = deadline
        self.plan = plan
        self.startup_timeout = startup_timeout
        self._fired = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "resource_version": self.resource_version,
                "deadline": self.deadline,
                "plan": self.plan,
                "startup_timeout": self.startup_timeout,
            },
        )

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.kubernetes import MLPlatformAsyncKubernetesHook

        return MLPlatformAsyncKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)

    def _event(self, status: str, **extra: Any) -> TriggerEvent:
        self._fired = True
        payload = {"status": status, "name": self.name, "namespace": self.namespace, "plan": self.plan}
        return TriggerEvent({**payload, **extra})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_mlplatform.runners.tf_kubeflow import FINAL, condition, tfjobs_resource

        hook = self._hook()
        try:
            remaining = (self.deadline - time.time()) if self.deadline is not None else 365 * 24 * 3600.0
            try:
                if self.startup_timeout:
                    message = await self._wait_started(hook, min(self.startup_timeout, max(1.0, remaining)))
                    if message is not None:
                        await self._delete(hook)
                        yield self._event("error", message=message)
                        return
                    remaining = (self.deadline - time.time()) if self.deadline is not None else remaining
                obj = await hook.wait_for_object(
                    tfjobs_resource(),
                    self.namespace,
                    self.name,
                    lambda o: condition(o)[0] in FINAL,
                    timeout=max(1.0, remaining),
                    resource_version=self.resource_version,
                )
                state, message = condition(obj)
                yield self._event("done", condition=state, message=message)
            except KubernetesTimeoutError as e:
                await self._delete(hook)
                yield self._event("timeout", message=str(e))
            except KubernetesNotFoundError as e:
                yield self._event("error", message=f"the TFJob disappeared: {e}")
            except MLPlatformError as e:
                await self._delete(hook)
                yield self._event("error", message=str(e))
        finally:
            await hook.close()

    async def _wait_started(self, hook: Any, timeout: float) -> str | None:
        """None once the TFJob runs (or is over); else what to check (it did not start in time)."""
        from airflow_mlplatform.runners.tf_kubeflow import (
            STARTED,
            condition,
            not_started_message,
            tfjobs_resource,
        )

        try:
            await hook.wait_for_object(
                tfjobs_resource(),
                self.namespace,
                self.name,
                lambda o: condition(o)[0] in STARTED,
                timeout=timeout,
                resource_version=self.resource_version,
            )
            return None
        except KubernetesTimeoutError:
            state = None
            with suppress(MLPlatformError):
                state = condition(await hook.get_object(tfjobs_resource(), self.namespace, self.name))[0]
            return not_started_message(self.name, self.namespace, timeout, state)

    async def _delete(self, hook: Any | None = None) -> None:
        from airflow_mlplatform.runners.tf_kubeflow import tfjobs_resource

        own = hook is None
        hook = hook or self._hook()
        try:
            if await hook.delete_object(tfjobs_resource(), self.namespace, self.name):
                self.log.info("TFJob %s deleted", self.name)
        except Exception:
            self.log.exception("Could not delete TFJob %s; delete it by hand", self.name)
        finally:
            if own:
                await hook.close()

    async def on_kill(self) -> None:
        """The user killed the deferred task: delete the TFJob."""
        if not self._fired:
            await self._delete()

    async def cleanup(self) -> None:
        """Past the deadline (the triggerer cancelled us for the task's timeout): delete the TFJob."""
        if not self._fired and self.deadline is not None and time.time() >= self.deadline - 1:
            await self._delete()
