"""The one trigger that waits on a Kubernetes job of any kind in the triggerer (deferrable mode).

``KubeJobTrigger`` loads the job's :class:`~airflow_mlplatform.specs.kinds.JobKind` by reference,
waits through a watch (resumed after drops, relisted after 410 Gone) until the job runs
(``startup_timeout``), then until it is over, and fires one event; the worker then reads the whole
log and cleans up (:meth:`airflow_mlplatform.runners.kube_job.KubeJob.complete`).

While it waits, what the UI shows for the deferred task (the triggerer's log of it) stays alive:

- a status line at INFO each time the job's state changes, and every ``status_interval``
  seconds otherwise;
- the job's log (the kind's log pod: the pod, a TFJob's leader, a DaskJob's runner), streamed
  line by line; at most ``log_lines_per_second`` lines a second are shown (a burst of 10 s worth
  passes), the rest counted, and the loop is yielded to every few lines, so hundreds of
  deferred jobs in one triggerer do not stall its event loop. Values and metrics are still
  parsed from the whole log, in the worker.

The object is stopped when the user kills the task (``on_kill``), when the job's deadline
passes, when it does not start in time and on errors: deleted, or for kinds with a ``stop``
rule (an InferenceService rollout) patched back to what it was; a triggerer restart leaves it
alone (the next triggerer resumes the wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_mlplatform.exceptions import (
    KubernetesApiError,
    KubernetesNotFoundError,
    KubernetesTimeoutError,
    MLPlatformError,
)

NO_LIMIT = 365 * 24 * 3600.0


class KubeJobTrigger(BaseTrigger):
    """Wait until a job of any kind is over; event ``{"status": "done"|"timeout"|"error", ...}``.

    :param kind: :attr:`JobKind.ref <airflow_mlplatform.specs.kinds.JobKind.ref>` of the job's kind.
    :param name: the object's name.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param resource_version: the object's resourceVersion when deferring (the watch starts there).
    :param state: the object's state when deferring.
    :param startup_timeout: seconds for the job to start; then it is stopped (deleted, or restored) and the event says
        what to check.
    :param deadline: UNIX time when the job must be over; the object is deleted then.
    :param start_jitter: the first request waits a random 0..start_jitter seconds, so a triggerer
        that picks up hundreds of waits at once (after a restart) neither floods the API server
        nor blocks its event loop starting them all in one go.
    :param stream_log: stream the job's log into the triggerer's log while it runs.
    :param status_interval: seconds between status lines while the state does not change.
    :param log_lines_per_second: lines of the job's log shown per second at most (the rest is
        counted and said; the worker still reads the whole log).
    :param log_pod: the pod whose log is the job's (the kind's ``log_pod`` of the object).
    :param usage: the lifecycle's :class:`~airflow_mlplatform.usage.KubeFacts` (``as_event()``);
        the trigger adds when it saw the job running and over, and hands them back in its event.
    """

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        namespace: str,
        kubernetes_conn_id: str = "kubernetes_default",
        resource_version: str | None = None,
        state: str | None = None,
        startup_timeout: float = 600,
        deadline: float | None = None,
        start_jitter: float = 1.0,
        stream_log: bool = True,
        status_interval: float = 300.0,
        log_lines_per_second: float = 20.0,
        log_pod: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.resource_version = resource_version
        self.state = state
        self.startup_timeout = startup_timeout
        self.deadline = deadline
        self.start_jitter = start_jitter
        self.stream_log = stream_log
        self.status_interval = status_interval
        self.log_lines_per_second = log_lines_per_second
        self.log_pod = log_pod
        self.usage = dict(usage or {})
        self._fired = False
        self._seen: str | None = None
        self._since = time.monotonic()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kind": self.kind,
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "resource_version": self.resource_version,
                "state": self.state,
                "startup_timeout": self.startup_timeout,
                "deadline": self.deadline,
                "start_jitter": self.start_jitter,
                "stream_log": self.stream_log,
                "status_interval": self.status_interval,
                "log_lines_per_second": self.log_lines_per_second,
                "log_pod": self.log_pod,
                "usage": self.usage,
            },
        )

    def _kind(self) -> Any:
        from airflow_mlplatform.specs.kinds import load_kind

        return load_kind(self.kind)

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.kubernetes import MLPlatformAsyncKubernetesHook

        return MLPlatformAsyncKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)

    def _remaining(self) -> float:
        return (self.deadline - time.time()) if self.deadline is not None else NO_LIMIT

    def _event(self, status: str, kind: Any, obj: dict[str, Any] | None = None, **extra: Any) -> TriggerEvent:
        payload: dict[str, Any] = {
            "status": status,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
        }
        if obj is not None:
            fatal = kind.fatal(obj)
            payload.update(
                state=kind.state(obj),
                succeeded=kind.is_succeeded(obj),
                exit_code=kind.exit_code(obj),
                message=fatal or kind.message(obj),
                fatal=fatal is not None,
                log_pod=kind.log_pod(self.name, obj) or self.log_pod,
            )
        payload.update(extra)
        if self.usage:
            payload["usage"] = self.usage
        self._fired = True
        return TriggerEvent(payload)

    def _watching(self, kind: Any, predicate: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
        """``predicate``, logging a status line whenever the state seen changes."""

        def seen(obj: dict[str, Any]) -> bool:
            line = kind.describe_state(obj)
            if line != self._seen:
                self.log.info("%s %s: %s", kind.label, self.name, line)
                self._seen, self._since = line, time.monotonic()
            return predicate(obj)

        return seen

    async def _status_lines(self, kind: Any) -> None:
        """Every ``status_interval`` seconds without a change: say the state still holds."""
        while True:
            await asyncio.sleep(self.status_interval)
            self.log.info(
                "%s %s is still %s (for %.0f s)",
                kind.label,
                self.name,
                self._seen or "waiting for its first status",
                time.monotonic() - self._since,
            )

    async def _wait(
        self,
        hook: Any,
        kind: Any,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,
        rv: str | None,
    ) -> dict[str, Any]:
        from airflow_mlplatform import metrics

        metrics.incr("mlplatform.trigger.watches", tags={"kind": kind.label})
        obj = await hook.wait_for_object(
            kind.resource,
            self.namespace,
            self.name,
            self._watching(kind, predicate),
            timeout=max(1.0, timeout),
            resource_version=rv,
        )
        if self.usage:  # when the job was first seen running, and over
            now, state = time.time(), kind.state(obj)
            if self.usage.get("running") is None and state in kind.started:
                self.usage["running"] = now
            if self.usage.get("finished") is None and state in kind.final:
                self.usage["finished"] = now
        return obj

    async def run(self) -> AsyncIterator[TriggerEvent]:
        kind = self._kind()
        if self.start_jitter > 0:
            await asyncio.sleep(random.uniform(0, self.start_jitter))
        hook = self._hook()
        helpers: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._status_lines(kind))]
        log_task: asyncio.Future[Any] | None = None
        try:
            try:
                obj: dict[str, Any] | None = None
                rv = self.resource_version
                if self.state not in kind.started:
                    remaining = self._remaining()
                    timeout = min(self.startup_timeout, remaining)
                    try:
                        obj = await self._wait(hook, kind, kind.is_started, timeout, rv)
                    except KubernetesTimeoutError:
                        if remaining <= self.startup_timeout:
                            raise  # the deadline came first
                        yield await self._not_started(hook, kind, timeout)
                        return
                    rv = obj["metadata"].get("resourceVersion")
                if self.stream_log and (obj is None or kind.fatal(obj) is None):
                    log_task = asyncio.ensure_future(self._stream(hook, kind, obj or {}))
                if obj is None or not kind.is_done(obj):
                    if self.state in kind.final and obj is None:
                        rv = None  # relist: the watch would not replay the final state
                    obj = await self._wait(hook, kind, kind.is_done, self._remaining(), rv)
                if log_task is not None:  # let it read the last lines (it ends with the container)
                    with contextlib.suppress(asyncio.TimeoutError, Exception):
                        await asyncio.wait_for(asyncio.shield(log_task), 2.0)
                yield self._event("done", kind, obj)
            except KubernetesTimeoutError as e:
                await self._halt(hook)
                yield self._event("timeout", kind, message=str(e))
            except KubernetesNotFoundError as e:
                yield self._event("error", kind, message=f"the {kind.label} disappeared: {e}")
            except MLPlatformError as e:
                await self._halt(hook)
                yield self._event("error", kind, message=str(e))
        finally:
            for task in [*helpers, *([log_task] if log_task is not None else [])]:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await hook.close()

    async def _not_started(self, hook: Any, kind: Any, timeout: float) -> TriggerEvent:
        """Delete the job that did not start in time; the event says what to check."""
        from airflow_mlplatform.specs.kinds import not_started_message

        latest = None
        with contextlib.suppress(MLPlatformError):
            latest = await hook.get_object(kind.resource, self.namespace, self.name)
        await self._halt(hook)
        message = not_started_message(kind, self.name, self.namespace, latest, timeout, timeout)
        return self._event("error", kind, message=message)

    async def _stream(self, hook: Any, kind: Any, obj: dict[str, Any]) -> None:
        """Show the job's log in the triggerer's log while it runs (rate-limited, display only)."""
        import aiohttp

        from airflow_mlplatform.hooks.kubernetes import SeenLines

        pod = (kind.log_pod(self.name, obj) if obj else None) or self.log_pod
        if pod is None:
            return
        seen = SeenLines()
        rate = max(self.log_lines_per_second, 0.1)
        budget, last, hidden, shown = rate * 10, time.monotonic(), 0, 0
        delay = 0.5
        try:
            for _attempt in range(60):
                try:
                    async for raw in hook.stream_pod_log(
                        pod, self.namespace, container=kind.log_container, follow=True
                    ):
                        text = seen.accept(raw.decode("utf-8", "replace"))
                        if text is None:
                            continue
                        now = time.monotonic()
                        budget, last = min(rate * 10, budget + (now - last) * rate), now
                        if budget >= 1:
                            budget -= 1
                            shown += 1
                            self.log.info("[%s] %s", pod, text)
                            if shown % 20 == 0:
                                await asyncio.sleep(0)  # never hold the loop for a burst
                        else:
                            hidden += 1
                    return  # the container ended: its log is complete
                except (KubernetesApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
                    # not started yet (400), not created yet (404), or a cut stream: look again
                    seen.resume()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
        finally:
            if hidden:
                self.log.info(
                    "%d lines of %s's log were not shown here (at most %.0f a second); the task reads "
                    "the whole log when it resumes",
                    hidden,
                    pod,
                    rate,
                )

    async def _halt(self, hook: Any | None = None) -> None:
        """Stop the object (kill, deadline, start-up timeout, errors): delete it, or restore it."""
        kind = self._kind()
        own = hook is None
        hook = hook or self._hook()
        try:
            done = await self._stop(hook, kind)
            if done == "restored":
                self.log.info("%s %s stopped: restored what it was before", kind.label, self.name)
            if done == "deleted":
                self.log.info("%s %s deleted", kind.label, self.name)
                from airflow_mlplatform import metrics

                metrics.incr("mlplatform.job.deleted_on_stop", tags={"kind": kind.label, "reason": "trigger"})
        except Exception:
            self.log.exception(
                "Could not stop %s %s; check it by hand (kubectl get -n %s %s/%s)",
                kind.label,
                self.name,
                self.namespace,
                kind.resource.plural,
                self.name,
            )
        finally:
            if own:
                await hook.close()

    async def _stop(self, hook: Any, kind: Any) -> str:
        """:func:`airflow_mlplatform.runners.kube_job.stop_object` on the async hook: delete the
        object, or patch it back per the kind's ``stop`` (a rollout restores the previous predictor)."""
        from airflow_mlplatform.specs.kinds import stop_action

        if kind.stop is not None:
            try:
                obj = await hook.get_object(kind.resource, self.namespace, self.name)
            except KubernetesNotFoundError:
                return "gone"
            action, patch = stop_action(kind, obj)
            if action == "patch":
                await hook.patch_object(kind.resource, self.namespace, self.name, patch)
                return "restored"
            if action == "keep":
                return "kept"
        deleted = await hook.delete_object(kind.resource, self.namespace, self.name, grace_period_seconds=0)
        return "deleted" if deleted else "gone"

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed/success, clear): stop the object (delete or restore it)."""
        if not self._fired:
            await self._halt()

    async def cleanup(self) -> None:
        """Past the deadline (the triggerer cancelled us for the task's timeout): stop the object.

        Any other cleanup (a triggerer restart or redistribution) leaves the job running.
        """
        if not self._fired and self.deadline is not None and time.time() >= self.deadline - 1:
            await self._halt()
