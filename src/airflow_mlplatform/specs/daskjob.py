"""Build Dask Kubernetes operator manifests (``kubernetes.dask.org/v1``): DaskCluster and DaskJob.

Pure functions: no client, no server. Tests validate every manifest against the CRD schemas
(tests/data/crds/kubernetes.dask.org_daskclusters.yaml and ..._daskjobs.yaml).

A DaskCluster is an ephemeral cluster a task connects a client to (a Python callable);
a DaskJob runs a script in a runner pod next to its own cluster, which the Dask operator
deletes when the runner ends. Per-role pod fields (resources, node selector, tolerations...)
are plain dicts (see :data:`airflow_mlplatform.specs.pod_template.POD_FIELDS`), so GPU workers can
come from a compute profile; every pod is built by the one pod template (environment rule and
security defaults included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlplatform.exceptions import JobDefinitionError
from airflow_mlplatform.hooks.kubernetes import Resource
from airflow_mlplatform.specs import pod_template
from airflow_mlplatform.specs.kinds import JobKind

API_VERSION = "kubernetes.dask.org/v1"
GROUP = "kubernetes.dask.org"
VERSION = "v1"
SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788
#: The runner pod's container (the Dask operator runs the job's command there).
RUNNER_CONTAINER = "job"


def _role(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    labels: Mapping[str, str] | None,
    env: Mapping[str, Any] | None,
    provider_env: Mapping[str, Any] | None,
    image: str,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    """One role's pod template (runner, scheduler or workers): ``{"metadata", "spec"}``."""
    extra = {k: v for k, v in container.items() if k not in ("name", "args", "workingDir")}
    built = pod_template.build_container(
        pod,
        name=str(container["name"]),
        image=image,
        args=container.get("args"),
        env=env,
        provider_env=provider_env,
        working_dir=container.get("workingDir"),
        extra=extra,
    )
    return pod_template.build_pod_template(pod, [built], labels=labels, restart_policy=restart_policy)


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
    provider_env: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``spec`` of a DaskCluster (also ``spec.cluster.spec`` of a DaskJob).

    Workers run ``dask worker``, or ``dask cuda worker`` (one worker per GPU, RAPIDS) when their
    pod fields request GPUs.

    :param name: the cluster's name (the scheduler service selects on it).
    :param image: image of scheduler and workers (a role's ``pod["image"]`` wins).
    :param n_workers: number of worker pods (>= 1).
    :param env: the task's environment variables of scheduler and workers (win over profile env).
    :param labels: labels of every pod (task identity).
    :param scheduler_pod: pod fields of the scheduler.
    :param worker_pod: pod fields of the workers (GPU resources, node selector, tolerations).
    :param idle_timeout: seconds after which an idle cluster is deleted by the operator.
    :param provider_env: the provider's own variables (``MLPLATFORM_*``), win over both.
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise JobDefinitionError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    if not image:
        raise JobDefinitionError(
            "a Dask cluster on Kubernetes needs an image: pass a compute profile with one"
        )
    scheduler_pod = scheduler_pod or {}
    worker_pod = worker_pod or {}
    scheduler: dict[str, Any] = {
        "name": "scheduler",
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
    worker_cmd = ["dask", "cuda", "worker"] if is_gpu_pod(worker_pod) else ["dask", "worker"]
    worker: dict[str, Any] = {
        "name": "worker",
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
    role: dict[str, Any] = {"labels": labels, "env": env, "provider_env": provider_env, "image": image}
    spec: dict[str, Any] = {
        "scheduler": {
            **_role(scheduler_pod, scheduler, **role),
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
            **_role(worker_pod, worker, **role),
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
    provider_env: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A DaskJob manifest: a runner pod running ``command`` against its own Dask cluster.

    The Dask operator sets ``DASK_SCHEDULER_ADDRESS`` in the runner (pod ``{name}-runner``) and
    deletes the cluster when the runner ends.

    :param name: the DaskJob's name.
    :param namespace: its namespace.
    :param image: image of runner, scheduler and workers.
    :param command: the runner's command (e.g. ``["python", "/code/job.py"]``).
    :param n_workers: number of worker pods.
    :param env: the task's environment variables of every pod (win over profile env).
    :param labels: labels of the object and its pods (task identity).
    :param annotations: annotations of the object.
    :param runner_pod: pod fields of the runner.
    :param scheduler_pod: pod fields of the scheduler.
    :param worker_pod: pod fields of the workers (GPU workers from a compute profile).
    :param working_dir: the runner's working directory.
    :param provider_env: the provider's own variables (``MLPLATFORM_*``), win over both.
    """
    if not command:
        raise JobDefinitionError("a DaskJob needs a command, e.g. ['python', '/code/job.py']")
    runner_pod = runner_pod or {}
    job: dict[str, Any] = {"name": RUNNER_CONTAINER, "args": [str(c) for c in command]}
    if working_dir:
        job["workingDir"] = working_dir
    runner = _role(
        runner_pod,
        job,
        labels=labels,
        env=env,
        provider_env=provider_env,
        image=image,
        restart_policy="Never",
    )
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": "DaskJob",
        "metadata": metadata,
        "spec": {
            "job": runner,
            "cluster": {
                "spec": build_cluster_spec(
                    name=name,
                    image=image,
                    n_workers=n_workers,
                    env=env,
                    provider_env=provider_env,
                    labels=labels,
                    scheduler_pod=scheduler_pod,
                    worker_pod=worker_pod,
                ),
            },
        },
    }


# ---- the job kinds --------------------------------------------------------------------------------
def job_status(obj: Mapping[str, Any]) -> str | None:
    """A DaskJob's ``status.jobStatus`` (JobCreated, ClusterCreated, Running, Successful, Failed).

    :param obj: the DaskJob.
    """
    return (obj.get("status") or {}).get("jobStatus")


def cluster_phase(obj: Mapping[str, Any]) -> str | None:
    """A DaskCluster's ``status.phase`` (Created, Pending, Running...).

    :param obj: the DaskCluster.
    """
    return (obj.get("status") or {}).get("phase")


_DASK_HINT = (
    "the Dask Kubernetes operator is not installed there. Install it (dask-kubernetes operator Helm "
    "chart), or use cluster='local' or 'address'."
)


def _dask_role(role: str, part: Mapping[str, Any], count: int) -> Any:
    return (role, count, part.get("spec") or {}, (part.get("metadata") or {}).get("labels") or {})


def daskcluster_replicas(manifest: Mapping[str, Any]) -> list[Any]:
    """A DaskCluster's scheduler and workers (count, pod spec, labels), for the record's ``usage``.

    :param manifest: the DaskCluster (or a DaskJob's ``spec.cluster``).
    """
    spec = manifest.get("spec") or {}
    worker = spec.get("worker") or {}
    return [
        _dask_role("scheduler", spec.get("scheduler") or {}, 1),
        _dask_role("worker", worker, int(worker.get("replicas") or 1)),
    ]


def daskjob_replicas(manifest: Mapping[str, Any]) -> list[Any]:
    """A DaskJob's runner, scheduler and workers, for the record's ``usage``.

    :param manifest: the DaskJob.
    """
    spec = manifest.get("spec") or {}
    return [_dask_role("runner", spec.get("job") or {}, 1), *daskcluster_replicas(spec.get("cluster") or {})]


DASKJOB_KIND = JobKind(
    ref="airflow_mlplatform.specs.daskjob:DASKJOB_KIND",
    resource=Resource(GROUP, VERSION, "daskjobs", "DaskJob"),
    name_prefix="dask",
    state=job_status,
    started=frozenset({"Running", "Successful", "Failed"}),
    succeeded=frozenset({"Successful"}),
    failed=frozenset({"Failed"}),
    log_pod=lambda name, obj: f"{name}-runner",
    log_container=RUNNER_CONTAINER,
    earlier_try="adopt",
    name_slug=20,
    crd_hint=_DASK_HINT,
    controller="the Dask Kubernetes operator",
    pods_selector="dask.org/cluster-name={name}",
    replicas=daskjob_replicas,
)

DASKCLUSTER_KIND = JobKind(
    ref="airflow_mlplatform.specs.daskjob:DASKCLUSTER_KIND",
    resource=Resource(GROUP, VERSION, "daskclusters", "DaskCluster"),
    name_prefix="dask",
    state=cluster_phase,
    started=frozenset({"Running"}),
    succeeded=frozenset(),
    failed=frozenset({"Error", "Failed"}),
    earlier_try="adopt",
    name_slug=20,
    crd_hint=_DASK_HINT,
    controller="the Dask Kubernetes operator",
    pods_selector="dask.org/cluster-name={name}",
    replicas=daskcluster_replicas,
)
