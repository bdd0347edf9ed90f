"""Run a TFJob on Kubernetes through the Kubeflow training operator (TFJobOperator, backend ``kubeflow``).

Lifecycle of one task try, in the worker (synchronous):
1. re-attach: a TFJob of the same dag/task/run/map_index that is still running is adopted
   instead of creating a second one (a restarted worker); a finished one is deleted;
2. create the TFJob (a cluster without the TFJob CRD: a clear error that the Kubeflow training
   operator is not installed);
3. wait, through a watch, until the job runs; stream the leader pod's log (the Chief's, else
   Worker 0's: ``{job}-{type}-{index}``) into a callback (task log and value parser);
4. wait, through a watch, for the ``Succeeded`` or ``Failed`` condition;
5. delete the job on failure, kill and timeout, and on success unless it is to be kept.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    JobFailedError,
    KubernetesApiError,
    KubernetesNotFoundError,
    KubernetesResourceTypeNotFoundError,
    KubernetesTimeoutError,
)

FINAL = ("Succeeded", "Failed")
STARTED = ("Running", "Restarting", *FINAL)
#: Default deadline of a wait when neither job_timeout nor activeDeadlineSeconds is given.
DEFAULT_TIMEOUT = 7 * 24 * 3600.0
#: Default seconds for a TFJob to run (its Running condition) after it was created.
DEFAULT_STARTUP_TIMEOUT = 600.0
TAIL_LINES = 40


def tfjobs_resource() -> Any:
    """The hook's Resource for ``kubeflow.org/v1`` tfjobs."""
    from airflow_mlplatform.hooks.kubernetes import Resource
    from airflow_mlplatform.specs import tfjob

    return Resource(tfjob.GROUP, tfjob.VERSION, tfjob.PLURAL, tfjob.KIND)


def tfjob_name(identity: Mapping[str, Any]) -> str:
    """A short DNS-1035 name, one per task try (pods and services are named ``{name}-worker-0``).

    :param identity: dag_id, task_id, run_id, map_index, try_number.
    """
    raw = "|".join(str(identity.get(k)) for k in ("dag_id", "task_id", "run_id", "map_index", "try_number"))
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", str(identity.get("task_id", "job")).lower()).strip("-")[:20].strip("-")
    return f"tfjob-{slug}-{digest}" if slug else f"tfjob-{digest}"


def not_started_message(name: str, namespace: str, timeout: float, state: str | None) -> str:
    """What to check when a TFJob did not run within its start-up timeout.

    :param name: the TFJob.
    :param namespace: its namespace.
    :param timeout: the start-up timeout in seconds.
    :param state: its latest condition (None: no controller has touched it).
    """
    if state is None:
        what = (
            "it has no condition at all, so no controller picked it up: is the Kubeflow training operator "
            "(training-operator v1.x) installed and running, and does it watch this namespace?"
        )
    else:
        what = (
            f"its condition is {state!r}: its replica pods did not run; check them "
            f"(kubectl describe pods -n {namespace} -l training.kubeflow.org/job-name={name}): an image "
            "that cannot be pulled, pods that cannot be scheduled (GPUs, node selector, tolerations, "
            "quota), a missing secret or volume"
        )
    return f"TFJob {name} in namespace {namespace} did not start within {timeout:.0f} s (startup_timeout): {what}"


def condition(obj: Mapping[str, Any]) -> tuple[str | None, str]:
    """The job's latest true condition type (Created, Running, Restarting, Succeeded, Failed...) and message.

    :param obj: the TFJob.
    """
    conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
    for wanted in ("Failed", "Succeeded"):
        for c in conditions:
            if c.get("type") == wanted:
                return wanted, str(c.get("message") or c.get("reason") or "")
    if conditions:
        last = conditions[-1]
        return last.get("type"), str(last.get("message") or "")
    return None, ""


