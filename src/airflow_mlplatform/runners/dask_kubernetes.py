"""An ephemeral Dask cluster per task on Kubernetes: the DaskCluster kind of the one job lifecycle.

1. adopt the running DaskCluster of an earlier try of the task, or create this try's (a cluster
   without the CRD: a clear error that the Dask Kubernetes operator is not installed; a kill
   during the create deletes it): :class:`~airflow_mlplatform.runners.kube_job.KubeJob`;
2. wait, through a watch, for ``status.phase`` Running (``startup_timeout``, saying what to check);
3. read the scheduler Service ``{name}-scheduler``: the address is its cluster IP (else its DNS
   name) and the port named ``tcp-comm``; the Airflow worker must be able to reach it (it runs
   in the cluster, or the service is routable);
4. :meth:`KubeDaskCluster.close` deletes the DaskCluster (the operator removes its pods and
   service). Safe to call twice, from another thread (``on_kill``) and during the create.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_mlplatform.specs import daskjob
from airflow_mlplatform.specs.kinds import object_name


def cluster_name(identity: Mapping[str, Any]) -> str:
    """A short DNS-1035 name, one per task try (``{name}-scheduler`` names the scheduler's service).

    :param identity: dag_id, task_id, run_id, map_index, try_number.
    """
    return object_name(daskjob.DASKCLUSTER_KIND, identity)


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
    """One DaskCluster for one task try (the lifecycle's DaskCluster kind).

    :param hook: an ``MLPlatformKubernetesHook``.
    :param manifest: from :func:`airflow_mlplatform.specs.daskjob.build_daskcluster`.
    :param selector: label selector of every try of this task: a running cluster of an earlier
        try (a worker that died) is adopted instead of starting a second one.
    :param startup_timeout: seconds for the cluster to run.
    :param kubernetes_conn_id: the Kubernetes connection (for the kill's own hook).
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: Any,
        manifest: dict[str, Any],
        *,
        selector: str = "",
        startup_timeout: float | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        log: Any = None,
    ):
        from airflow_mlplatform.runners.kube_job import KubeJob

        self.job = KubeJob(
            daskjob.DASKCLUSTER_KIND,
            manifest,
            selector=selector,
            kubernetes_conn_id=kubernetes_conn_id,
            hook=hook,
            log=log,
            startup_timeout=startup_timeout,
        )
        self.hook = hook
        self.n_workers = int(manifest["spec"]["worker"]["replicas"])
        self.gpu = daskjob.is_gpu_pod(
            {"resources": manifest["spec"]["worker"]["spec"]["containers"][0].get("resources") or {}}
        )

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def reattached(self) -> bool:
        return self.job.reattached

    def start(self) -> str:
        """Adopt or create the DaskCluster, wait until it runs, return the scheduler's address."""
        from airflow_mlplatform.hooks.kubernetes import Resource

        obj, _ = self.job.start()
        self.job.log.info("Waiting for DaskCluster %s to run", self.job.name)
        self.job.wait_started(obj)
        services = Resource("", "v1", "services", "Service")
        service = self.hook.get_object(services, self.job.namespace, f"{self.job.name}-scheduler")
        return scheduler_address(service)

    def close(self) -> None:
        """Delete the DaskCluster (404 is success); never blocks on a request in flight."""
        self.job.kill()
