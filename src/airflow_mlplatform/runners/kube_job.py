"""One lifecycle for every Kubernetes job kind (pod, TFJob, DaskJob, DaskCluster, ...): :class:`KubeJob`.

A kind is described once (:class:`airflow_mlplatform.specs.kinds.JobKind`); this module runs any
of them the same way::

    job = KubeJob(TFJOB_KIND, manifest, selector=identity_selector(identity),
                  kubernetes_conn_id="kubernetes_default", log=self.log,
                  startup_timeout=600, deadline=job_deadline(timeout=..., operator=self, context=context))
    # synchronous: adopt or create, wait for the start, stream the log, wait for the end,
    # delete per delete_policy (always on kill, timeout or error)
    result = job.run()
    result.raise_for_status()       # JobFailedError with the log's tail; KubernetesLogError if unreadable
    result.outputs.values, result.outputs.metrics, result.reattached
    # deferrable: adopt or create, then defer to KubeJobTrigger (raises TaskDeferred) ...
    job.defer(operator, method_name="execute_complete")
    # ... and in execute_complete: read the whole log once, parse it, delete per policy
    result = job.complete(event)
    # on_kill, from any thread, also during the create: delete the object
    job.kill()

What every kind gets:

1. **list-adopt-or-replace**: the objects of earlier tries of the task (label selector of the
   task identity) are listed; with ``earlier_try="adopt"`` the newest one that still runs (or
   succeeded, and whose results no task read: see :data:`~airflow_mlplatform.specs.kinds.CONSUMED_ANNOTATION`)
   is adopted instead of starting a second job; with ``"replace"`` they are deleted first;
2. **a kill-safe create** through the hook's ``create_or_adopt`` (a retried POST answered 409 is
   ours: names are per try); a kill during the request deletes the object as soon as it exists
   and raises :class:`~airflow_mlplatform.exceptions.JobKilledError`; a missing CRD is a
   ConfigurationError with the kind's hint;
3. **the start** within ``startup_timeout`` (JobFailedError saying what to check, then deleted);
4. **the log** of the kind's log pod, streamed with the resumable follower
   (:mod:`airflow_mlplatform.runners.pod_log`) into the task log and the value parser; a log
   that cannot be read fails a job that succeeded (never an empty result);
5. **the end** (a watch), bounded by one deadline rule for every kind: the sooner of ``timeout``
   and the task's start + ``execution_timeout`` (:func:`job_deadline`; :data:`NO_LIMIT` without);
6. **delete** per ``delete_policy`` after a normal end (a kept object is marked consumed), and
   always on kill, timeout and error; an object that cannot be deleted is named in the task's
   failure (:class:`~airflow_mlplatform.exceptions.KubernetesCleanupError`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    JobFailedError,
    JobKilledError,
    KubernetesApiError,
    KubernetesCleanupError,
    KubernetesLogError,
    KubernetesNotFoundError,
    KubernetesResourceTypeNotFoundError,
    KubernetesTimeoutError,
)
from airflow_mlplatform.specs.kinds import (
    CONSUMED_ANNOTATION,
    POD,
    JobKind,
    is_consumed,
    not_started_message,
)
from airflow_mlplatform.usage import KubeFacts, manifest_shape, note_kube, parse_time, tenant_of
from airflow_mlplatform.values import JobOutputs, StreamParser

#: The deadline of a job without ``timeout`` and ``execution_timeout`` (seconds), every kind.
NO_LIMIT = 365 * 24 * 3600.0
#: Seconds for a job to start when the operator does not say.
DEFAULT_STARTUP_TIMEOUT = 600.0
#: After a normal end: delete ``always``, ``on_success`` (keep failed jobs), ``on_failure`` (keep
#: successful ones) or ``never``.
DELETE_POLICIES = ("always", "on_success", "on_failure", "never")
TAIL_LINES = 50


def job_deadline(
    *, timeout: float | None = None, operator: Any = None, context: Mapping[str, Any] | None = None
) -> float:
    """When a job must be over (UNIX time), the same rule for every kind and mode.

    The sooner of now + ``timeout`` and the task's start + the operator's ``execution_timeout``;
    :data:`NO_LIMIT` from now when neither is set.

    :param timeout: seconds the job may take (None: no limit of its own).
    :param operator: the operator (its ``execution_timeout``).
    :param context: the task's Airflow context (``ti.start_date``).
    """
    now = time.time()
    deadlines = [now + NO_LIMIT]
    if timeout is not None:
        deadlines.append(now + float(timeout))
    execution_timeout = getattr(operator, "execution_timeout", None)
    if execution_timeout is not None:
        start = getattr((context or {}).get("ti"), "start_date", None)
        begun = start.timestamp() if start is not None else now
        deadlines.append(begun + execution_timeout.total_seconds())
    return min(deadlines)


class LogFeed:
    """The job's log, line by line: into the task log, the value parser and a tail for errors.

    :param log: the task's logger.
    :param prefix: put before each line in the task log (``"[pod] "``).
    :param tail: lines kept for error messages.
    """

    def __init__(self, log: Any, prefix: str = "", tail: int = TAIL_LINES) -> None:
        self.log = log
        self.prefix = prefix
        self.parser = StreamParser()
        self.tail: deque[str] = deque(maxlen=tail)

    def line(self, text: str) -> None:
        self.log.info("%s%s", self.prefix, text)
        self.parser.feed_line(text)
        self.tail.append(text)


@dataclass
class JobResult:
    """How a job of any kind ended.

    :param kind: the kind's name (``Pod``, ``TFJob``...).
    :param name: the object's name.
    :param namespace: its namespace.
    :param state: its final state (``Succeeded``, ``Failed``, ``Successful``...).
    :param succeeded: whether the kind says success (and the exit code, for pods, is 0).
    :param exit_code: the job container's exit code (pods), else None.
    :param message: the controller's message (a failure's reason), or the fatal reason.
    :param outputs: recorded values and metric rows parsed from the log.
    :param reattached: an object of an earlier try was adopted instead of created.
    :param log_pod: the pod whose log was read (None for kinds without a log).
    :param log_tail: the last lines of that log.
    :param log_error: why the log could not be read whole (the values are unknown then).
    :param fatal: the job could never have run (an invalid image...).
    """

    kind: str
    name: str
    namespace: str
    state: str | None
    succeeded: bool
    exit_code: int | None = None
    message: str = ""
    outputs: JobOutputs = field(default_factory=JobOutputs)
    reattached: bool = False
    log_pod: str | None = None
    log_tail: list[str] = field(default_factory=list)
    log_error: str | None = None
    fatal: bool = False

    def raise_for_status(self) -> None:
        """JobFailedError (with the message and the log's tail) unless the job succeeded;
        KubernetesLogError if it succeeded but its log could not be read."""
        if not self.succeeded:
            if self.exit_code is not None and self.exit_code != 0:
                why = f"exit code {self.exit_code}"
            else:
                why = self.message or self.state or "no state"
            tail = "\n".join(self.log_tail[-20:])
            where = f"{self.kind} {self.name!r} in namespace {self.namespace!r}"
            text = f"{where} failed ({why})."
            if tail:
                text += f" Last lines of {self.log_pod or 'its output'}:\n{tail}"
            elif self.log_error:
                text += f" Its log could not be read: {self.log_error}"
            raise JobFailedError(text)
        if self.log_error:
            raise KubernetesLogError(
                f"{self.kind} {self.name!r} in namespace {self.namespace!r} succeeded, but {self.log_error}; "
                "its recorded values and metrics are unknown, so the task fails instead of reporting "
                "an empty result (a retry re-attaches to a kept job and reads its log again)"
            )


class KubeJob:
    """One job of any kind for one task try (see the module doc).

    :param kind: the job kind.
    :param manifest: the object to create (``metadata.name`` and ``metadata.namespace`` set).
    :param selector: label selector of every try of this task (earlier tries' objects).
    :param kubernetes_conn_id: the Kubernetes connection.
    :param hook: an ``MLPlatformKubernetesHook`` (default: one for ``kubernetes_conn_id``).
    :param log: the task's logger.
    :param startup_timeout: seconds for the job to start after it was created.
    :param deadline: UNIX time when the job must be over (:func:`job_deadline`; default none).
    :param delete_policy: after a normal end, see :data:`DELETE_POLICIES`.
    :param log_prefix: put before each log line in the task log.
    """

    def __init__(
        self,
        kind: JobKind,
        manifest: dict[str, Any],
        *,
        selector: str,
        kubernetes_conn_id: str = "kubernetes_default",
        hook: Any = None,
        log: Any = None,
        startup_timeout: float | None = None,
        deadline: float | None = None,
        delete_policy: str = "always",
        log_prefix: str = "",
    ) -> None:
        if delete_policy not in DELETE_POLICIES:
            raise ConfigurationError(
                f"delete_policy {delete_policy!r} is unknown; use one of {', '.join(DELETE_POLICIES)}"
            )
        self.kind = kind
        self.manifest = manifest
        self.name = str(manifest["metadata"]["name"])
        self.namespace = str(manifest["metadata"].get("namespace") or "default")
        self.selector = selector
        self.kubernetes_conn_id = kubernetes_conn_id
        self._hook = hook
        self.log = log or logging.getLogger(__name__)
        self.startup_timeout = float(startup_timeout or DEFAULT_STARTUP_TIMEOUT)
        self.deadline = deadline if deadline is not None else time.time() + NO_LIMIT
        self.delete_policy = delete_policy
        self.feed = LogFeed(self.log, log_prefix)
        self.reattached = False
        self.log_error: str | None = None
        self.leftover: str | None = None
        # Guards the flags only, never held across a request: kill() runs from on_kill, which
        # Airflow calls from a SIGTERM handler in the main thread, possibly in the middle of the
        # create; reentrant so that such a handler never blocks on its own thread.
        self._lock = threading.RLock()
        self._created = False
        self._creating = False
        self._killed = False
        #: what the record's ``usage`` section bills (shape, created/running/finished times)
        self.facts = KubeFacts(shape=manifest_shape(kind, manifest) if manifest.get("spec") else {})

    @classmethod
    def existing(cls, kind: JobKind, *, name: str, namespace: str, **kwargs: Any) -> KubeJob:
        """A handle on an object created earlier (deferrable mode, after the trigger fired)."""
        job = cls(kind, {"metadata": {"name": name, "namespace": namespace}}, selector="", **kwargs)
        job._created = True
        return job

    @classmethod
    def from_event(cls, kind: JobKind, event: Mapping[str, Any], **kwargs: Any) -> KubeJob:
        """A handle on the object a :class:`KubeJobTrigger` event names (in ``execute_complete``).

        :param kind: the job kind.
        :param event: the trigger's event (its ``name`` and ``namespace``).
        :param kwargs: more arguments of :class:`KubeJob` (connection, log, delete policy).
        """
        return cls.existing(kind, name=str(event["name"]), namespace=str(event["namespace"]), **kwargs)

    # ---- pieces -------------------------------------------------------------------------------
    def hook(self) -> Any:
        """The sync hook (created once)."""
        if self._hook is None:
            from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

            self._hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        return self._hook

    @property
    def what(self) -> str:
        return f"{self.kind.label} {self.name} in namespace {self.namespace}"

    def remaining(self) -> float:
        """Seconds until the deadline."""
        return self.deadline - time.time()

    def _missing_crd(self, error: Exception) -> ConfigurationError:
        r = self.kind.resource
        return ConfigurationError(
            f"the cluster has no {self.kind.label} resource ({r.api_version} {r.plural}): "
            f"{self.kind.crd_hint or 'is its CustomResourceDefinition installed?'} ({error})"
        )

    # ---- 1-2: adopt, replace or create --------------------------------------------------------
    def start(self) -> tuple[dict[str, Any], bool]:
        """Adopt an earlier try's object (``earlier_try``) or create this try's; ``(object, reattached)``."""
        with self._lock:
            if self._killed:
                raise JobKilledError(f"the task was killed before its {self.kind.label} was created")
        note_kube(self.facts)
        hook = self.hook()
        resource = self.kind.resource
        try:
            listing = hook.list_objects(resource, self.namespace, label_selector=self.selector)
        except KubernetesResourceTypeNotFoundError as e:
            raise self._missing_crd(e) from e
        earlier = [
            o for o in listing.get("items") or [] if not (o.get("metadata") or {}).get("deletionTimestamp")
        ]
        if self.kind.earlier_try == "replace":
            for item in earlier:
                self.log.info("Deleting %s %s of an earlier try", self.kind.label, item["metadata"]["name"])
                with contextlib.suppress(KubernetesNotFoundError):
                    hook.delete_object(resource, self.namespace, item["metadata"]["name"])
        else:
            candidates = [
                o
                for o in earlier
                if not is_consumed(o)  # kept by delete_policy after a try read it: run again
                and self.kind.state(o) not in self.kind.failed
                and self.kind.fatal(o) is None
            ]
            if candidates:
                obj = max(candidates, key=lambda o: o["metadata"].get("creationTimestamp") or "")
                return self._adopt(obj), True
        obj = self._create()
        return obj, False

    def _adopt(self, obj: dict[str, Any]) -> dict[str, Any]:
        from airflow_mlplatform.specs import pod as podspec

        meta = obj["metadata"]
        with self._lock:
            self.name = meta["name"]
            self.namespace = meta.get("namespace") or self.namespace
            self._created = True
        self.reattached = True
        self._seen(obj, created=_created_at(obj), reattached=True)
        self._metric("mlplatform.job.reattached")
        self.log.info(
            "Re-attaching to %s %s (started by try %s) instead of starting a second one",
            self.kind.label,
            self.name,
            (meta.get("annotations") or {}).get(podspec.label_key("try_number"), "?"),
        )
        return obj

    def _create(self) -> dict[str, Any]:
        """Create the object; a kill during the request deletes it as soon as it exists."""
        from airflow_mlplatform.hooks.kubernetes import create_may_have_succeeded

        with self._lock:
            if self._killed:
                raise JobKilledError(f"the task was killed before its {self.kind.label} was created")
            self._creating = True
        maybe_created = True
        try:
            created, _adopted = self.hook().create_or_adopt(self.kind.resource, self.namespace, self.manifest)
        except KubernetesResourceTypeNotFoundError as e:
            maybe_created = False
            raise self._missing_crd(e) from e
        except KubernetesApiError as e:
            maybe_created = create_may_have_succeeded(e)
            raise
        finally:
            with self._lock:
                self._creating = False
                self._created = self._created or maybe_created
                killed = self._killed
        if killed:
            self.kill()
            raise JobKilledError(
                f"the task was killed while its {self.kind.label} {self.name} was being created; deleted it"
            )
        self.log.info("Created %s", self.what)
        self._seen(created or {}, created=usage_now())
        self._metric("mlplatform.job.started")
        return created

    # ---- 3-5: start, log, end -----------------------------------------------------------------
    def not_started_message(self, obj: Mapping[str, Any] | None, timeout: float, elapsed: float) -> str:
        """What to check when the job did not start within ``timeout`` seconds."""
        return not_started_message(self.kind, self.name, self.namespace, obj, timeout, elapsed)

    def wait_started(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Wait until the job runs (or is over, or failed for good) within ``startup_timeout``."""
        hook = self.hook()
        timeout = max(1.0, min(self.startup_timeout, self.remaining()))
        begun = time.monotonic()
        try:
            return self._seen(
                hook.wait_for_object(
                    self.kind.resource,
                    self.namespace,
                    self.name,
                    self.kind.is_started,
                    timeout=timeout,
                    resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
                    initial=obj,
                )
            )
        except KubernetesTimeoutError as e:
            if self.remaining() <= 1:
                raise self._past_deadline(e) from e
            latest = None
            with contextlib.suppress(KubernetesApiError):
                latest = hook.get_object(self.kind.resource, self.namespace, self.name)
            raise JobFailedError(self.not_started_message(latest, timeout, time.monotonic() - begun)) from e

    def _past_deadline(self, error: Exception) -> KubernetesTimeoutError:
        return KubernetesTimeoutError(f"{self.what} did not finish before the task's deadline ({error})")

    def log_pod(self, obj: Mapping[str, Any]) -> str | None:
        """The pod whose log is the job's output (None: the kind has none)."""
        return self.kind.log_pod(self.name, obj)

    def follow_log(self, obj: Mapping[str, Any], *, follow: bool = True, pod: str | None = None) -> None:
        """Stream the log pod's log into the feed until its container ends (``follow=False``: read it once).

        A log that cannot be read is noted in :attr:`log_error` (a job that succeeded then fails);
        a stream cut more often than tolerated raises (``runners.pod_log``).
        """
        from airflow_mlplatform.hooks.kubernetes import PODS
        from airflow_mlplatform.runners.pod_log import stream_pod_log_lines

        pod = pod or self.log_pod(obj)
        if pod is None:
            return
        hook = self.hook()
        if follow and (pod != self.name or self.kind is not POD):
            try:  # another object's pod (a leader, a runner): it may not run yet
                seen = hook.get_object(PODS, self.namespace, pod)
                if not POD.is_started(seen):
                    hook.wait_for_object(
                        PODS,
                        self.namespace,
                        pod,
                        POD.is_started,
                        timeout=max(1.0, min(self.startup_timeout, self.remaining())),
                        resource_version=(seen.get("metadata") or {}).get("resourceVersion"),
                        initial=seen,
                    )
            except KubernetesNotFoundError as e:
                self.log_error = f"its log pod {pod} does not exist (any more): {e}"
                self.log.warning("The log pod %s of %s is gone; its output cannot be read", pod, self.what)
                return
        if follow:
            self.log.info("Streaming the log of pod %s", pod)
        try:
            found = stream_pod_log_lines(
                hook,
                pod,
                self.namespace,
                container=self.kind.log_container or "",
                on_line=self.feed.line,
                log=self.log,
                follow=follow,
                deadline=self.deadline,
            )
        except KubernetesTimeoutError as e:
            raise self._past_deadline(e) from e
        if not found:
            self.log_error = self._unreadable(pod)

    def _unreadable(self, pod: str) -> str:
        """Why a log answered 404: the pod is gone, or only its log is (said apart by one GET)."""
        from airflow_mlplatform.hooks.kubernetes import PODS

        try:
            self.hook().get_object(PODS, self.namespace, pod)
        except KubernetesNotFoundError:
            return f"its log pod {pod} was deleted before its log was read"
        except KubernetesApiError as e:
            return f"the log of pod {pod} could not be read ({e})"
        return f"the log of pod {pod} could not be read although the pod exists (HTTP 404 on its log)"

    def wait_done(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Wait until the job is over (or failed for good), until the deadline."""
        if self.kind.is_done(obj):
            return self._seen(obj)
        try:
            return self._seen(
                self.hook().wait_for_object(
                    self.kind.resource,
                    self.namespace,
                    self.name,
                    self.kind.is_done,
                    timeout=max(1.0, self.remaining()),
                    resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
                    initial=obj,
                )
            )
        except KubernetesTimeoutError as e:
            raise self._past_deadline(e) from e

    def result(self, obj: Mapping[str, Any]) -> JobResult:
        """The :class:`JobResult` of an object that is over."""
        kind = self.kind
        fatal = kind.fatal(obj)
        return JobResult(
            kind=kind.label,
            name=self.name,
            namespace=self.namespace,
            state="Failed" if fatal and kind is POD else kind.state(obj),
            succeeded=kind.is_succeeded(obj),
            exit_code=kind.exit_code(obj),
            message=fatal or kind.message(obj),
            outputs=self.feed.parser.close(),
            reattached=self.reattached,
            log_pod=self.log_pod(obj),
            log_tail=list(self.feed.tail),
            log_error=self.log_error,
            fatal=fatal is not None,
        )

    def run(self) -> JobResult:
        """The whole job in this process; the object is deleted on any error or kill."""
        obj, _ = self.start()
        try:
            obj = self.wait_started(obj)
            if self.kind.fatal(obj) is None:
                self.follow_log(obj)
            obj = self.wait_done(obj)
            result = self.result(obj)
        except BaseException as e:  # AirflowTaskTimeout is a BaseException
            self.abort(e)
            raise
        self.cleanup(result, consumed=result.log_error is None)
        return result

    def abort(self, error: BaseException) -> None:
        """The job did not end normally: delete it now; if that fails, raise an error naming it."""
        if isinstance(error, JobKilledError):
            return
        self.log.warning(
            "Deleting %s: the task did not finish normally (%s)", self.what, type(error).__name__
        )
        self.kill(reason="timeout" if isinstance(error, KubernetesTimeoutError) else "error")
        if self.leftover and not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise KubernetesCleanupError(f"{error}; and then {self.leftover}") from error

    # ---- 6: delete ----------------------------------------------------------------------------
    def cleanup(self, result: JobResult, *, consumed: bool = True) -> None:
        """After a normal end: delete per ``delete_policy`` (always when it never ran), else mark it consumed.

        :param result: how the job ended.
        :param consumed: its results were read (False: a retry may adopt the kept object).
        """
        policy = self.delete_policy
        if (
            result.fatal
            or policy == "always"
            or (policy == "on_success" and result.succeeded)
            or (policy == "on_failure" and not result.succeeded)
        ):
            self.delete()
            return
        self.log.info("Keeping %s (delete_policy=%s)", self.what, policy)
        if consumed:
            with contextlib.suppress(KubernetesNotFoundError):  # deleted meanwhile: nothing to adopt
                self.hook().patch_object(
                    self.kind.resource,
                    self.namespace,
                    self.name,
                    {"metadata": {"annotations": {CONSUMED_ANNOTATION: "true"}}},
                )

    def delete(self) -> bool:
        """Delete the object (404 is success); False if there was none."""
        with self._lock:
            created = self._created or self._creating
        if not created:
            return False
        found = bool(self.hook().delete_object(self.kind.resource, self.namespace, self.name))
        if found:
            self.log.info("Deleted %s", self.what)
        return found

    def kill(self, reason: str = "killed") -> None:
        """Delete the object now (``on_kill``, timeouts, errors); safe from another thread and from
        a signal handler that interrupted the create (deleted by name now, and again by the create
        as soon as it returns). A failed delete is logged and kept in :attr:`leftover`.

        :param reason: why (``killed``, ``timeout``, ``error``), for the metric
            ``mlplatform.job.deleted_on_stop``.
        """
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

        with self._lock:
            self._killed = True
            created = self._created or self._creating
            name, namespace = self.name, self.namespace
        if not created:
            return
        try:
            # A hook of its own: the running wait may hold the other one's connection.
            hook = MLPlatformKubernetesHook(
                kubernetes_conn_id=self.kubernetes_conn_id,
                retry_policy=getattr(self._hook, "retry_policy", None),
            )
            done = stop_object(hook, self.kind, namespace, name)
            if done == "restored":
                self.log.info("Stopped %s: restored what it was before", self.what)
            if done == "deleted":
                self.log.info("Deleted %s", self.what)
                self.facts.deleted = True
                from airflow_mlplatform import metrics

                metrics.incr(
                    "mlplatform.job.deleted_on_stop", tags={"kind": self.kind.label, "reason": reason}
                )
            self.leftover = None
        except Exception as e:
            self.leftover = (
                f"{self.what} could not be deleted ({e}): it may still be running. Delete it by hand: "
                f"kubectl delete -n {namespace} {self.kind.resource.plural}/{name}"
            )
            self.log.error("%s", self.leftover)

    # ---- usage and metrics --------------------------------------------------------------------
    def _seen(
        self, obj: dict[str, Any], *, created: float | None = None, reattached: bool = False
    ) -> dict[str, Any]:
        """Note when the object was created, first seen running and first seen over; returns ``obj``."""
        facts = self.facts
        if created is not None and facts.created is None:
            facts.created = created
        facts.reattached = facts.reattached or reattached
        now = usage_now()
        if facts.running is None and self.kind.state(obj) in self.kind.started:
            facts.running = now
        if facts.finished is None and self.kind.state(obj) in self.kind.final:
            facts.finished = now
        return obj

    def _metric(self, name: str) -> None:
        from airflow_mlplatform import metrics

        metrics.incr(
            name, tags={"kind": self.kind.label, "tenant": tenant_of(self.facts.shape.get("labels") or {})}
        )

    # ---- deferrable ---------------------------------------------------------------------------
    def trigger(self, obj: Mapping[str, Any]) -> Any:
        """The :class:`~airflow_mlplatform.triggers.kubernetes.KubeJobTrigger` that waits for ``obj``."""
        from airflow_mlplatform.triggers.kubernetes import KubeJobTrigger

        if self.kind.is_started(obj):
            self._seen(dict(obj))
        return KubeJobTrigger(
            kind=self.kind.ref,
            name=self.name,
            namespace=self.namespace,
            kubernetes_conn_id=self.kubernetes_conn_id,
            resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
            state=self.kind.state(obj),
            startup_timeout=self.startup_timeout,
            deadline=self.deadline,
            log_pod=self.log_pod(obj),
            usage=self.facts.as_event(),
        )

    def defer(
        self,
        operator: Any,
        *,
        method_name: str = "execute_complete",
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Adopt or create the object, then defer ``operator`` to the trigger (raises TaskDeferred).

        :param operator: the operator being executed (its ``defer`` is called).
        :param method_name: the operator method the task resumes in.
        :param kwargs: more keyword arguments of that method (``reattached`` is added).
        """
        obj, reattached = self.start()
        self.log.info("Deferring: the triggerer waits for %s", self.what)
        operator.defer(
            trigger=self.trigger(obj),
            method_name=method_name,
            kwargs={**(kwargs or {}), "reattached": reattached},
        )

    def complete(self, event: Mapping[str, Any], *, reattached: bool = False) -> JobResult:
        """After the trigger fired: read the whole log once, parse it, delete per policy.

        :param event: the trigger's event payload.
        :param reattached: whether the object was adopted from an earlier try.
        """
        with self._lock:
            self.name, self.namespace = str(event["name"]), str(event["namespace"])
            self._created = True
        self.reattached = reattached
        if event.get("usage"):
            self.facts = KubeFacts.from_event(event["usage"])
        self.facts.reattached = self.facts.reattached or reattached
        note_kube(self.facts)
        status = event.get("status")
        if status != "done":
            self.kill(reason=str(status or "error"))
            message = str(event.get("message") or status)
            if self.leftover:
                message += f"; and then {self.leftover}"
            if status == "timeout":
                raise KubernetesTimeoutError(f"{self.what}: {message}")
            raise JobFailedError(f"{self.what}: {message}")
        obj: dict[str, Any] = {"metadata": {"name": self.name, "namespace": self.namespace}}
        result = JobResult(
            kind=self.kind.label,
            name=self.name,
            namespace=self.namespace,
            state=event.get("state"),
            succeeded=bool(event.get("succeeded")),
            exit_code=event.get("exit_code"),
            message=str(event.get("message") or ""),
            reattached=reattached,
            log_pod=event.get("log_pod") or self.log_pod(obj),
            fatal=bool(event.get("fatal")),
        )
        try:
            if result.log_pod is not None and not result.fatal:
                self.follow_log(obj, follow=False, pod=result.log_pod)
        except BaseException:
            # The log could not be read (403, cut for good, ...): still delete per policy, and
            # leave a kept object unconsumed so that a retry can adopt it and read it again.
            self.log.warning("Reading the log of %s failed; cleaning up per delete_policy", self.what)
            try:
                self.cleanup(result, consumed=False)
            except Exception:
                self.log.exception("Could not clean up %s; delete it by hand", self.what)
            raise
        result.outputs = self.feed.parser.close()
        result.log_tail = list(self.feed.tail)
        result.log_error = self.log_error
        self.cleanup(result, consumed=result.log_error is None)
        return result


def run_job_recorded(
    operator: Any,
    context: Mapping[str, Any],
    job: KubeJob,
    *,
    where: Mapping[str, Any],
    parameters: Mapping[str, Any],
    code: Mapping[str, Any],
    environment: Mapping[str, Any],
    defer_kwargs: Mapping[str, Any] | None = None,
    event: Mapping[str, Any] | None = None,
    reattached: bool = False,
) -> dict[str, Any]:
    """The record step of every custom-resource job: defer, or wait and record through ``run_recorded``.

    Without ``event``: a deferrable ``operator`` defers to the trigger (:meth:`KubeJob.defer`,
    raises TaskDeferred; ``defer_kwargs`` go to its ``execute_complete``), else the job is run here
    (:meth:`KubeJob.run`). With ``event`` (in ``execute_complete``) the job is read after the
    trigger fired (:meth:`KubeJob.complete`). Either way :func:`airflow_mlplatform.jobs.run_recorded`
    records it: a job that did not succeed fails the task with its record stored (``failed`` or
    ``killed``, the values its log reported so far). The record's ``where`` is ``where`` plus what
    every kind has: ``namespace``, the object's name under the kind's lower-case name (``tfjob``,
    ``daskjob``, ``sparkapplication``), ``reattached`` and ``deferred``.

    :param operator: the operator (its ``deferrable``, its ``defer`` for the trigger).
    :param context: the task's Airflow context.
    :param job: the job (built by the operator, or :meth:`KubeJob.from_event` after a deferral).
    :param where: what the operator adds to the record's ``where`` (backend, replicas...).
    :param parameters: the parameters the job received.
    :param code: what ran (application, command...).
    :param environment: facts known before running (image, profile).
    :param defer_kwargs: more keyword arguments of ``execute_complete`` when the operator defers.
    :param event: the trigger's event (deferrable mode, in ``execute_complete``); None: run or defer.
    :param reattached: with ``event``: whether the object was adopted from an earlier try.
    """
    from airflow_mlplatform import storage
    from airflow_mlplatform.jobs import JobRun, run_recorded

    deferred = bool(getattr(operator, "deferrable", False))
    if event is None and deferred:
        job.defer(operator, method_name="execute_complete", kwargs=defer_kwargs)

    def ran_on() -> dict[str, Any]:
        return {
            **where,
            "namespace": job.namespace,
            job.kind.label.lower(): job.name,
            "reattached": job.reattached,
            "deferred": deferred,
        }

    def run() -> JobRun:
        result = job.run() if event is None else job.complete(event, reattached=reattached)
        result.raise_for_status()
        job.log.info("%s succeeded", job.what)
        return JobRun(outputs=result.outputs, ran_on=ran_on())

    return run_recorded(
        context,
        job=run,
        folder=storage.OutputFolder(storage.task_output_location(context)),
        parameters=parameters,
        code=code,
        environment=environment,
        outputs={},
        in_worker=False,
        ran_on=ran_on,
        partial=lambda: job.feed.parser.close(),
    )


#: What :func:`stop_object` did: deleted the object, restored its previous state (a kind's
#: :attr:`~airflow_mlplatform.specs.kinds.JobKind.stop` patch), kept it (nothing to stop), or
#: found it gone.
STOP_OUTCOMES = ("deleted", "restored", "kept", "gone")


def stop_object(hook: Any, kind: JobKind, namespace: str, name: str) -> str:
    """Stop a job's object the way its kind says (:attr:`JobKind.stop`): delete it (jobs), or
    merge-patch it back to what it was (a rollout); one of :data:`STOP_OUTCOMES`.

    The triggerer's twin is :meth:`airflow_mlplatform.triggers.kubernetes.KubeJobTrigger._stop`
    (the same rule on the async hook).

    :param hook: the sync Kubernetes hook.
    :param kind: the job kind.
    :param namespace: the object's namespace.
    :param name: its name.
    """
    from airflow_mlplatform.specs.kinds import stop_action

    if kind.stop is not None:
        try:
            obj = hook.get_object(kind.resource, namespace, name)
        except KubernetesNotFoundError:
            return "gone"
        action, patch = stop_action(kind, obj)
        if action == "patch":
            hook.patch_object(kind.resource, namespace, name, patch)
            return "restored"
        if action == "keep":
            return "kept"
    return "deleted" if hook.delete_object(kind.resource, namespace, name, grace_period_seconds=0) else "gone"


def usage_now() -> float:
    """UNIX time, the clock of :class:`~airflow_mlplatform.usage.KubeFacts`."""
    return time.time()


def _created_at(obj: Mapping[str, Any]) -> float:
    """The object's creationTimestamp (UNIX time), else now."""
    stamp = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    return stamp if stamp is not None else usage_now()
