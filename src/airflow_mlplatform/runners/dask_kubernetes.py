"""An ephemeral Dask cluster per task on Kubernetes, through the Dask Kubernetes operator's DaskCluster.

1. create the DaskCluster (a cluster without the CRD: a clear error that the Dask Kubernetes
   operator is not installed);
2. wait, through a watch, for ``status.phase`` Running;
3. read the scheduler Service ``{name}-scheduler``: the address is its cluster IP (else its DNS
   name) and the port named ``tcp-comm``; the Airflow worker must be able to reach it (it runs
   in the cluster, or the service is routable);
4. :meth:`KubeDaskCluster.close` deletes the DaskCluster (the operator removes its pods and
   service). Safe to call twice and from another thread (``on_kill``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    KubernetesApiError,
    KubernetesNotFoundError,
    KubernetesResourceTypeNotFoundError,
)
from airflow_mlplatform.specs import daskjob

DEFAULT_STARTUP_TIMEOUT = 600.0


def _resources() -> tuple[Any, Any]:
    from airflow_mlplatform.hooks.kubernetes import Resource

    return (
        Resource(daskjob.GROUP, daskjob.VERSION, "daskclusters", "DaskCluster"),
        Resource("", "v1", "services", "Service"),
    )


def cluster_name(identity: Mapping[str, Any]) -> str:
    """A short DNS-1035 name, one per task try (``{name}-scheduler`` names the scheduler's service).

    :param identity: dag_id, task_id, run_id, map_index, try_number.
    """
    raw = "|".join(str(identity.get(k)) for k in ("dag_id", "task_id", "run_id", "map_index", "try_number"))
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", str(identity.get("task_id", "job")).lower()).strip("-")[:20].strip("-")
    return f"dask-{slug}-{digest}" if slug else f"dask-{digest}"


def scheduler_address(service: dict[str, Any]) -> str:
    """``tcp://IP:PORT`` of a scheduler Service (its cluster IP, else its DNS name; port ``tcp-comm``).

    :param service: the Service object.
    """
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    port = next(
        (p.get("port") for p in spec.get("ports") or [] if p.get("name") == "tcp-comm"),
        daskjob.SCHEDULER_PORT,
    )
    host = spec.get("clusterIP")
    if not host or host == "None":
        host = f"{meta.get('name')}.{meta.get('namespace') or 'default'}.svc"
    return f"tcp://{host}:{port}"


class KubeDaskCluster:
    """One DaskCluster created for one task try.

    :param hook: an ``MLPlatformKubernetesHook``.
    :param manifest: from :func:`airflow_mlplatform.specs.daskjob.build_daskcluster`.
    :param selector: label selector of every try of this task: clusters left by an earlier try
        (a worker that died) are deleted first.
    :param startup_timeout: seconds for the cluster to run.
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: Any,
        manifest: dict[str, Any],
        *,
        selector: str | None = None,
        startup_timeout: float | None = None,
        log: Any = None,
    ):
        self.hook = hook
        self.manifest = manifest
        self.name = manifest["metadata"]["name"]
        self.namespace = manifest["metadata"]["namespace"]
        self.selector = selector
        self.startup_timeout = startup_timeout or DEFAULT_STARTUP_TIMEOUT
        self.log = log
        self.n_workers = int(manifest["spec"]["worker"]["replicas"])
        self.gpu = daskjob.is_gpu_pod(
            {"resources": manifest["spec"]["worker"]["spec"]["containers"][0].get("resources") or {}}
        )
        self._clusters, self._services = _resources()
        # Guards the flags only, never held across a request: close() runs from on_kill, which
        # Airflow calls from a SIGTERM handler in the main thread, possibly in the middle of the
        # create; reentrant so that such a handler never blocks on its own thread.
        self._lock = threading.RLock()
        self._created = False
        self._creating = False
        self._closed = False

    def start(self) -> str:
        """Create the DaskCluster, wait until it runs, return the scheduler's address."""
        with self._lock:
            if self._closed:
                raise ConfigurationError("the task was killed before its Dask cluster was created")
            self._creating = True
        from airflow_mlplatform.hooks.kubernetes import create_may_have_succeeded

        maybe_created = True
        try:
            self._delete_leftovers()
            created, _adopted = self.hook.create_or_adopt(self._clusters, self.namespace, self.manifest)
        except KubernetesResourceTypeNotFoundError as e:
            maybe_created = False
            raise ConfigurationError(
                "the cluster has no DaskCluster resource (kubernetes.dask.org/v1 daskclusters): the Dask "
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
            raise ConfigurationError(
                f"the task was killed while its DaskCluster {self.name} was being created; deleted it"
            )
        if self.log is not None:
            self.log.info(
                "Created DaskCluster %s in namespace %s; waiting for it to run", self.name, self.namespace
            )
        self.hook.wait_for_object(
            self._clusters,
            self.namespace,
            self.name,
            lambda o: (o.get("status") or {}).get("phase") == "Running",
            timeout=self.startup_timeout,
            resource_version=(created.get("metadata") or {}).get("resourceVersion"),
            initial=created,
        )
        service = self.hook.get_object(self._services, self.namespace, f"{self.name}-scheduler")
        return scheduler_address(service)

    def _delete_leftovers(self) -> None:
        if not self.selector:
            return
        listing = self.hook.list_objects(self._clusters, self.namespace, label_selector=self.selector)
        for item in listing.get("items") or []:
            name = item["metadata"]["name"]
            if self.log is not None:
                self.log.info("Deleting DaskCluster %s left by an earlier try of this task", name)
            with suppress(KubernetesNotFoundError):
                self.hook.delete_object(self._clusters, self.namespace, name)

    def close(self) -> None:
        """Delete the DaskCluster (404 is success). Never blocks on a request in flight: called
        during the create (a signal handler), it deletes by name now and the create deletes
        again as soon as it returns."""
        with self._lock:
            self._closed = True
            created = self._created or self._creating
            self._created = False
        if created:
            with suppress(KubernetesNotFoundError):
                self.hook.delete_object(self._clusters, self.namespace, self.name)
            if self.log is not None:
                self.log.info("Deleted DaskCluster %s", self.name)
