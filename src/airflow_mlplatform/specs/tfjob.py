"""Build a Kubeflow ``kubeflow.org/v1`` TFJob manifest (a plain dict) from arguments.

Pure functions: no client, no server. Tests validate every manifest against the CRD's
``openAPIV3Schema`` (tests/data/crds/kubeflow.org_tfjobs.yaml).

``replicas`` as DAG authors write it maps a replica type to a count, or to a count plus a
compute profile of its own::

    {"Worker": 2}
    {"Chief": 1, "Worker": {"count": 4, "compute": "gpu-small"}, "PS": (2, "cpu-large")}

:func:`parse_replicas` checks it (unknown type, count < 1, PS without Workers...) and
:func:`build_tfjob` takes per-replica pod fields (resources, node selector, tolerations...)
as plain dicts, so they can come from compute profiles or be written by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.exceptions import ReplicaSpecError
from airflow_mlplatform.hooks.kubernetes import Resource
from airflow_mlplatform.specs import pod_template
from airflow_mlplatform.specs.kinds import JobKind
from airflow_mlplatform.specs.kueue import QUEUE_LABEL

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"
GROUP = "kubeflow.org"
VERSION = "v1"
PLURAL = "tfjobs"
#: The training operator looks for the container with this name.
CONTAINER_NAME = "tensorflow"
PORT_NAME = "tfjob-port"
DEFAULT_PORT = 2222
REPLICA_TYPES = ("Chief", "Master", "PS", "Worker", "Evaluator")
#: Replica types of which TensorFlow allows at most one.
SINGLETONS = ("Chief", "Master", "Evaluator")
CLEAN_POD_POLICIES = ("All", "Running", "None")
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
#: ``spec.successPolicy``: "" (the default rules: the Chief, else Worker 0, succeeded) or AllWorkers.
SUCCESS_POLICIES = ("", "AllWorkers")
#: ``runPolicy.schedulingPolicy`` (gang scheduling, e.g. Volcano): our names to the CRD's.
SCHEDULING_FIELDS = {
    "min_available": "minAvailable",
    "queue": "queue",
    "priority_class": "priorityClass",
    "min_resources": "minResources",
    "schedule_timeout_seconds": "scheduleTimeoutSeconds",
}
#: Pod fields a replica may set (snake_case keys of ``Replica.pod``): the pod template's.
POD_FIELDS = pod_template.POD_FIELDS


@dataclass(frozen=True)
class Replica:
    """One replica type of a distributed training job.

    :param type: ``Chief``, ``Master``, ``PS``, ``Worker`` or ``Evaluator``.
    :param count: how many replicas of this type (>= 1).
    :param compute: name of this replica type's own compute profile, or None.
    :param pod: pod fields of this replica type (see ``POD_FIELDS``), plain dicts.
    :param restart_policy: this replica type's ``restartPolicy`` (Always, OnFailure, Never,
        ExitCode); None: the job's.
    """

    type: str
    count: int
    compute: str | None = None
    pod: Mapping[str, Any] = field(default_factory=dict)
    restart_policy: str | None = None


def check_restart_policy(value: object, *, what: str = "restart_policy") -> str:
    """``value`` if it is a TFJob replica restartPolicy, else a clear error.

    :param value: the policy as given.
    :param what: where it was given, for the message.
    """
    if value not in RESTART_POLICIES:
        raise ReplicaSpecError(
            f"{what} {value!r}: use one of {', '.join(RESTART_POLICIES)} (Kubeflow's replica "
            "restartPolicy; ExitCode restarts on retryable exit codes 128-255 only)"
        )
    return str(value)


def _replica_type(name: object) -> str:
    if isinstance(name, str):
        for known in REPLICA_TYPES:
            if name.lower() == known.lower():
                return known
    raise ReplicaSpecError(
        f"unknown replica type {name!r}: use one of {', '.join(REPLICA_TYPES)} "
        "(e.g. replicas={'Chief': 1, 'Worker': 2})"
    )


def _count(rtype: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReplicaSpecError(
            f"replicas[{rtype!r}]: the count must be an integer >= 1, got {value!r} "
            f"(write {rtype!r}: 2, or {rtype!r}: {{'count': 2, 'compute': 'profile'}})"
        )
    if value < 1:
        raise ReplicaSpecError(
            f"replicas[{rtype!r}] = {value}: every listed replica type needs at least 1 replica; "
            "leave the type out instead of giving it 0"
        )
    return value


def parse_replicas(replicas: Mapping[str, Any] | None) -> dict[str, Replica]:
    """Check and normalise ``replicas``; None means one Worker (single-node training).

    Values: an int (count), a ``(count, compute)`` pair, or a dict with ``count`` (or
    ``replicas``), optional ``compute`` and optional pod fields (``resources``,
    ``node_selector``, ``tolerations``...).

    :param replicas: replica type to count / (count, compute) / dict.
    :raises ReplicaSpecError: unknown replica type, count < 1, more than one Chief/Master/Evaluator,
        both Chief and Master, PS without Workers, or no training replica at all.
    """
    if replicas is None:
        return {"Worker": Replica("Worker", 1)}
    if not isinstance(replicas, Mapping) or not replicas:
        raise ReplicaSpecError(
            f"replicas must be a non-empty dict of replica type to count, got {replicas!r} "
            "(e.g. {'Worker': 2} or {'Chief': 1, 'Worker': 2, 'PS': 1})"
        )
    out: dict[str, Replica] = {}
    for raw_type, value in replicas.items():
        rtype = _replica_type(raw_type)
        if rtype in out:
            raise ReplicaSpecError(f"replica type {rtype!r} is given twice (as {raw_type!r}); give it once")
        compute: str | None = None
        pod: dict[str, Any] = {}
        restart: str | None = None
        if isinstance(value, (tuple, list)):
            if len(value) != 2:
                raise ReplicaSpecError(
                    f"replicas[{rtype!r}] = {value!r}: a pair is (count, compute profile name)"
                )
            count, compute = _count(rtype, value[0]), value[1]
        elif isinstance(value, Mapping):
            unknown = set(value) - {"count", "replicas", "compute", "restart_policy", *POD_FIELDS}
            if unknown:
                raise ReplicaSpecError(
                    f"replicas[{rtype!r}] has unknown keys {sorted(unknown)}: use count, compute, "
                    f"restart_policy and pod fields {', '.join(POD_FIELDS)}"
                )
            count = _count(rtype, value.get("count", value.get("replicas", 1)))
            compute = value.get("compute")
            pod = {k: v for k, v in value.items() if k in POD_FIELDS}
            if value.get("restart_policy") is not None:
                restart = check_restart_policy(
                    value["restart_policy"], what=f"replicas[{rtype!r}]['restart_policy']"
                )
        else:
            count = _count(rtype, value)
        if compute is not None and not isinstance(compute, str):
            raise ReplicaSpecError(f"replicas[{rtype!r}]: compute must be a profile name, got {compute!r}")
        if rtype in SINGLETONS and count > 1:
            raise ReplicaSpecError(
                f"replicas[{rtype!r}] = {count}: TensorFlow allows at most one {rtype}; "
                "add Workers for more parallelism"
            )
        out[rtype] = Replica(rtype, count, compute, pod, restart)
    if "Chief" in out and "Master" in out:
        raise ReplicaSpecError("give either a Chief or a Master replica (Master is the older name), not both")
    if "PS" in out and "Worker" not in out:
        raise ReplicaSpecError(
            "PS replicas without Workers: parameter servers only hold variables, Workers do the "
            "training; add e.g. 'Worker': 2 (ParameterServerStrategy needs at least one Worker)"
        )
    if not any(t in out for t in ("Chief", "Master", "Worker")):
        raise ReplicaSpecError(
            f"replicas {sorted(out)} has no replica that trains: add a Worker (or a Chief)"
        )
    return out


def leader(replicas: Mapping[str, Replica]) -> tuple[str, int]:
    """The replica whose log and recorded values are the job's: the Chief (or Master), else Worker 0.

    :param replicas: from :func:`parse_replicas`.
    """
    for rtype in ("Chief", "Master"):
        if rtype in replicas:
            return rtype, 0
    return "Worker", 0


def build_replica_spec(
    replica: Replica,
    *,
    image: str,
    command: Sequence[str] | None,
    args: Sequence[str] | None = None,
    env: Mapping[str, Any] | None = None,
    provider_env: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    port: int = DEFAULT_PORT,
    restart_policy: str = "Never",
    working_dir: str | None = None,
    scheduler_name: str | None = None,
) -> dict[str, Any]:
    """One entry of ``spec.tfReplicaSpecs`` (its pod from the one pod template).

    :param replica: the replica type, count and pod fields.
    :param image: default image (a replica's ``pod["image"]`` wins).
    :param command: the training command, the same for every replica; None (or empty): the
        image's ENTRYPOINT, as most published TFJob examples use.
    :param args: container args.
    :param env: the task's environment variables (win over the replica's profile env;
        TF_CONFIG is injected by the training operator).
    :param provider_env: the provider's own variables (``MLPLATFORM_PARAMETERS``), win over both.
    :param labels: pod labels (task identity...).
    :param port: the ``tfjob-port`` container port.
    :param restart_policy: Always, OnFailure, Never or ExitCode (the replica's own wins).
    :param working_dir: the container's working directory.
    :param scheduler_name: the pods' ``schedulerName`` (e.g. ``volcano``); None: the default scheduler.
    """
    restart_policy = check_restart_policy(replica.restart_policy or restart_policy)
    container = pod_template.build_container(
        replica.pod,
        name=CONTAINER_NAME,
        image=image,
        command=list(command or []) or None,
        args=args,
        env=env,
        provider_env=provider_env,
        working_dir=working_dir,
        extra={"ports": [{"name": PORT_NAME, "containerPort": int(port), "protocol": "TCP"}]},
    )
    template = pod_template.build_pod_template(replica.pod, [container], labels=labels)
    if scheduler_name:
        template["spec"]["schedulerName"] = str(scheduler_name)
    return {
        "replicas": replica.count,
        "restartPolicy": restart_policy,
        "template": template,
    }


def build_run_policy(
    *,
    clean_pod_policy: str = "Running",
    ttl_seconds_after_finished: int | None = None,
    active_deadline_seconds: int | None = None,
    backoff_limit: int | None = None,
    scheduling_policy: Mapping[str, Any] | None = None,
    suspend: bool | None = None,
) -> dict[str, Any]:
    """``spec.runPolicy`` of a Kubeflow training job.

    :param clean_pod_policy: which pods to delete when the job ends: All, Running or None.
    :param ttl_seconds_after_finished: delete the finished job after this many seconds.
    :param active_deadline_seconds: fail the job after it has been active this long.
    :param backoff_limit: retries before the job is marked failed.
    :param scheduling_policy: gang scheduling (Volcano, scheduler-plugins): ``min_available``,
        ``queue``, ``priority_class``, ``min_resources``, ``schedule_timeout_seconds``
        (snake_case or the CRD's camelCase).
    :param suspend: create the job suspended (no pods until something sets it to false).
    """
    if clean_pod_policy not in CLEAN_POD_POLICIES:
        raise ReplicaSpecError(
            f"clean_pod_policy {clean_pod_policy!r}: use one of {', '.join(CLEAN_POD_POLICIES)}"
        )
    policy: dict[str, Any] = {"cleanPodPolicy": clean_pod_policy}
    for key, value in (
        ("ttlSecondsAfterFinished", ttl_seconds_after_finished),
        ("activeDeadlineSeconds", active_deadline_seconds),
        ("backoffLimit", backoff_limit),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReplicaSpecError(f"runPolicy {key} must be an integer >= 0, got {value!r}")
        policy[key] = value
    if scheduling_policy:
        policy["schedulingPolicy"] = build_scheduling_policy(scheduling_policy)
    if suspend is not None:
        if not isinstance(suspend, bool):
            raise ReplicaSpecError(f"runPolicy suspend must be true or false, got {suspend!r}")
        policy["suspend"] = suspend
    return policy


def build_tfjob_success_policy(value: str | None) -> str | None:
    """``spec.successPolicy`` checked: None or "" (the default rules) or ``AllWorkers``.

    :param value: the policy as given.
    """
    if value is None or value == "":
        return None
    if value not in SUCCESS_POLICIES:
        raise ReplicaSpecError(
            f"success_policy {value!r}: use '' (the Chief, else Worker 0, decides) or 'AllWorkers'"
        )
    return value


def build_scheduling_policy(given: Mapping[str, Any]) -> dict[str, Any]:
    """``runPolicy.schedulingPolicy`` from snake_case (or camelCase) keys.

    :param given: ``min_available``, ``queue``, ``priority_class``, ``min_resources``,
        ``schedule_timeout_seconds``.
    :raises ReplicaSpecError: an unknown key or a value of the wrong type.
    """
    camel = {v: v for v in SCHEDULING_FIELDS.values()}
    out: dict[str, Any] = {}
    for key, value in given.items():
        name = SCHEDULING_FIELDS.get(key) or camel.get(key)
        if name is None:
            raise ReplicaSpecError(
                f"scheduling_policy key {key!r} is unknown: use {', '.join(SCHEDULING_FIELDS)}"
            )
        if name in ("minAvailable", "scheduleTimeoutSeconds"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ReplicaSpecError(f"scheduling_policy {key} must be an integer >= 0, got {value!r}")
        elif name == "minResources":
            if not isinstance(value, Mapping) or not value:
                raise ReplicaSpecError(
                    f"scheduling_policy min_resources must be a dict of resource to quantity, got {value!r}"
                )
            value = {
                str(k): v if isinstance(v, int) and not isinstance(v, bool) else str(v)
                for k, v in value.items()
            }
        elif not isinstance(value, str) or not value:
            raise ReplicaSpecError(f"scheduling_policy {key} must be a non-empty string, got {value!r}")
        out[name] = value
    return out


def build_tfjob(
    *,
    name: str,
    namespace: str,
    image: str,
    command: Sequence[str] | None,
    replicas: Mapping[str, Replica],
    args: Sequence[str] | None = None,
    env: Mapping[str, Any] | None = None,
    provider_env: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    run_policy: Mapping[str, Any] | None = None,
    port: int = DEFAULT_PORT,
    restart_policy: str = "Never",
    working_dir: str | None = None,
    scheduler_name: str | None = None,
    success_policy: str | None = None,
    kueue_queue: str | None = None,
) -> dict[str, Any]:
    """A complete TFJob manifest.

    :param name: the TFJob's name (DNS-1035, short: pod names are derived from it).
    :param namespace: its namespace.
    :param image: the default image of every replica.
    :param command: the training command, run by every replica; None (or empty): the image's
        ENTRYPOINT.
    :param replicas: from :func:`parse_replicas` (pod fields already resolved).
    :param args: container args.
    :param env: the task's environment variables of every replica (win over profile env).
    :param provider_env: the provider's own variables (``MLPLATFORM_*``), win over both.
    :param labels: labels of the TFJob and of every pod (task identity).
    :param annotations: annotations of the TFJob.
    :param run_policy: from :func:`build_run_policy` (default: cleanPodPolicy Running).
    :param port: the ``tfjob-port`` container port.
    :param restart_policy: the replicas' restartPolicy (a replica's own wins).
    :param working_dir: the containers' working directory.
    :param scheduler_name: every pod's ``schedulerName`` (``volcano``, a Kueue-managed
        scheduler...); None: the cluster's default scheduler.
    :param success_policy: ``spec.successPolicy``: "" (default rules) or ``AllWorkers``.
    :param kueue_queue: the Kueue LocalQueue (a compute profile's ``kueue_queue``): labelled on the
        TFJob only, as Kueue's Kubeflow integration expects (it admits the whole job).
    """
    if success_policy is not None and success_policy not in SUCCESS_POLICIES:
        raise ReplicaSpecError(
            f"success_policy {success_policy!r}: use '' (the Chief, else Worker 0, decides) or 'AllWorkers'"
        )
    if not image and not all(r.pod.get("image") for r in replicas.values()):
        raise ReplicaSpecError("a TFJob needs an image: pass image=... or a compute profile with an image")
    specs = {
        rtype: build_replica_spec(
            replica,
            image=image,
            command=command,
            args=args,
            env=env,
            provider_env=provider_env,
            labels=labels,
            port=port,
            restart_policy=restart_policy,
            working_dir=working_dir,
            scheduler_name=scheduler_name,
        )
        for rtype, replica in replicas.items()
    }
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if kueue_queue:
        metadata["labels"][QUEUE_LABEL] = kueue_queue
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "runPolicy": dict(run_policy) if run_policy is not None else build_run_policy(),
            "tfReplicaSpecs": specs,
            **({"successPolicy": success_policy} if success_policy else {}),
        },
    }


#: The compute-profile field that decides whether a replica may set each pod field.
_PROFILE_FIELD = {
    "resources": "requests",
    "pod_security_context": "security_context",
    "container_security_context": "security_context",
}


def check_pod_overrides(pod: Mapping[str, Any], profile: Any, *, what: str) -> None:
    """Refuse a replica's pod fields that its compute profile does not let DAG authors override.

    Pod fields written in ``replicas`` are overrides like ``compute_overrides``: ``resources``
    needs ``requests`` and ``limits`` to be overridable, the security contexts need
    ``security_context``. Without a profile the default policy applies.

    :param pod: the replica's pod fields.
    :param profile: the replica's compute profile, or None.
    :param what: the replica, for the message.
    :raises ComputeOverrideError: naming the field and the profile.
    """
    from airflow_mlplatform.compute_policy import OverridePolicy
    from airflow_mlplatform.exceptions import ComputeOverrideError

    policy = profile.overridable if profile is not None else OverridePolicy()
    name = profile.name if profile is not None else "(none)"
    for key in pod:
        needed = ["requests", "limits"] if key == "resources" else [_PROFILE_FIELD.get(key, key)]
        refused = [f for f in needed if f not in policy.fields]
        if refused:
            raise ComputeOverrideError(
                f"{what}: pod field {key!r} overrides {refused[0]!r}, which compute profile {name!r} does "
                f"not let DAG authors override (overridable here: {', '.join(policy.fields) or 'none'}); "
                "use a profile that sets it"
            )
    if "image" in pod and policy.images and not any(str(pod["image"]).startswith(p) for p in policy.images):
        raise ComputeOverrideError(
            f"{what}: image {pod['image']!r} is not allowed by compute profile {name!r} (allowed prefixes: "
            f"{', '.join(policy.images)})"
        )


#: Kept for callers of the old name: the pod template's :func:`~airflow_mlplatform.specs.pod_template.pod_fields`.
pod_fields_from_profile = pod_template.pod_fields


# ---- the job kind ---------------------------------------------------------------------------------
def condition(obj: Mapping[str, Any]) -> tuple[str | None, str]:
    """The TFJob's latest true condition type (Created, Running, Restarting, Succeeded, Failed...) and message.

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


def leader_pod(name: str, obj: Mapping[str, Any]) -> str:
    """The pod whose log is the job's: ``{name}-chief-0`` (or master), else ``{name}-worker-0``.

    :param name: the TFJob's name.
    :param obj: the TFJob (its ``spec.tfReplicaSpecs`` say which replica types exist).
    """
    types = set(((obj.get("spec") or {}).get("tfReplicaSpecs") or {}).keys())
    rtype, index = leader({t: Replica(t, 1) for t in types} if types else {"Worker": Replica("Worker", 1)})
    return f"{name}-{rtype.lower()}-{index}"


def tfjob_replicas(manifest: Mapping[str, Any]) -> list[Any]:
    """Each replica type of a TFJob with its count, pod spec and labels (the record's ``usage``).

    :param manifest: the TFJob.
    """
    specs = (manifest.get("spec") or {}).get("tfReplicaSpecs") or {}
    return [
        (
            rtype,
            int(spec.get("replicas") or 1),
            (spec.get("template") or {}).get("spec") or {},
            ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {},
        )
        for rtype, spec in specs.items()
    ]


TFJOB_KIND = JobKind(
    ref="airflow_mlplatform.specs.tfjob:TFJOB_KIND",
    resource=Resource(GROUP, VERSION, PLURAL, KIND),
    name_prefix="tfjob",
    state=lambda obj: condition(obj)[0],
    started=frozenset({"Running", "Restarting", "Succeeded", "Failed"}),
    succeeded=frozenset({"Succeeded"}),
    failed=frozenset({"Failed"}),
    message=lambda obj: condition(obj)[1],
    log_pod=leader_pod,
    log_container=CONTAINER_NAME,
    earlier_try="adopt",
    name_slug=20,
    crd_hint=(
        "the Kubeflow training operator is not installed there (or not its TFJob CRD). Install "
        "training-operator v1.x, or use backend='local'."
    ),
    controller="the Kubeflow training operator (training-operator v1.x)",
    pods_selector="training.kubeflow.org/job-name={name}",
    replicas=tfjob_replicas,
)
