"""Triggers that wait on Kubernetes objects in the triggerer (deferrable mode).

``PodJobTrigger`` waits for a pod to end through one watch (resumed after drops, relisted after
410 Gone), then fires one event; the worker reads the log and cleans up. It deletes the pod when
the user kills the task (``on_kill``), when the job's deadline passes (execution_timeout), and when
it fails on its own; a triggerer restart leaves the pod alone (the next triggerer resumes the wait).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlplatform.exceptions import KubernetesNotFoundError, KubernetesTimeoutError, MLPlatformError

TERMINAL = ("Succeeded", "Failed")


class PodJobTrigger(BaseTrigger):
    """Wait until a pod Succeeds or Fails; event ``{"status": "done"|"timeout"|"error", ...}``.

    :param pod_name: the pod.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param resource_version: the pod's resourceVersion when deferring (the watch starts there).
    :param phase: the pod's phase when deferring.
    :param startup_timeout: seconds the pod may stay Pending.
    :param deadline: UNIX time when the job must be over; the pod is deleted then.
    :param start_jitter: the first request waits a random 0..start_jitter seconds, so a triggerer
        that picks up hundreds of waits at once (after a restart) neither floods the API server
        nor blocks its event loop starting them all in one go.
    """

    def __init__(
        self,
        *,
        pod_name: str,
        namespace: str,
        kubernetes_conn_id: str = "kubernetes_default",
        resource_version: str | None = None,
        phase: str = "Pending",
        startup_timeout: float = 600,
        deadline: float | None = None,
        start_jitter: float = 1.0,
    ) -> None:
        super().__init__()
        self.pod_name = pod_name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.resource_version = resource_version
        self.phase = phase
        self.startup_timeout = startup_timeout
        self.deadline = deadline
        self.start_jitter = start_jitter
        self._fired = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pod_name": self.pod_name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "resource_version": self.resource_version,
                "phase": self.phase,
                "startup_timeout": self.startup_timeout,
                "deadline": self.deadline,
                "start_jitter": self.start_jitter,
            },
        )

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.kubernetes import MLPlatformAsyncKubernetesHook

        return MLPlatformAsyncKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)

    def _event(self, status: str, pod: dict[str, Any] | None = None, **extra: Any) -> TriggerEvent:
        from airflow_mlplatform.runners.pod import exit_code, phase, stuck_reason

        payload: dict[str, Any] = {"status": status, "pod_name": self.pod_name, "namespace": self.namespace}
        if pod is not None:
            payload.update(phase=phase(pod), exit_code=exit_code(pod), reason=stuck_reason(pod))
        payload.update(extra)
        self._fired = True
        return TriggerEvent(payload)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_mlplatform.hooks.kubernetes import PODS
        from airflow_mlplatform.runners.pod import is_done, is_started

        if self.start_jitter > 0:
            await asyncio.sleep(random.uniform(0, self.start_jitter))
        hook = self._hook()
        try:
            remaining = (self.deadline - time.time()) if self.deadline is not None else 365 * 24 * 3600.0
            try:
                pod: dict[str, Any] | None = None
                rv = self.resource_version
                if self.phase == "Pending":
                    pod = await hook.wait_for_object(
                        PODS,
                        self.namespace,
                        self.pod_name,
                        is_started,
                        timeout=min(self.startup_timeout, remaining),
                        resource_version=rv,
                    )
                    rv = pod["metadata"].get("resourceVersion")
                if pod is None or not is_done(pod):
                    if self.phase in TERMINAL and pod is None:
                        rv = None  # relist: the watch would not replay the final state
                    remaining = (self.deadline - time.time()) if self.deadline is not None else remaining
                    pod = await hook.wait_for_object(
                        PODS, self.namespace, self.pod_name, is_done, timeout=remaining, resource_version=rv
                    )
                yield self._event("done", pod)
            except KubernetesTimeoutError as e:
                await self._delete(hook)
                yield self._event("timeout", message=str(e))
            except KubernetesNotFoundError as e:
                yield self._event("error", message=f"the pod disappeared: {e}")
            except MLPlatformError as e:
                await self._delete(hook)
                yield self._event("error", message=str(e))
        finally:
            await hook.close()

    async def _delete(self, hook: Any | None = None) -> None:
        from airflow_mlplatform.hooks.kubernetes import PODS

        own = hook is None
        hook = hook or self._hook()
        try:
            if await hook.delete_object(PODS, self.namespace, self.pod_name, grace_period_seconds=0):
                self.log.info("Pod %s deleted", self.pod_name)
        except Exception:
            self.log.exception("Could not delete pod %s; delete it by hand", self.pod_name)
        finally:
            if own:
                await hook.close()

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed/success, clear): delete the pod."""
        if not self._fired:
            await self._delete()

    async def cleanup(self) -> None:
        """Past the deadline (the triggerer cancelled us for the task's timeout): delete the pod.

        Any other cleanup (a triggerer restart or redistribution) leaves the pod running.
        """
        if not self._fired and self.deadline is not None and time.time() >= self.deadline - 1:
            await self._delete()