class KubeflowTFJob:
    """One TFJob through the Kubernetes hook.

    :param hook: an ``MLPlatformKubernetesHook``.
    :param manifest: from :func:`airflow_mlplatform.specs.tfjob.build_tfjob`.
    :param selector: label selector of every try of this task (re-attach).
    :param leader: ``(replica type, index)`` whose log is streamed.
    :param on_leader_line: called with each line of the leader's log.
    :param timeout: seconds to wait for the job in all.
    :param startup_timeout: seconds for the job to run after it was created (default 600): an image
        that cannot be pulled, unschedulable pods or no training operator fail the task then.
    :param delete_on_success: delete the TFJob when it succeeded (else keep it; TTL applies).
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: Any,
        manifest: dict[str, Any],
        *,
        selector: str,
        leader: tuple[str, int],
        on_leader_line: Callable[[str], Any] | None = None,
        timeout: float | None = None,
        startup_timeout: float | None = None,
        delete_on_success: bool = True,
        log: Any = None,
    ) -> None:
        self.hook = hook
        self.manifest = manifest
        self.namespace = manifest["metadata"]["namespace"]
        self.name = manifest["metadata"]["name"]
        self.selector = selector
        self.leader = leader
        self.on_leader_line = on_leader_line
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.startup_timeout = min(startup_timeout or DEFAULT_STARTUP_TIMEOUT, self.timeout)
        self.delete_on_success = delete_on_success
        self.log = log
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.attached = False
        self.resource = tfjobs_resource()
        self._created = False
        # Guards the flags only, never held across a request: delete() runs from on_kill, which
        # Airflow calls from a SIGTERM handler in the main thread, possibly in the middle of a
        # create; reentrant so that such a handler never blocks on its own thread.
        self._lock = threading.RLock()
        self._creating = False
        self._killed = False

    @classmethod
    def existing(
        cls,
        hook: Any,
        *,
        name: str,
        namespace: str,
        leader: tuple[str, int],
        attached: bool = False,
        on_leader_line: Callable[[str], Any] | None = None,
        log: Any = None,
    ) -> KubeflowTFJob:
        """A handle on a TFJob created earlier (deferrable mode, after the trigger fired)."""
        job = cls(
            hook,
            {"metadata": {"name": name, "namespace": namespace}},
            selector="",
            leader=leader,
            on_leader_line=on_leader_line,
            log=log,
        )
        job.attached = attached
        job._created = True
        return job

    @property
    def leader_pod(self) -> str:
        return f"{self.name}-{self.leader[0].lower()}-{self.leader[1]}"

    def _info(self, msg: str, *args: Any) -> None:
        if self.log is not None:
            self.log.info(msg, *args)

    def create_or_attach(self) -> dict[str, Any]:
        """Adopt a running TFJob of an earlier try of this task, or create the TFJob; return it."""
        try:
            existing = self.hook.list_objects(self.resource, self.namespace, label_selector=self.selector)
        except KubernetesResourceTypeNotFoundError as e:
            raise ConfigurationError(
                f"the cluster has no TFJob resource (kubeflow.org/v1 tfjobs): the Kubeflow training "
                f"operator is not installed there (or not its TFJob CRD). Install training-operator "
                f"v1.x, or use backend='local'. ({e})"
            ) from e
        for item in existing.get("items") or []:
            state, _ = condition(item)
            name = item["metadata"]["name"]
            if state in FINAL:
                self._info("Deleting the finished TFJob %s of an earlier try", name)
                self.hook.delete_object(self.resource, self.namespace, name)
                continue
            self._info("Re-attaching to the running TFJob %s (created by an earlier try)", name)
            self.name = name
            self.attached = True
            with self._lock:
                self._created = True
            return item
        return self._create()

    def _create(self) -> dict[str, Any]:
        """Create the TFJob; a kill during the request deletes it as soon as it exists."""
        with self._lock:
            if self._killed:
                raise JobFailedError("the task was killed before its TFJob was created")
            self._creating = True
        from airflow_mlplatform.hooks.kubernetes import create_may_have_succeeded

        maybe_created = True
        try:
            created, _adopted = self.hook.create_or_adopt(self.resource, self.namespace, self.manifest)
        except KubernetesApiError as e:
            maybe_created = create_may_have_succeeded(e)
            raise
        finally:
            with self._lock:
                self._creating = False
                self._created = self._created or maybe_created
                killed = self._killed
        if killed:
            self.delete()
            raise JobFailedError(
                f"the task was killed while its TFJob {self.name} was being created; deleted it"
            )
        self._info("Created TFJob %s in namespace %s", self.name, self.namespace)
        return created

    def run(self) -> dict[str, Any]:
        """Create (or re-attach), stream the leader's log, wait for the end; return the final TFJob.

        :raises JobFailedError: the job failed (its condition message and the leader's last lines).
        """
        obj = self.create_or_attach()
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        try:
            obj = self.hook.wait_for_object(
                self.resource,
                self.namespace,
                self.name,
                lambda o: condition(o)[0] in STARTED,
                timeout=self.startup_timeout,
                resource_version=rv,
                initial=obj,
            )
        except KubernetesTimeoutError as e:
            state = None
            with suppress(KubernetesApiError):
                state = condition(self.hook.get_object(self.resource, self.namespace, self.name))[0]
            raise JobFailedError(
                not_started_message(self.name, self.namespace, self.startup_timeout, state)
            ) from e
        self._stream_leader()
        obj = self.hook.wait_for_object(
            self.resource,
            self.namespace,
            self.name,
            lambda o: condition(o)[0] in FINAL,
            timeout=self.timeout,
            initial=None,
        )
        state, message = condition(obj)
        if state == "Failed":
            raise self.failure(message)
        self._info("TFJob %s succeeded", self.name)
        return obj

    def _stream_leader(self) -> None:
        """Follow the leader's log until its container ends (a cut stream is resumed)."""
        from airflow_mlplatform.runners.pod_log import follow_pod_log

        self._info("Streaming the log of %s", self.leader_pod)
        found = follow_pod_log(
            self.hook,
            self.leader_pod,
            self.namespace,
            container="tensorflow",
            on_line=self._line,
            timeout=self.timeout,
            log=self.log,
        )
        if not found:
            # cleanPodPolicy removed the pod (a failed job), or it never started: the job's
            # condition says what happened.
            self._info("The leader pod %s is gone; waiting for the TFJob's final condition", self.leader_pod)

    def _line(self, text: str) -> None:
        self.tail.append(text)
        if self.on_leader_line is not None:
            self.on_leader_line(text)

    def read_leader_log(self) -> None:
        """Read the leader's whole log once (deferrable mode, after the job ended) into the callback."""
        try:
            for raw in self.hook.stream_pod_log(
                self.leader_pod, self.namespace, container="tensorflow", follow=False, timestamps=False
            ):
                line = raw.decode(errors="replace").rstrip("\n")
                self.tail.append(line)
                if self.on_leader_line is not None:
                    self.on_leader_line(line)
        except KubernetesNotFoundError:
            self._info(
                "The leader pod %s is gone (cleanPodPolicy All?); its recorded values cannot be read",
                self.leader_pod,
            )

    def failure(self, message: str) -> JobFailedError:
        """The error of a failed job: the condition's message and the leader's last lines."""
        tail = "\n".join(self.tail) or "(no output)"
        return JobFailedError(
            f"TFJob {self.name} in namespace {self.namespace} failed: {message or 'no message'}. "
            f"Last lines of {self.leader_pod}:\n{tail}"
        )

    def delete(self) -> None:
        """Delete the TFJob (its pods go with it). Safe to call twice, from another thread, and
        from a signal handler that interrupted the create (the TFJob is deleted by name now, and
        again by the create as soon as it returns)."""
        with self._lock:
            self._killed = True
            created = self._created or self._creating
        if created:
            with suppress(KubernetesNotFoundError):
                if self.hook.delete_object(self.resource, self.namespace, self.name):
                    self._info("Deleted TFJob %s", self.name)
