"""A fake Dask Kubernetes operator for the Kubernetes test bed (a controller of tests/kube/emulator.py).

On a new DaskCluster it creates the scheduler Service ``{name}-scheduler`` (cluster IP 127.0.0.1,
port ``tcp-comm`` on a free local port instead of 8786), the scheduler pod and the worker pods
from the cluster's templates (the same containers, with loopback addresses, no dashboards and
``DASK_SCHEDULER_ADDRESS`` set in the workers, as the real operator does), and sets
``status.phase`` Running once the scheduler pod runs. The fake kubelet runs each pod's command
(``dask scheduler``, ``dask worker``) as a local process. Deleting the DaskCluster deletes its
pods and service.
"""

from __future__ import annotations

import copy
import socket
from typing import Any

DASKCLUSTERS = "kubernetes.dask.org/v1/daskclusters"
DASKJOBS = "kubernetes.dask.org/v1/daskjobs"
PODS = "v1/pods"
SERVICES = "v1/services"
CLUSTER_LABEL = "dask.org/cluster-name"
COMPONENT_LABEL = "dask.org/component"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_args(args: list[str], component: str, port: int, pod_name: str) -> list[str]:
    """The template's args with loopback addresses and no dashboards (processes share one host here)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--host", "--dashboard-address"):
            skip = True
            continue
        if arg == "--dashboard":
            continue
        out.append(arg.replace("$(DASK_WORKER_NAME)", pod_name))
    if component == "scheduler":
        return [*out, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    return [*out, "--host", "127.0.0.1", "--no-dashboard", "--nthreads", "1", "--no-nanny"]


class FakeDaskOperator:
    resources = (DASKCLUSTERS, DASKJOBS, PODS)

    def __init__(self) -> None:
        self.clusters: list[str] = []

    async def on_event(self, emulator: Any, event_type: str, obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        meta = obj["metadata"]
        if kind == "DaskCluster" and event_type == "ADDED":
            await self._start(emulator, obj)
        elif kind == "DaskJob" and event_type == "ADDED":
            await self._start_job(emulator, obj)
        elif kind in ("DaskCluster", "DaskJob") and event_type == "DELETED":
            await self._delete_children(emulator, meta["namespace"], meta["name"])
        elif (
            kind == "Pod"
            and event_type == "MODIFIED"
            and (meta.get("labels") or {}).get(COMPONENT_LABEL) == "job-runner"
        ):
            await self._runner_changed(emulator, obj)
        elif kind == "Pod" and event_type == "MODIFIED":
            labels = meta.get("labels") or {}
            if (
                labels.get(COMPONENT_LABEL) == "scheduler"
                and (obj.get("status") or {}).get("phase") == "Running"
            ):
                cluster = emulator.get_object(DASKCLUSTERS, meta["namespace"], labels[CLUSTER_LABEL])
                if cluster is not None and (cluster.get("status") or {}).get("phase") != "Running":
                    await emulator.set_status(
                        DASKCLUSTERS, meta["namespace"], labels[CLUSTER_LABEL], {"phase": "Running"}
                    )

    async def _start(self, emulator: Any, cluster: dict[str, Any]) -> None:
        ns, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        await emulator.set_status(DASKCLUSTERS, ns, name, {"phase": "Created"})
        await self._start_cluster(emulator, ns, name, cluster["spec"])

    async def _start_job(self, emulator: Any, job: dict[str, Any]) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        await emulator.set_status(DASKJOBS, ns, name, {"jobStatus": "JobCreated"})
        address = await self._start_cluster(emulator, ns, name, job["spec"]["cluster"]["spec"])
        await emulator.set_status(DASKJOBS, ns, name, {"jobStatus": "ClusterCreated"})
        template = job["spec"]["job"]
        pod_spec = copy.deepcopy(template["spec"])
        pod_spec["containers"][0].setdefault("env", []).append(
            {"name": "DASK_SCHEDULER_ADDRESS", "value": address}
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-runner",
                "namespace": ns,
                "labels": {
                    **((template.get("metadata") or {}).get("labels") or {}),
                    CLUSTER_LABEL: name,
                    COMPONENT_LABEL: "job-runner",
                },
            },
            "spec": pod_spec,
        }
        await emulator.add_object(PODS, ns, pod)

    async def _runner_changed(self, emulator: Any, pod: dict[str, Any]) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["labels"][CLUSTER_LABEL]
        job = emulator.get_object(DASKJOBS, ns, name)
        if job is None:
            return
        phase = (pod.get("status") or {}).get("phase")
        status = (job.get("status") or {}).get("jobStatus")
        if phase == "Running" and status in ("JobCreated", "ClusterCreated"):
            await emulator.set_status(DASKJOBS, ns, name, {"jobStatus": "Running"})
        elif phase in ("Succeeded", "Failed") and status not in ("Successful", "Failed"):
            await emulator.set_status(
                DASKJOBS, ns, name, {"jobStatus": "Successful" if phase == "Succeeded" else "Failed"}
            )
            # the operator deletes the cluster when the runner finishes (the runner pod stays)
            for obj in emulator.objects(PODS, ns):
                labels = obj["metadata"].get("labels") or {}
                if labels.get(CLUSTER_LABEL) == name and labels.get(COMPONENT_LABEL) != "job-runner":
                    await emulator.remove_object(PODS, ns, obj["metadata"]["name"])

    async def _start_cluster(self, emulator: Any, ns: str, name: str, spec: dict[str, Any]) -> str:
        self.clusters.append(name)
        port = _free_port()
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-scheduler", "namespace": ns, "labels": {CLUSTER_LABEL: name}},
            "spec": {
                **copy.deepcopy(spec["scheduler"]["service"]),
                "clusterIP": "127.0.0.1",
                "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": port, "targetPort": "tcp-comm"}],
            },
        }
        await emulator.add_object(SERVICES, ns, service)
        address = f"tcp://127.0.0.1:{port}"
        pods = [("scheduler", f"{name}-scheduler", spec["scheduler"])]
        pods += [
            ("worker", f"{name}-default-worker-{i}", spec["worker"])
            for i in range(spec["worker"].get("replicas", 1))
        ]
        for component, pod_name, template in pods:
            pod_spec = copy.deepcopy(template["spec"])
            container = pod_spec["containers"][0]
            container["args"] = _loopback_args(container.get("args", []), component, port, pod_name)
            env = container.setdefault("env", [])
            env.append({"name": "DASK_SCHEDULER_ADDRESS", "value": address})
            env.append({"name": "DASK_WORKER_NAME", "value": pod_name})
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": ns,
                    "labels": {
                        **((template.get("metadata") or {}).get("labels") or {}),
                        CLUSTER_LABEL: name,
                        COMPONENT_LABEL: component,
                    },
                },
                "spec": pod_spec,
            }
            await emulator.add_object(PODS, ns, pod)
        return address

    async def _delete_children(self, emulator: Any, ns: str, name: str) -> None:
        for key in (PODS, SERVICES):
            for obj in emulator.objects(key, ns):
                if (obj["metadata"].get("labels") or {}).get(CLUSTER_LABEL) == name and emulator.get_object(
                    key, ns, obj["metadata"]["name"]
                ):
                    await emulator.remove_object(key, ns, obj["metadata"]["name"])
