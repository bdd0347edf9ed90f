"""The execution record's ``usage`` section: what a try used, for billing tenants.

Pure functions build the section from what is known anyway: the compute profile, the job's
manifest (replica shapes of every Kubernetes kind, from :attr:`JobKind.replicas
<airflow_mlplatform.specs.kinds.JobKind.replicas>`), where it ran, and the times the lifecycle
saw. While a job runs, its pieces report facts to the try's :class:`UsageNotes`
(:func:`collecting` is opened by :func:`airflow_mlplatform.jobs.run_recorded`):

- the one Kubernetes lifecycle (``KubeJob``) notes a :class:`KubeFacts` (shape, created, running,
  finished, re-attached) for each object it starts or adopts;
- the Valohai operator notes the execution's environment and duration (:func:`note_valohai`).

Nothing here talks to a server; the format is documented in docs/execution-record.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

#: Labels whose value names the tenant (the first one present wins).
TENANT_LABELS = ("tenant", "team")
#: Labels whose value names the cost centre.
COST_LABELS = ("cost-centre", "cost-center", "cost_centre", "cost_center", "costcentre")
#: Node labels (node selector keys) that name a node pool.
NODE_POOL_KEYS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "node-pool",
    "nodepool",
    "pool",
)
#: Node labels that name the GPU model (else the GPU resource name is the type).
GPU_TYPE_KEYS = (
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "k8s.amazonaws.com/accelerator",
    "accelerator",
    "gpu-type",
)
_NOT_GPU = ("cpu", "memory", "ephemeral-storage", "pods")
_PROVIDER_LABEL_PREFIXES = ("mlplatform.airflow.apache.org/", "app.kubernetes.io/managed-by")
GIB = 1024**3


def _quantity(value: Any) -> float | None:
    """A Kubernetes quantity as a number (cores, bytes, count); None when absent or unreadable."""
    if value is None:
        return None
    from airflow_mlplatform.compute_policy import quantity_value
    from airflow_mlplatform.exceptions import MLPlatformError

    try:
        return float(quantity_value(str(value).strip(), where="usage"))
    except (MLPlatformError, ArithmeticError, ValueError):
        return None


def container_resources(containers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """CPU cores, memory bytes and GPUs requested by a pod's containers (requests, else limits).

    :param containers: the pod spec's ``containers`` (camelCase dicts).
    """
    cpu = memory = Decimal(0)
    gpus = 0.0
    gpu_resource: str | None = None
    seen_cpu = seen_memory = False
    for c in containers:
        resources = c.get("resources") or {}
        requests = dict(resources.get("limits") or {})
        requests.update(resources.get("requests") or {})
        for name, value in requests.items():
            number = _quantity(value)
            if number is None:
                continue
            if name == "cpu":
                cpu += Decimal(str(number))
                seen_cpu = True
            elif name == "memory":
                memory += Decimal(str(number))
                seen_memory = True
            elif name not in _NOT_GPU and "gpu" in name.lower():
                gpus += number
                gpu_resource = name
    return {
        "cpu": float(cpu) if seen_cpu else None,
        "memory_bytes": int(memory) if seen_memory else None,
        "gpus": gpus,
        "gpu_resource": gpu_resource,
    }


def _first(mapping: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        if mapping.get(key):
            return str(mapping[key])
    return None


def replica_usage(role: str, count: int, pod: Mapping[str, Any]) -> dict[str, Any]:
    """One replica type's shape: ``{role, count, cpu, memory_bytes, gpus, gpu_type, node_pool}``.

    :param role: the replica type (``pod``, ``Worker``, ``scheduler``, ``driver``...).
    :param count: how many replicas of it.
    :param pod: its pod spec (``containers``, ``nodeSelector``).
    """
    res = container_resources(pod.get("containers") or [])
    selector = dict(pod.get("nodeSelector") or {})
    gpu_type = (_first(selector, GPU_TYPE_KEYS) or res["gpu_resource"]) if res["gpus"] else None
    return {
        "role": role,
        "count": int(count),
        "cpu": res["cpu"],
        "memory_bytes": res["memory_bytes"],
        "gpus": res["gpus"],
        "gpu_type": gpu_type,
        "node_pool": _first(selector, NODE_POOL_KEYS),
    }


def billing_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """The labels a platform engineer put on the job (profile labels), without the provider's own."""
    return {str(k): str(v) for k, v in labels.items() if not str(k).startswith(_PROVIDER_LABEL_PREFIXES)}


