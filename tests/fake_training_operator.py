"""A fake Kubeflow training operator for the Kubernetes test bed (a controller of tests/kube/emulator.py).

On a new TFJob it creates one pod per replica (``{job}-{type}-{index}``, the training operator's
labels, the replica template's container with the TF_CONFIG the real operator would inject, here
with 127.0.0.1 addresses on free ports instead of per-pod service DNS names), and sets the job's
conditions Created and Running. The fake kubelet runs each pod's command as a local process.
When a pod fails the job gets ``Failed`` and, per ``cleanPodPolicy``, its running pods are deleted;
when the Chief (or every Worker when there is no Chief) succeeds it gets ``Succeeded`` and the
remaining pods (PS, Evaluator) are deleted. Deleting the TFJob deletes its pods (owner references
in a real cluster).
"""

from __future__ import annotations

import copy
import json
import socket
from contextlib import ExitStack
from typing import Any

from kube.emulator import now_iso

TFJOBS = "kubeflow.org/v1/tfjobs"
PODS = "v1/pods"
JOB_LABEL = "training.kubeflow.org/job-name"
TYPE_LABEL = "training.kubeflow.org/replica-type"
INDEX_LABEL = "training.kubeflow.org/replica-index"
ORDER = ("Chief", "Master", "PS", "Worker", "Evaluator")


def _free_ports(n: int) -> list[int]:
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


class FakeTrainingOperator:
    resources = (TFJOBS, PODS)

    def __init__(self) -> None:
        self.created_pods: list[str] = []

    async def on_event(self, emulator: Any, event_type: str, obj: dict[str, Any]) -> None:
        if obj.get("kind") == "TFJob":
            if event_type == "ADDED":
                await self._start(emulator, obj)
            elif event_type == "DELETED":
                await self._delete_pods(emulator, obj["metadata"]["namespace"], obj["metadata"]["name"])
        elif obj.get("kind") == "Pod" and event_type == "MODIFIED":
            job = (obj["metadata"].get("labels") or {}).get(JOB_LABEL)
            if job:
                await self._reconcile(emulator, obj["metadata"]["namespace"], job)

    async def _start(self, emulator: Any, job: dict[str, Any]) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        specs = job["spec"]["tfReplicaSpecs"]
        members = [
            (t, i) for t in ORDER if t in specs and t != "Evaluator" for i in range(specs[t]["replicas"])
        ]
        ports = iter(_free_ports(len(members)))
        cluster: dict[str, list[str]] = {}
        for t, _ in members:
            cluster.setdefault(t.lower(), []).append(f"127.0.0.1:{next(ports)}")
        await self._condition(emulator, ns, name, "Created", "TFJob is created.")
        for rtype in ORDER:
            if rtype not in specs:
                continue
            template = specs[rtype]["template"]
            for index in range(specs[rtype].get("replicas", 1)):
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"{name}-{rtype.lower()}-{index}",
                        "namespace": ns,
                        "labels": {
                            **(template.get("metadata", {}).get("labels") or {}),
                            JOB_LABEL: name,
                            TYPE_LABEL: rtype.lower(),
                            INDEX_LABEL: str(index),
                        },
                    },
                    "spec": copy.deepcopy(template["spec"]),
                }
                container = next(c for c in pod["spec"]["containers"] if c["name"] == "tensorflow")
                tf_config = {"cluster": cluster, "task": {"type": rtype.lower(), "index": index}}
                container.setdefault("env", []).append({"name": "TF_CONFIG", "value": json.dumps(tf_config)})
                pod["spec"]["containers"] = [container]
                pod["spec"]["restartPolicy"] = "Never"
                await emulator.add_object(PODS, ns, pod)
                self.created_pods.append(pod["metadata"]["name"])
        await self._condition(emulator, ns, name, "Running", f"TFJob {name} is running.")

    async def _condition(self, emulator: Any, ns: str, name: str, ctype: str, message: str) -> None:
        job = emulator.get_object(TFJOBS, ns, name)
        if job is None:
            return
        conditions = [
            {**c, "status": "False"}
            if c.get("type") in ("Running", "Created") and ctype in ("Succeeded", "Failed")
            else c
            for c in (job.get("status") or {}).get("conditions") or []
        ]
        if any(c.get("type") == ctype and c.get("status") == "True" for c in conditions):
            return
        conditions.append(
            {
                "type": ctype,
                "status": "True",
                "reason": f"TFJob{ctype}",
                "message": message,
                "lastTransitionTime": now_iso(),
                "lastUpdateTime": now_iso(),
            }
        )
        await emulator.set_status(TFJOBS, ns, name, {"conditions": conditions})

    async def _reconcile(self, emulator: Any, ns: str, name: str) -> None:
        job = emulator.get_object(TFJOBS, ns, name)
        if job is None:
            return
        done = {
            c["type"] for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
        }
        if done & {"Succeeded", "Failed"}:
            return
        pods = [
            p
            for p in emulator.objects(PODS, ns)
            if (p["metadata"].get("labels") or {}).get(JOB_LABEL) == name
        ]
        phase = {p["metadata"]["name"]: (p.get("status") or {}).get("phase") for p in pods}
        failed = [n for n, ph in phase.items() if ph == "Failed"]
        policy = (job["spec"].get("runPolicy") or {}).get("cleanPodPolicy", "Running")
        if failed:
            await self._condition(
                emulator, ns, name, "Failed", f"TFJob {name} has failed because {failed[0]} failed."
            )
            if policy in ("Running", "All"):
                await self._delete_pods(emulator, ns, name, only_running=policy == "Running")
            return
        specs = job["spec"]["tfReplicaSpecs"]
        lead_types = ["Chief"] if "Chief" in specs else ["Master"] if "Master" in specs else ["Worker"]
        leads = [n for n in phase if n.rsplit("-", 2)[-2] in {t.lower() for t in lead_types}]
        if leads and all(phase[n] == "Succeeded" for n in leads):
            await self._condition(emulator, ns, name, "Succeeded", f"TFJob {name} successfully completed.")
            if policy in ("Running", "All"):
                await self._delete_pods(emulator, ns, name, only_running=policy == "Running")

    async def _delete_pods(self, emulator: Any, ns: str, name: str, *, only_running: bool = False) -> None:
        for pod in emulator.objects(PODS, ns):
            if (pod["metadata"].get("labels") or {}).get(JOB_LABEL) != name:
                continue
            if only_running and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if emulator.get_object(PODS, ns, pod["metadata"]["name"]) is not None:
                await emulator.remove_object(PODS, ns, pod["metadata"]["name"])
