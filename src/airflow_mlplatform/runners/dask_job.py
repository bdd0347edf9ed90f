"""A script as a DaskJob on Kubernetes: a runner pod next to its own Dask cluster (Dask Kubernetes operator).

1. delete DaskJobs left by earlier tries of the task, create the DaskJob (a cluster without the
   CRD: a clear error that the Dask Kubernetes operator is not installed);
2. wait, through a watch, until ``status.jobStatus`` is Running (or already over);
3. follow the runner pod's log (``{name}-runner``, container ``job``; a cut stream is resumed)
   into a callback (task log and value parser);
4. wait, through a watch, for ``Successful`` or ``Failed``;
5. :meth:`KubeDaskJob.close` deletes the DaskJob (on success, failure, kill, timeout). Safe to
   call twice and from another thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
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
from airflow_mlplatform.runners.dask_cluster import CPU_LIBRARIES, GPU_LIBRARIES, ClusterInfo
from airflow_mlplatform.specs import daskjob

FINAL = ("Successful", "Failed")
STARTED = ("Running", *FINAL)
DEFAULT_TIMEOUT = 7 * 24 * 3600.0
#: Default seconds for a DaskJob to run (``status.jobStatus`` Running) after it was created.
DEFAULT_STARTUP_TIMEOUT = 600.0


def _job_status(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("jobStatus")


class KubeDaskJob:
    """One DaskJob for one task try.

    :param hook: an ``MLPlatformKubernetesHook``.
    :param manifest: from :func:`airflow_mlplatform.specs.daskjob.build_daskjob`.
    :param selector: label selector of every try of this task (leftovers are deleted).
    :param on_line: called with each line of the runner's log.
    :param timeout: seconds for the whole job.
    :param startup_timeout: seconds for the job to run after it was created (default 600): an image
        that cannot be pulled, unschedulable pods or no Dask operator fail the task then.
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: Any,
        manifest: dict[str, Any],
        *,
        selector: str | None = None,
        on_line: Callable[[str], Any] | None = None,
        timeout: float | None = None,
        startup_timeout: float | None = None,
        log: Any = None,
    ) -> None:
        from airflow_mlplatform.hooks.kubernetes import Resource

        self.hook = hook
        self.manifest = manifest
        self.name = manifest["metadata"]["name"]
        self.namespace = manifest["metadata"]["namespace"]
        self.selector = selector
        self.on_line = on_line
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.startup_timeout = min(startup_timeout or DEFAULT_STARTUP_TIMEOUT, self.timeout)
        self.log = log
        self.tail: deque[str] = deque(maxlen=40)
        self.resource = Resource(daskjob.GROUP, daskjob.VERSION, "daskjobs", "DaskJob")
        cluster = manifest["spec"]["cluster"]["spec"]
        gpu = daskjob.is_gpu_pod(
            {"resources": cluster["worker"]["spec"]["containers"][0].get("resources") or {}}
        )
        self.info = ClusterInfo(
            kind="DaskJob",
            address=f"tcp://{self.name}-scheduler.{self.namespace}.svc:{daskjob.SCHEDULER_PORT}",
            n_workers=int(cluster["worker"]["replicas"]),
            gpu=gpu,
            libraries=GPU_LIBRARIES if gpu else CPU_LIBRARIES,
            created=True,
        )
        # Guards the flags only, never held across a request: close() runs from on_kill, which
        # Airflow calls from a SIGTERM handler in the main thread, possibly in the middle of the
        # create; reentrant so that such a handler never blocks on its own thread.
        self._lock = threading.RLock()
        self._created = False
        self._creating = False
        self._closed = False

    @property
    def runner_pod(self) -> str:
        return f"{self.name}-runner"

    def _info(self, msg: str, *args: Any) -> None:
        if self.log is not None:
            self.log.info(msg, *args)

    def _line(self, text: str) -> None:
        self.tail.append(text)
        if self.on_line is not None:
            self.on_line(text)

    def _create(self) -> dict[str, Any]:
        with self._lock:
            if self._closed:
                raise JobFailedError("the task was killed before its DaskJob was created")
            self._creating = True
        from airflow_mlplatform.hooks.kubernetes import create_may_have_succeeded

        maybe_created = True
        try:
            if self.selector:
                for item in (
                    self.hook.list_objects(self.resource, self.namespace, label_selector=self.selector).get(
                        "items"
                    )
                    or []
                ):
                    self._info("Deleting DaskJob %s left by an earlier try", item["metadata"]["name"])
                    with suppress(KubernetesNotFoundError):
                        self.hook.delete_object(self.resource, self.namespace, item["metadata"]["name"])
            created, _adopted = self.hook.create_or_adopt(self.resource, self.namespace, self.manifest)
        except KubernetesResourceTypeNotFoundError as e:
            maybe_created = False
            raise ConfigurationError(
                "the cluster has no DaskJob resource (kubernetes.dask.org/v1 daskjobs): the Dask "
                "Kubernetes operator is not installed there. Install it (dask-kubernetes operator Helm "
                f"chart), or use cluster='local' or 'address'. ({e})"
            ) from e
        except KubernetesApiError as e:
            maybe_created = create_may_have_succeeded(e)
            raise
        finally:
            with self._lock:
                self._creating = False
                self._created = self._created or maybe_created
                closed = self._closed
        if closed:
            self.close()
            raise JobFailedError(
                f"the task was killed while its DaskJob {self.name} was being created; deleted it"
            )
        self._info("Created DaskJob %s in namespace %s", self.name, self.namespace)
        return created

    def run(self) -> None:
        """Create the DaskJob, follow its runner's log, wait for the end.

        :raises JobFailedError: the job failed (with the runner's last lines).
        """
        from airflow_mlplatform.runners.pod_log import follow_pod_log

        created = self._create()
        try:
            self.hook.wait_for_object(
                self.resource,
                self.namespace,
                self.name,
                lambda o: _job_status(o) in STARTED,
                timeout=self.startup_timeout,
                resource_version=(created.get("metadata") or {}).get("resourceVersion"),
                initial=created,
            )
        except KubernetesTimeoutError as e:
            raise JobFailedError(self._not_started()) from e
        self._info("Streaming the log of %s", self.runner_pod)
        follow_pod_log(
            self.hook,
            self.runner_pod,
            self.namespace,
            container="job",
            on_line=self._line,
            timeout=self.timeout,
            log=self.log,
        )
        obj = self.hook.wait_for_object(
            self.resource, self.namespace, self.name, lambda o: _job_status(o) in FINAL, timeout=self.timeout
        )
        if _job_status(obj) == "Failed":
            tail = "\n".join(self.tail) or "(no output)"
            raise JobFailedError(
                f"DaskJob {self.name} in namespace {self.namespace} failed; last lines of {self.runner_pod}:\n{tail}"
            )
        self._info("DaskJob %s succeeded", self.name)

    def _not_started(self) -> str:
        status = None
        with suppress(KubernetesApiError):
            status = _job_status(self.hook.get_object(self.resource, self.namespace, self.name))
        if status is None:
            what = (
                "it has no status at all, so no controller picked it up: is the Dask Kubernetes operator "
                "installed and running, and does it watch this namespace?"
            )
        else:
            what = (
                f"its jobStatus is {status!r}: its runner, scheduler or worker pods did not run; check them "
                f"(kubectl describe pods -n {self.namespace} -l dask.org/cluster-name={self.name}): an image "
                "that cannot be pulled, pods that cannot be scheduled (GPUs, node selector, tolerations, "
                "quota), a missing secret or volume"
            )
        return (
            f"DaskJob {self.name} in namespace {self.namespace} did not start within "
            f"{self.startup_timeout:.0f} s (startup_timeout): {what}"
        )

    def close(self) -> None:
        """Delete the DaskJob (its runner and cluster go with it); 404 is success. Never blocks on
        a request in flight: called during the create (a signal handler), it deletes by name now
        and the create deletes again as soon as it returns."""
        with self._lock:
            self._closed = True
            created = self._created or self._creating
            self._created = False
        if created:
            with suppress(KubernetesNotFoundError):
                self.hook.delete_object(self.resource, self.namespace, self.name)
            self._info("Deleted DaskJob %s", self.name)
