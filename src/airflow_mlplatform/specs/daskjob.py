"""Build Dask Kubernetes operator manifests (``kubernetes.dask.org/v1``): DaskCluster and DaskJob.

Pure functions: no client, no server. Tests validate every manifest against the CRD schemas
(../shared/crds/kubernetes.dask.org_daskclusters.yaml and ..._daskjobs.yaml).

A DaskCluster is an ephemeral cluster a task connects a client to (a Python callable);
a DaskJob runs a script in a runner pod next to its own cluster, which the Dask operator
deletes when the runner ends. Per-role pod fields (resources, node selector, tolerations...)
are plain dicts (see :data:`airflow_mlplatform.specs.tfjob.POD_FIELDS`), so GPU workers can come
from a compute profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlplatform.exceptions import JobDefinitionError

API_VERSION = "kubernetes.dask.org/v1"
GROUP = "kubernetes.dask.org"
VERSION = "v1"
SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788


def _env_list(env: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"name": str(k), "value": str(v)} for k, v in env.items()]


def _pod_spec(container: dict[str, Any], pod: Mapping[str, Any], *, restart_never: bool = False) -> dict:
    env = {**(pod.get("env") or {})}
    if env:
        container["env"] = [*container.get("env", []), *_env_list(env)]
    if pod.get("secrets"):
        container["envFrom"] = [{"secretRef": {"name": str(name)}} for name in pod["secrets"]]
    if pod.get("resources"):
        container["resources"] = {k: {r: str(q) for r, q in v.items()} for k, v in pod["resources"].items()}
    if pod.get("volume_mounts"):
        container["volumeMounts"] = [dict(m) for m in pod["volume_mounts"]]
    if pod.get("container_security_context"):
        container["securityContext"] = dict(pod["container_security_context"])
    if pod.get("image_pull_policy"):
        container["imagePullPolicy"] = pod["image_pull_policy"]
    spec: dict[str, Any] = {"containers": [container]}
    if restart_never:
        spec["restartPolicy"] = "Never"
    for key, target in (
        ("node_selector", "nodeSelector"),
        ("affinity", "affinity"),
        ("pod_security_context", "securityContext"),
    ):
        if pod.get(key):
            spec[target] = dict(pod[key])
    for key, target in (("tolerations", "tolerations"), ("volumes", "volumes")):
        if pod.get(key):
            spec[target] = [dict(x) for x in pod[key]]
    if pod.get("priority_class"):
        spec["priorityClassName"] = pod["priority_class"]
    if pod.get("service_account"):
        spec["serviceAccountName"] = pod["service_account"]
    return spec


def _metadata(labels: Mapping[str, str] | None, pod: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {**(pod.get("labels") or {}), **(labels or {})}}
    if pod.get("annotations"):
        meta["annotations"] = {str(k): str(v) for k, v in pod["annotations"].items()}
    return meta


def is_gpu_pod(pod: Mapping[str, Any]) -> bool:
    """Whether a role's pod fields request GPUs (any ``*/gpu`` resource).

    :param pod: pod fields with an optional ``resources`` dict.
    """
    resources = pod.get("resources") or {}
    return any(
        name.endswith("/gpu") and str(q) not in ("0", "")
        for part in resources.values()
        for name, q in part.items()
    )


def build_cluster_spec(
    *,
    name: str,
    image: str,
    n_workers: int,
    env: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    scheduler_pod: Mapping[str, Any] | None = None,
    worker_pod: Mapping[str, Any] | None = None,
    idle_timeout: int | None = None,
) -> dict[str, Any]:
    """The ``spec`` of a DaskCluster (also ``spec.cluster.spec`` of a DaskJob).

    Workers run ``dask worker``, or ``dask cuda worker`` (one worker per GPU, RAPIDS) when their
    pod fields request GPUs.

    :param name: the cluster's name (the scheduler service selects on it).
    :param image: image of scheduler and workers (a role's ``pod["image"]`` wins).
    :param n_workers: number of worker pods (>= 1).
    :param env: environment variables of scheduler and workers.
    :param labels: labels of every pod (task identity).
    :param scheduler_pod: pod fields of the scheduler.
    :param worker_pod: pod fields of the workers (GPU resources, node selector, tolerations).
    :param idle_timeout: seconds after which an idle cluster is deleted by the operator.
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise JobDefinitionError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    if not image:
        raise JobDefinitionError(
            "a Dask cluster on Kubernetes needs an image: pass a compute profile with one"
        )
    scheduler_pod = scheduler_pod or {}
    worker_pod = worker_pod or {}
    base_env = _env_list(env or {})
    scheduler: dict[str, Any] = {
        "name": "scheduler",
        "image": scheduler_pod.get("image") or image,
        "args": ["dask", "scheduler", "--host", "0.0.0.0"],
        "ports": [
            {"name": "tcp-comm", "containerPort": SCHEDULER_PORT, "protocol": "TCP"},
            {"name": "http-dashboard", "containerPort": DASHBOARD_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"port": "http-dashboard", "path": "/health"},
            "initialDelaySeconds": 0,
            "periodSeconds": 1,
            "timeoutSeconds": 300,
        },
    }
    if base_env:
        scheduler["env"] = list(base_env)
    worker_cmd = ["dask", "cuda", "worker"] if is_gpu_pod(worker_pod) else ["dask", "worker"]
    worker: dict[str, Any] = {
        "name": "worker",
        "image": worker_pod.get("image") or image,
        "args": [
            *worker_cmd,
            "--name",
            "$(DASK_WORKER_NAME)",
            "--dashboard",
            "--dashboard-address",
            str(WORKER_DASHBOARD_PORT),
        ],
        "ports": [{"name": "http-dashboard", "containerPort": WORKER_DASHBOARD_PORT, "protocol": "TCP"}],
    }
    if base_env:
        worker["env"] = list(base_env)
    spec: dict[str, Any] = {
        "scheduler": {
            "metadata": _metadata(labels, scheduler_pod),
            "spec": _pod_spec(scheduler, scheduler_pod),
            "service": {
                "type": "ClusterIP",
                "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                "ports": [
                    {"name": "tcp-comm", "protocol": "TCP", "port": SCHEDULER_PORT, "targetPort": "tcp-comm"},
                    {
                        "name": "http-dashboard",
                        "protocol": "TCP",
                        "port": DASHBOARD_PORT,
                        "targetPort": "http-dashboard",
                    },
                ],
            },
        },
        "worker": {
            "replicas": n_workers,
            "metadata": _metadata(labels, worker_pod),
            "spec": _pod_spec(worker, worker_pod),
        },
    }
    if idle_timeout is not None:
        spec["idleTimeout"] = int(idle_timeout)
    return spec