def manifest_shape(kind: Any, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a Kubernetes object will use: replicas, billing labels, namespace, node pool.

    :param kind: the :class:`~airflow_mlplatform.specs.kinds.JobKind`.
    :param manifest: the object as created.
    """
    replicas = []
    labels: dict[str, str] = billing_labels((manifest.get("metadata") or {}).get("labels") or {})
    for role, count, pod, pod_labels in kind.replicas(manifest):
        replicas.append(replica_usage(role, count, pod))
        for k, v in billing_labels(pod_labels or {}).items():
            labels.setdefault(k, v)
    pools = sorted({r["node_pool"] for r in replicas if r["node_pool"]})
    return {
        "kind": kind.label,
        "namespace": (manifest.get("metadata") or {}).get("namespace"),
        "replicas": replicas,
        "labels": labels,
        "node_pool": ",".join(pools) or None,
    }


def profile_shape(profile: Any, *, replicas: Mapping[str, int] | None = None) -> dict[str, Any]:
    """What a job in the worker uses: the profile's requests (one core when it says none).

    :param profile: the task's :class:`~airflow_mlplatform.compute.ComputeProfile`, or None.
    :param replicas: local replica counts (``{"Worker": 2, "Chief": 1}``), each of the profile's size.
    """
    pod: dict[str, Any] = {"containers": [{"resources": profile.resources()}]} if profile is not None else {}
    counts = dict(replicas or {"worker": 1})
    rows = []
    for role, count in counts.items():
        row = replica_usage(role, count, pod)
        if row["cpu"] is None:  # a worker slot: one core unless the profile (or its local[N] Spark) says more
            row["cpu"] = _local_spark_cores(profile) or 1.0
        rows.append(row)
    return {
        "kind": "worker",
        "namespace": None,
        "replicas": rows,
        "labels": billing_labels(profile.labels) if profile is not None else {},
        "node_pool": None,
    }


def _local_spark_cores(profile: Any) -> float | None:
    """N of a profile's Spark master ``local[N]`` (the cores a Spark job in the worker uses)."""
    import re

    master = str((getattr(profile, "spark", None) or {}).get("master") or "")
    m = re.fullmatch(r"local\[(\d+)(?:,\s*\d+)?\]", master.strip())
    return float(m.group(1)) if m else None


@dataclass
class KubeFacts:
    """What the lifecycle saw of one Kubernetes object (UNIX times; None when not seen).

    :param shape: :func:`manifest_shape` of the object (empty when only its name is known).
    :param created: when this try created it (or, adopted, when it was created).
    :param running: when it was first seen running.
    :param finished: when it was first seen over.
    :param reattached: an earlier try's object was adopted.
    :param deleted: it was deleted because the try was killed, timed out or failed.
    """

    shape: dict[str, Any] = field(default_factory=dict)
    created: float | None = None
    running: float | None = None
    finished: float | None = None
    reattached: bool = False
    deleted: bool = False

    def as_event(self) -> dict[str, Any]:
        """JSON-ready form (the trigger hands it to the worker in its event)."""
        return {
            "shape": self.shape,
            "created": self.created,
            "running": self.running,
            "finished": self.finished,
            "reattached": self.reattached,
        }

    @classmethod
    def from_event(cls, data: Mapping[str, Any] | None) -> KubeFacts:
        data = data or {}
        return cls(
            shape=dict(data.get("shape") or {}),
            created=data.get("created"),
            running=data.get("running"),
            finished=data.get("finished"),
            reattached=bool(data.get("reattached")),
        )


@dataclass
class UsageNotes:
    """What a try's job reported while it ran (see the module doc)."""

    kube: list[KubeFacts] = field(default_factory=list)
    valohai: dict[str, Any] | None = None
    tags: dict[str, Any] = field(default_factory=dict)


_NOTES: contextvars.ContextVar[UsageNotes | None] = contextvars.ContextVar("mlplatform_usage", default=None)


@contextlib.contextmanager
def collecting(*, profile: Any = None) -> Iterator[UsageNotes]:
    """The try's :class:`UsageNotes` while the block runs (what the job's pieces note goes there).

    :param profile: the task's compute profile (its name and tenant tag the job's metrics).
    """
    notes = UsageNotes(
        tags={
            "profile": getattr(profile, "name", None),
            "tenant": tenant_of(profile.labels) if profile is not None else None,
        }
    )
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def current_tags() -> dict[str, Any]:
    """``profile`` and ``tenant`` of the running try, for metrics (empty outside a try)."""
    notes = _NOTES.get()
    return dict(notes.tags) if notes is not None else {}


def note_kube(facts: KubeFacts) -> None:
    """Note one Kubernetes object of the running try (once per object).

    :param facts: the lifecycle's facts (kept by reference: later times are seen too).
    """
    notes = _NOTES.get()
    if notes is not None and not any(f is facts for f in notes.kube):
        notes.kube.append(facts)


def note_valohai(execution: Mapping[str, Any]) -> None:
    """Note the Valohai execution of the running try (environment, duration).

    :param execution: the execution as the Valohai API returns it.
    """
    notes = _NOTES.get()
    if notes is not None:
        notes.valohai = valohai_facts(execution)


def valohai_facts(execution: Mapping[str, Any]) -> dict[str, Any]:
    """Environment (instance type), its name, and the duration of a Valohai execution.

    :param execution: the execution as the Valohai API returns it.
    """
    env = execution.get("environment")
    env_id = env.get("id") if isinstance(env, Mapping) else env
    env_name = env.get("name") if isinstance(env, Mapping) else execution.get("environment_name")
    slug = env.get("slug") if isinstance(env, Mapping) else None
    duration = execution.get("duration")
    if duration is None:
        started, ended = parse_time(execution.get("started_at")), parse_time(execution.get("ended_at"))
        duration = (ended - started) if started is not None and ended is not None else None
    return {
        "execution": execution.get("id"),
        "environment": slug or env_id,
        "environment_name": env_name,
        "duration_s": round(float(duration), 3) if duration is not None else None,
        "status": execution.get("status"),
    }


def parse_time(value: Any) -> float | None:
    """An ISO 8601 time (``Z`` allowed) as UNIX time; None when absent or unreadable.

    :param value: the text.
    """
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def tenant_of(labels: Mapping[str, Any]) -> str | None:
    """The tenant named by billing labels (:data:`TENANT_LABELS`), or None.

    :param labels: the labels.
    """
    return _first(labels, TENANT_LABELS)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts is not None else None


def _span(a: float | None, b: float | None) -> float | None:
    return round(max(0.0, b - a), 3) if a is not None and b is not None else None


def totals(replicas: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summed CPU cores, memory GiB and GPUs over every replica (count included)."""
    cpu = sum((r.get("cpu") or 0.0) * r.get("count", 1) for r in replicas)
    memory = sum((r.get("memory_bytes") or 0) * r.get("count", 1) for r in replicas) / GIB
    gpus = sum((r.get("gpus") or 0.0) * r.get("count", 1) for r in replicas)
    return {
        "replicas": sum(int(r.get("count", 1)) for r in replicas),
        "cpu": round(cpu, 4),
        "memory_gib": round(memory, 4),
        "gpus": round(gpus, 4),
    }


def _local_replicas(where: Mapping[str, Any]) -> dict[str, int] | None:
    replicas = where.get("replicas")
    if isinstance(replicas, Mapping) and all(isinstance(v, int) for v in replicas.values()):
        return {str(k): int(v) for k, v in replicas.items()}
    workers = where.get("n_workers")
    if isinstance(workers, int) and workers > 0:
        return {"worker": workers}
    return None


def usage_section(
    *,
    notes: UsageNotes | None,
    profile: Any,
    task_type: str,
    where: Mapping[str, Any],
    started: datetime,
    ended: datetime,
    status: str,
) -> dict[str, Any]:
    """The record's ``usage`` section for one try (see docs/execution-record.md).

    :param notes: what the job reported (Kubernetes objects, a Valohai execution).
    :param profile: the task's compute profile, or None (the worker).
    :param task_type: the operator's class name.
    :param where: the record's ``where``.
    :param started: when the try started.
    :param ended: when it ended.
    :param status: ``success``, ``failed`` or ``killed``.
    """
    notes = notes or UsageNotes()
    duration = round(max(0.0, (ended - started).total_seconds()), 3)
    section: dict[str, Any] = {
        "task_type": task_type,
        "profile": getattr(profile, "name", None),
        "status": status,
        "failed": status != "success",
        "killed": status == "killed",
        "started": started.isoformat(),
        "ended": ended.isoformat(),
        "duration_s": duration,
        "worker": where.get("hostname"),
    }
    kube = [f for f in notes.kube if f.shape]
    if kube:
        replicas = [r for f in kube for r in f.shape.get("replicas") or []]
        labels: dict[str, str] = {}
        for f in kube:
            for k, v in (f.shape.get("labels") or {}).items():
                labels.setdefault(k, v)
        created = min((f.created for f in kube if f.created is not None), default=None)
        running = min((f.running for f in kube if f.running is not None), default=None)
        finished = max((f.finished for f in kube if f.finished is not None), default=None)
        if finished is None and running is not None:
            finished = ended.timestamp()  # killed or failed while running: it ran until now
        pools = sorted({p for f in kube for p in str(f.shape.get("node_pool") or "").split(",") if p})
        section.update(
            backend="kubernetes",
            kind=kube[0].shape.get("kind")
            if len(kube) == 1
            else "+".join(f.shape.get("kind", "?") for f in kube),
            namespace=kube[0].shape.get("namespace"),
            node_pool=",".join(pools) or None,
            replicas=replicas,
            labels=labels,
            created=_iso(created),
            running=_iso(running),
            finished=_iso(finished),
            pending_s=_span(created, running if running is not None else finished or ended.timestamp()),
            running_s=_span(running, finished),
            reattached=any(f.reattached for f in kube),
        )
        billable = section["running_s"] or 0.0
    elif notes.valohai is not None:
        section.update(
            backend="valohai",
            kind="ValohaiExecution",
            namespace=None,
            node_pool=None,
            replicas=[],
            labels=billing_labels(profile.labels) if profile is not None else {},
            valohai=notes.valohai,
            running_s=notes.valohai.get("duration_s"),
        )
        billable = notes.valohai.get("duration_s") or duration
    else:
        shape = profile_shape(profile, replicas=_local_replicas(where))
        section.update(
            backend="local",
            kind="worker",
            namespace=None,
            node_pool=None,
            replicas=shape["replicas"],
            labels=shape["labels"],
            running_s=duration,
        )
        billable = duration
    labels = section["labels"]
    section["tenant"] = tenant_of(labels)
    section["cost_centre"] = _first(labels, COST_LABELS)
    section["totals"] = totals(section["replicas"])
    section["billable_s"] = round(float(billable), 3)
    return section


def now() -> float:
    """UNIX time (the lifecycle's clock for :class:`KubeFacts`)."""
    return time.time()
