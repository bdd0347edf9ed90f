"""What the one Kubernetes job lifecycle needs to know about each kind of job: :class:`JobKind`.

Pure data and pure functions of the object as the API returns it (a camelCase dict): no client,
no server. The lifecycle (:class:`airflow_mlplatform.runners.kube_job.KubeJob` in the worker,
:class:`airflow_mlplatform.triggers.kubernetes.KubeJobTrigger` in the triggerer) is written once
against this description, so a new kind is a spec module (a pure manifest builder), one
``JobKind`` and a thin operator. The kinds of this provider:

- :data:`POD` (here): a plain pod (notebooks, R scripts, any command);
- :data:`airflow_mlplatform.specs.tfjob.TFJOB_KIND`: a Kubeflow TFJob (log: the Chief, else Worker 0);
- :data:`airflow_mlplatform.specs.daskjob.DASKJOB_KIND`: a DaskJob (log: its runner pod);
- :data:`airflow_mlplatform.specs.daskjob.DASKCLUSTER_KIND`: a DaskCluster (no log; the task's
  client runs in the worker).

Adding a kind, e.g. a SparkApplication::

    def spark_state(obj):
        return ((obj.get("status") or {}).get("applicationState") or {}).get("state") or None

    SPARK_KIND = JobKind(
        ref="airflow_mlplatform.specs.spark:SPARK_KIND",   # where this constant is importable
        resource=Resource("sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication"),
        name_prefix="spark",
        state=spark_state,
        started=frozenset({"RUNNING", "SUCCEEDING", "FAILING", "COMPLETED", "FAILED", ...}),
        succeeded=frozenset({"COMPLETED"}),
        failed=frozenset({"FAILED", "SUBMISSION_FAILED", "UNKNOWN"}),
        message=lambda obj: ((obj.get("status") or {}).get("applicationState") or {}).get("errorMessage") or "",
        log_pod=lambda name, obj: f"{name}-driver",
        log_container="spark-kubernetes-driver",
        controller="the Spark operator (kubeflow/spark-operator)",
        pods_selector="sparkoperator.k8s.io/app-name={name}",
        crd_hint="Install the Spark operator (kubeflow/spark-operator Helm chart).",
        replicas=spark_replicas,   # (role, count, pod spec, labels): what the record's usage bills
    )

Then ``KubeJob(SPARK_KIND, manifest, ...)`` runs it (sync or deferred), with everything every
kind gets: re-attach to an earlier try's object, a kill-safe create, the start-up timeout, the
log streamed with the resumable follower (values and metrics parsed from it), the deadline, the
delete policy, deletion on kill and timeout, and the deferrable wait.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlplatform.hooks.kubernetes import PODS, Resource
from airflow_mlplatform.specs import pod as podspec

#: Set (``"true"``) on a kept object once its results were read: no later try adopts it.
CONSUMED_ANNOTATION = podspec.label_key("consumed")
#: What to do with an object of an earlier try of the same task (:attr:`JobKind.earlier_try`).
EARLIER_TRY_POLICIES = ("adopt", "replace")


def _no_message(obj: Mapping[str, Any]) -> str:
    return ""


def _no_log_pod(name: str, obj: Mapping[str, Any]) -> str | None:
    return None


def _never(obj: Mapping[str, Any]) -> str | None:
    return None


def _no_exit_code(obj: Mapping[str, Any]) -> int | None:
    return None


#: One replica type of a job, for the record's ``usage``: ``(role, count, pod spec, pod labels)``.
ReplicaShape = tuple[str, int, Mapping[str, Any], Mapping[str, Any]]


def pod_replicas(manifest: Mapping[str, Any]) -> list[ReplicaShape]:
    """A plain pod: one replica, its own spec and labels."""
    return [("pod", 1, manifest.get("spec") or {}, (manifest.get("metadata") or {}).get("labels") or {})]


@dataclass(frozen=True)
class JobKind:
    """How the lifecycle treats one kind of Kubernetes job (all readers are pure functions of the object).

    :param ref: ``"module:NAME"`` where this description is importable; the trigger is serialized
        with it and loads the description again in the triggerer (:func:`load_kind`).
    :param resource: the API resource (group, version, plural, kind).
    :param name_prefix: prefix of the per-try object names (:func:`object_name`).
    :param state: the object's current state (``None`` while no controller has set one), e.g. a
        pod's phase, a TFJob's latest true condition, a DaskJob's ``status.jobStatus``.
    :param started: states in which the job runs or has run (its log can be read). Include the
        final states: a job may be over before anyone looks.
    :param succeeded: final states that mean success.
    :param failed: final states that mean failure.
    :param message: what the controller says about the object (a failure's reason), or "".
    :param log_pod: ``(object name, object) -> pod name`` of the pod whose log is the job's output
        (values and metrics are parsed from it); returns None for kinds without a log.
    :param log_container: the container of that pod whose log is read.
    :param earlier_try: what to do with an object of an earlier try of the same task:
        ``adopt`` (re-attach to the newest one that is still running or that succeeded and whose
        results were not read; failed and consumed ones are left as they are, for the delete
        policy and TTLs) or ``replace`` (delete them all, then create).
    :param crd_hint: appended to the error when the cluster does not serve ``resource`` (its
        CRD is missing): what to install, or which other backend to use.
    :param controller: who acts on the object, for the start-up timeout's message (e.g. "the
        Kubeflow training operator (training-operator v1.x)"); "" for plain pods.
    :param pods_selector: label selector of the job's pods, ``{name}`` replaced by the object's
        name, for the start-up timeout's message (e.g. ``training.kubeflow.org/job-name={name}``).
    :param fatal: a reason the job can never start or end well (an image name that is invalid,
        bad registry credentials): the job fails at once instead of at a deadline. None otherwise.
    :param exit_code: the job container's exit code once it ended (pods), else None.
    :param waiting: why the job is not running yet (a pod's waiting reason), for messages.
    :param name_slug: characters of the task id kept in object names: controllers name pods
        and services after the object (``{name}-worker-0``, ``{name}-scheduler``), and those
        names must stay within 63 characters too.
    :param replicas: the replica types of a manifest (:data:`ReplicaShape`: role, count, pod spec
        with ``containers`` and ``nodeSelector``, pod labels), what the record's ``usage`` section
        bills (:func:`airflow_mlplatform.usage.manifest_shape`); default: a plain pod.
    :param stop: what stopping the object means (on kill, timeout, a start-up timeout and errors,
        in the worker and in the triggerer: :func:`airflow_mlplatform.runners.kube_job.stop_object`).
        None (jobs): delete it. Else a pure function of the object as read now, returning the
        merge patch that stops it (an InferenceService: restore the previous predictor, so the
        revision that served before keeps serving), ``{}`` when there is nothing to stop, or
        None when deleting it is right after all (a first rollout, nothing served before).
    """

    ref: str
    resource: Resource
    name_prefix: str
    state: Callable[[Mapping[str, Any]], str | None]
    started: frozenset[str]
    succeeded: frozenset[str]
    failed: frozenset[str]
    message: Callable[[Mapping[str, Any]], str] = _no_message
    log_pod: Callable[[str, Mapping[str, Any]], str | None] = _no_log_pod
    log_container: str | None = None
    earlier_try: str = "adopt"
    crd_hint: str = ""
    controller: str = ""
    pods_selector: str = ""
    fatal: Callable[[Mapping[str, Any]], str | None] = _never
    exit_code: Callable[[Mapping[str, Any]], int | None] = _no_exit_code
    waiting: Callable[[Mapping[str, Any]], str | None] = _never
    name_slug: int = 40
    replicas: Callable[[Mapping[str, Any]], list[ReplicaShape]] = pod_replicas
    stop: Callable[[Mapping[str, Any]], dict[str, Any] | None] | None = None

    def __post_init__(self) -> None:
        if self.earlier_try not in EARLIER_TRY_POLICIES:
            raise ValueError(f"earlier_try {self.earlier_try!r}: use one of {EARLIER_TRY_POLICIES}")

    @property
    def label(self) -> str:
        """The kind's name for messages (``Pod``, ``TFJob``...)."""
        return self.resource.kind or self.resource.plural

    @property
    def final(self) -> frozenset[str]:
        return self.succeeded | self.failed

    def is_started(self, obj: Mapping[str, Any]) -> bool:
        """Running or over (its log can be read), or failed for good."""
        return self.state(obj) in self.started or self.fatal(obj) is not None

    def is_done(self, obj: Mapping[str, Any]) -> bool:
        """In a final state, or failed for good."""
        return self.state(obj) in self.final or self.fatal(obj) is not None

    def is_succeeded(self, obj: Mapping[str, Any]) -> bool:
        return (
            self.state(obj) in self.succeeded and self.fatal(obj) is None and self.exit_code(obj) in (0, None)
        )

    def describe_state(self, obj: Mapping[str, Any]) -> str:
        """One line: the state, and the controller's message or the waiting reason."""
        state = self.state(obj) or "no state yet"
        extra = self.fatal(obj) or self.message(obj) or self.waiting(obj) or ""
        return f"{state} ({extra})" if extra else state


def stop_action(kind: JobKind, obj: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """What stopping ``obj`` means (:attr:`JobKind.stop`): ``("patch", merge patch)``,
    ``("keep", None)`` (nothing under way) or ``("delete", None)``. Pure: the worker's and the
    triggerer's stop (sync and async hooks) both act on it.

    :param kind: the job kind.
    :param obj: the object as read now.
    """
    if kind.stop is None:
        return "delete", None
    patch = kind.stop(obj)
    if patch is None:
        return "delete", None
    return ("patch", patch) if patch else ("keep", None)


def load_kind(ref: str) -> JobKind:
    """The :class:`JobKind` named by ``"module:NAME"`` (how the trigger finds it again).

    :param ref: :attr:`JobKind.ref`.
    """
    module, _, name = ref.partition(":")
    kind = getattr(importlib.import_module(module), name, None)
    if not isinstance(kind, JobKind):
        raise LookupError(f"{ref!r} does not name a JobKind")
    return kind


def object_name(kind: JobKind, identity: Mapping[str, Any], prefix: str | None = None) -> str:
    """The deterministic per-try name of a job's object: ``{prefix}-{task slug}-{hash}`` (<= 63 chars).

    :param kind: the job kind (its ``name_prefix`` unless ``prefix`` is given).
    :param identity: dag_id, task_id, run_id, map_index, try_number.
    :param prefix: another prefix.
    """
    import hashlib
    import re

    raw = "|".join(str(identity.get(f)) for f in (*podspec.IDENTITY_KEYS, "try_number"))
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", str(identity.get("task_id", "job")).lower()).strip("-")
    slug = slug[: kind.name_slug].strip("-") or "job"
    return f"{prefix or kind.name_prefix}-{slug}-{digest}"


def is_consumed(obj: Mapping[str, Any]) -> bool:
    """A task already read this kept object's results (no later try adopts it)."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(CONSUMED_ANNOTATION) == "true"


def not_started_message(
    kind: JobKind,
    name: str,
    namespace: str,
    obj: Mapping[str, Any] | None,
    timeout: float,
    elapsed: float,
) -> str:
    """What to check when a job did not start within its start-up timeout.

    :param kind: the job kind.
    :param name: the object's name.
    :param namespace: its namespace.
    :param obj: the object as last seen (None: it could not be read).
    :param timeout: the start-up timeout in seconds.
    :param elapsed: how long the wait really took (said when it overran).
    """
    state = kind.state(obj) if obj is not None else None
    pods = (
        "pods that cannot be scheduled (GPUs, node selector, tolerations, quota), a missing secret or volume"
    )
    if not kind.controller:
        waiting = kind.waiting(obj) if obj is not None else None
        what = (
            f"it is still {state or 'Pending'}{f' ({waiting})' if waiting else ''}: check its events "
            f"(kubectl describe {kind.resource.plural} -n {namespace} {name}): an image that "
            f"cannot be pulled, {pods}"
        )
    elif state is None:
        what = (
            f"it has no status at all, so no controller picked it up: is {kind.controller} installed "
            "and running, and does it watch this namespace?"
        )
    else:
        selector = kind.pods_selector.format(name=name)
        what = (
            f"its state is {state!r}: its pods did not run; check them (kubectl describe pods -n "
            f"{namespace} -l {selector}): an image that cannot be pulled, {pods}"
        )
    waited = f"; waited {elapsed:.0f} s" if elapsed > timeout + 1 else ""
    return (
        f"{kind.label} {name} in namespace {namespace} did not start within {timeout:.0f} s "
        f"(startup_timeout{waited}): {what}"
    )


# ---- pods -----------------------------------------------------------------------------------------
#: Waiting reasons of a container that never heal by themselves.
POD_FATAL_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
#: Image pull errors: fatal (a name that does not exist, refused credentials) unless the message
#: says the registry is only busy or unreachable for now (a rate limit such as Docker Hub's
#: ``toomanyrequests``, a timeout, a 5xx): those wait until the start-up timeout, as the cncf
#: KubernetesPodOperator does. Other waiting reasons (a missing Secret or ConfigMap:
#: ``CreateContainerConfigError``) can heal and wait until the start-up timeout too.
POD_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})
POD_PULL_TRANSIENT_MARKERS = (
    "toomanyrequests",
    "too many requests",
    "429",
    "rate limit",
    "pull qps exceeded",
    "quota exceeded",
    "account limit",
    "temporarily unavailable",
    "timeout",
    "timed out",
    "connection reset",
    "connection refused",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
    "internal server error",
    " 500 ",
    " 502 ",
    " 503 ",
    " 504 ",
)


def pod_phase(pod: Mapping[str, Any]) -> str:
    """The pod's phase (``Pending`` when not set yet)."""
    return str((pod.get("status") or {}).get("phase") or "Pending")


def container_state(pod: Mapping[str, Any], container: str = podspec.CONTAINER_NAME) -> dict[str, Any]:
    """The container's ``state`` (``{"running": ...}``, ``{"terminated": ...}``...)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return dict(status.get("state") or {})
    return {}


def pod_state(pod: Mapping[str, Any]) -> str:
    """The phase, but ``Running`` as soon as the job container runs (its log can be read)."""
    phase = pod_phase(pod)
    if phase == "Pending" and container_state(pod).get("running"):
        return "Running"
    return phase


def pod_waiting(pod: Mapping[str, Any]) -> str | None:
    """``reason: message`` of a waiting job container, or None."""
    waiting = container_state(pod).get("waiting") or {}
    reason = waiting.get("reason")
    return f"{reason}: {waiting.get('message', '')}".strip(": ") if reason else None


def pod_fatal(pod: Mapping[str, Any]) -> str | None:
    """A waiting reason that will not resolve by itself (invalid image name, image not found,
    refused credentials), or None; rate limits, timeouts and registry 5xx are transient."""
    waiting = container_state(pod).get("waiting") or {}
    reason = waiting.get("reason")
    message = str(waiting.get("message") or "")
    fatal = reason in POD_FATAL_REASONS or (
        reason in POD_PULL_REASONS
        and not any(m in f" {message.lower()} " for m in POD_PULL_TRANSIENT_MARKERS)
    )
    return f"{reason}: {message}".strip(": ") if fatal else None


def pod_exit_code(pod: Mapping[str, Any]) -> int | None:
    """The job container's exit code, once it terminated."""
    terminated = container_state(pod).get("terminated") or {}
    code = terminated.get("exitCode")
    return int(code) if code is not None else None


def pod_message(pod: Mapping[str, Any]) -> str:
    """The terminated container's reason/message, else the pod's status message."""
    terminated = container_state(pod).get("terminated") or {}
    text = " ".join(str(terminated.get(k)) for k in ("reason", "message") if terminated.get(k))
    return text or str((pod.get("status") or {}).get("message") or "")


POD = JobKind(
    ref="airflow_mlplatform.specs.kinds:POD",
    resource=PODS,
    name_prefix="mlp",
    state=pod_state,
    started=frozenset({"Running", "Succeeded", "Failed", "Unknown"}),
    succeeded=frozenset({"Succeeded"}),
    failed=frozenset({"Failed"}),
    message=pod_message,
    log_pod=lambda name, obj: name,
    log_container=podspec.CONTAINER_NAME,
    earlier_try="adopt",
    crd_hint="",
    controller="",
    pods_selector="",
    fatal=pod_fatal,
    exit_code=pod_exit_code,
    waiting=pod_waiting,
)