def build_daskcluster(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **cluster: Any,
) -> dict[str, Any]:
    """A DaskCluster manifest (an ephemeral cluster a task's client connects to).

    :param name: the cluster's name.
    :param namespace: its namespace.
    :param labels: labels of the object and its pods (task identity).
    :param annotations: annotations of the object.
    :param cluster: arguments of :func:`build_cluster_spec` (image, n_workers, pods...).
    """
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskCluster",
        "metadata": metadata,
        "spec": build_cluster_spec(name=name, labels=labels, **cluster),
    }


def build_daskjob(
    *,
    name: str,
    namespace: str,
    image: str,
    command: Sequence[str],
    n_workers: int,
    env: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    runner_pod: Mapping[str, Any] | None = None,
    scheduler_pod: Mapping[str, Any] | None = None,
    worker_pod: Mapping[str, Any] | None = None,
    working_dir: str | None = None,
) -> dict[str, Any]:
    """A DaskJob manifest: a runner pod running ``command`` against its own Dask cluster.

    The Dask operator sets ``DASK_SCHEDULER_ADDRESS`` in the runner (pod ``{name}-runner``) and
    deletes the cluster when the runner ends.

    :param name: the DaskJob's name.
    :param namespace: its namespace.
    :param image: image of runner, scheduler and workers.
    :param command: the runner's command (e.g. ``["python", "/code/job.py"]``).
    :param n_workers: number of worker pods.
    :param env: environment variables of every pod.
    :param labels: labels of the object and its pods (task identity).
    :param annotations: annotations of the object.
    :param runner_pod: pod fields of the runner.
    :param scheduler_pod: pod fields of the scheduler.
    :param worker_pod: pod fields of the workers (GPU workers from a compute profile).
    :param working_dir: the runner's working directory.
    """
    if not command:
        raise JobDefinitionError("a DaskJob needs a command, e.g. ['python', '/code/job.py']")
    runner_pod = runner_pod or {}
    job: dict[str, Any] = {
        "name": "job",
        "image": runner_pod.get("image") or image,
        "args": [str(c) for c in command],
    }
    if env:
        job["env"] = _env_list(env)
    if working_dir:
        job["workingDir"] = working_dir
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskJob",
        "metadata": metadata,
        "spec": {
            "job": {
                "metadata": _metadata(labels, runner_pod),
                "spec": _pod_spec(job, runner_pod, restart_never=True),
            },
            "cluster": {
                "spec": build_cluster_spec(
                    name=name,
                    image=image,
                    n_workers=n_workers,
                    env=env,
                    labels=labels,
                    scheduler_pod=scheduler_pod,
                    worker_pod=worker_pod,
                ),
            },
        },
    }
