"""Build a ``serving.kserve.io/v1beta1`` InferenceService (a camelCase dict), and read its state.

Pure functions: no client, no server; tests validate the manifests against the CRD's schema.
The predictor's size and placement come from a compute profile (requests/limits and GPUs of
the model container, node selector, tolerations, affinity, priority class, service account,
tenant labels on the object and its pods, the restricted security context); the model is
``spec.predictor.model.modelFormat`` + ``storageUri``. The image is the ServingRuntime's: a
profile's image is not used (KServe picks the runtime by model format).

The rollout's own state lives in one annotation of the object (:data:`ROLLOUT_ANNOTATION`,
JSON): the digest of the predictor it wrote, the model version, the predictor that served
before (what a rollback or a kill restores) and the phase (``rolling-out``, ``promoting``,
``done``, ``rolled-back``). It survives the task: a retry re-attaches to a rollout that is
still going, and a re-run of the same version sees there is nothing to do.

Readiness, as the KServe SDK checks it: the ``Ready`` condition is True **and**
``status.observedGeneration`` has reached ``metadata.generation``; Ready alone can still
describe the previous revision (:func:`isvc_state`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from airflow_mlplatform.exceptions import DeploymentDefinitionError
from airflow_mlplatform.hooks.kubernetes import Resource
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs.kinds import JobKind
from airflow_mlplatform.specs.pod_template import placement

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
RESOURCE = Resource("serving.kserve.io", "v1beta1", "inferenceservices", KIND)
#: The rollout's state on the object (JSON, see the module doc).
ROLLOUT_ANNOTATION = podspec.label_key("rollout")
#: Label of the deployed registered model (and its version), for ``kubectl get -l``.
MODEL_LABEL = podspec.label_key("model")
MODEL_VERSION_LABEL = podspec.label_key("model-version")
#: KServe publishes the ``latest``/``prev`` tag URLs of a canary only with this annotation.
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
#: Labels a rollout sets and a rollback restores (what ``kubectl get -l`` finds).
MANAGED_LABELS = (MODEL_LABEL, MODEL_VERSION_LABEL)
#: The label KServe puts on an InferenceService's pods.
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
#: Model formats of KServe's stock ServingRuntimes; others need ``runtime=``.
MODEL_FORMATS = (
    "sklearn",
    "xgboost",
    "lightgbm",
    "tensorflow",
    "pytorch",
    "onnx",
    "triton",
    "pmml",
    "paddle",
    "mlflow",
    "huggingface",
)
PROTOCOLS = ("v1", "v2")
#: URI schemes KServe's storage initializer downloads (a worker's local path is not one).
STORAGE_SCHEMES = (
    "s3://",
    "gs://",
    "pvc://",
    "http://",
    "https://",
    "hdfs://",
    "webhdfs://",
    "hf://",
    "oci://",
)
#: Phases of :data:`ROLLOUT_ANNOTATION` in which a rollout is under way (a kill restores the previous).
ACTIVE_PHASES = ("rolling-out", "promoting")
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_name(name: Any) -> str:
    """``name`` when it is a valid InferenceService name (DNS-1035 label, at most 45 characters:
    KServe names the predictor's Knative service and its revisions after it).

    :param name: the InferenceService's name.
    """
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 45:
        raise DeploymentDefinitionError(
            f"deployment name {name!r} is not valid: use lower-case letters, digits and '-', starting "
            "with a letter, at most 45 characters (KServe derives its service and revision names from it)"
        )
    return name


def check_canary(percent: Any) -> int | None:
    """The canary's traffic share (1..99), or None.

    :param percent: ``canary_traffic_percent`` as given.
    """
    if percent is None:
        return None
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise DeploymentDefinitionError(
            f"canary_traffic_percent is {percent!r}; give a whole percentage from 1 to 99 (None: no "
            "canary, the new revision takes all traffic once ready)"
        )
    return percent


def check_storage_uri(uri: str, *, what: str, from_registry: bool = True) -> str:
    """``uri`` when KServe's storage initializer can download it, else a clear error.

    :param uri: the model's storage URI.
    :param what: what the URI belongs to, for the message (``model churn version 3``).
    :param from_registry: the URI is where the registry keeps the version's files. A ``file://``
        one is then the workers' disk, which the cluster cannot read; given by hand, ``file://``
        (and ``oci+native://``, ``oci+fetch://``) name files of the serving container, as KServe
        takes them.
    """
    explicit = () if from_registry else ("file://", "oci+native://", "oci+fetch://")
    if not uri.startswith((*STORAGE_SCHEMES, *explicit)):
        hint = (
            " MLflow's proxied artifacts (mlflow-artifacts:/) are stored where the tracking server's "
            "--artifacts-destination points: map that prefix to it, e.g. storage_uri_map="
            "{'mlflow-artifacts:/': 's3://mlflow-bucket/mlartifacts/'}."
            if uri.startswith("mlflow-artifacts:")
            else ""
        )
        raise DeploymentDefinitionError(
            f"{what} is stored at {uri!r}, which the cluster cannot read: KServe's storage "
            f"initializer downloads {', '.join(s.rstrip(':/') for s in STORAGE_SCHEMES)} URIs. Use an "
            "MLflow server whose artifact root is object storage (s3://, gs://), or map the folder to a "
            "volume the cluster mounts with storage_uri_map={'file:///mnt/mlflow/': 'pvc://mlflow/'} "
            f"(or [mlplatform] deploy_storage_map).{hint}"
        )
    return uri


def map_storage_uri(uri: str, mapping: Mapping[str, str] | None) -> str:
    """``uri`` with its longest matching prefix in ``mapping`` replaced (e.g. a shared folder the
    workers mount to the PVC the cluster mounts).

    :param uri: the model's artifact URI, as the registry gives it.
    :param mapping: prefix -> replacement.
    """
    for prefix in sorted(mapping or {}, key=len, reverse=True):
        if uri.startswith(prefix):
            return str((mapping or {})[prefix]) + uri[len(prefix) :]
    return uri


def build_predictor(
    *,
    storage_uri: str,
    model_format: str,
    profile: Any = None,
    canary_traffic_percent: int | None = None,
    protocol_version: str = "v2",
    runtime: str | None = None,
    format_version: str | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``spec.predictor`` for one model version.

    :param storage_uri: where the model's files are (checked: :func:`check_storage_uri`).
    :param model_format: ``sklearn``, ``xgboost``... (:data:`MODEL_FORMATS` unless ``runtime``).
    :param profile: the compute profile (size, placement, service account, labels, security).
    :param canary_traffic_percent: the new revision's share until promoted (None: all).
    :param protocol_version: ``v2`` (the open inference protocol) or ``v1``.
    :param runtime: a ServingRuntime name (required for formats without a stock runtime).
    :param format_version: the model format's version (``modelFormat.version``).
    :param min_replicas: ``minReplicas`` (0 allows scale to zero).
    :param max_replicas: ``maxReplicas``.
    :param labels: labels of the predictor's pods (tenant labels come from the profile).
    """
    if model_format not in MODEL_FORMATS and not runtime:
        raise DeploymentDefinitionError(
            f"model_format {model_format!r} has no stock KServe runtime; use one of "
            f"{', '.join(MODEL_FORMATS)}, or name your ServingRuntime with runtime="
        )
    if protocol_version not in PROTOCOLS:
        raise DeploymentDefinitionError(f"protocol_version {protocol_version!r}: use one of {PROTOCOLS}")
    for what, value in (("min_replicas", min_replicas), ("max_replicas", max_replicas)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DeploymentDefinitionError(f"{what} is {value!r}; give a whole number, 0 or more")
    if min_replicas is not None and max_replicas is not None and max_replicas < max(min_replicas, 1):
        raise DeploymentDefinitionError(
            f"max_replicas ({max_replicas}) is below min_replicas ({min_replicas}); raise max_replicas"
        )
    model: dict[str, Any] = {
        "modelFormat": {"name": model_format, **({"version": format_version} if format_version else {})},
        "storageUri": storage_uri,
        "protocolVersion": protocol_version,
    }
    if runtime:
        model["runtime"] = runtime
    predictor: dict[str, Any] = {"model": model}
    pod_labels = dict(labels or {})
    if profile is not None:
        pod_labels = {**dict(profile.labels), **pod_labels}
        resources = profile.resources()
        if resources:
            model["resources"] = resources
        model["securityContext"] = profile.container_security_context()
        predictor["securityContext"] = profile.pod_security_context()
        if profile.env:
            model["env"] = podspec.env_list(profile.env)
        if profile.secrets:
            model["envFrom"] = [{"secretRef": {"name": s}} for s in profile.secrets]
        predictor.update(placement(profile))
    else:
        from airflow_mlplatform.compute import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY

        model["securityContext"] = copy.deepcopy(RESTRICTED_CONTAINER_SECURITY)
        predictor["securityContext"] = copy.deepcopy(RESTRICTED_POD_SECURITY)
    if pod_labels:
        predictor["labels"] = pod_labels
    if min_replicas is not None:
        predictor["minReplicas"] = min_replicas
    if max_replicas is not None:
        predictor["maxReplicas"] = max_replicas
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    return predictor


def predictor_digest(predictor: Mapping[str, Any]) -> str:
    """What identifies a predictor's revision: sha256 of its JSON without the canary share (a
    traffic-only change makes no new revision).

    :param predictor: ``spec.predictor``.
    """
    body = {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:20]


def build_inferenceservice(
    *,
    name: str,
    namespace: str,
    predictor: Mapping[str, Any],
    rollout: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole InferenceService manifest (first rollout).

    :param name: its name (:func:`check_name`).
    :param namespace: its namespace.
    :param predictor: :func:`build_predictor`'s result.
    :param rollout: the rollout state (:func:`rollout_state`).
    :param labels: labels of the object (tenant labels, model name and version).
    :param annotations: more annotations (the deploying task's identity).
    """
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": check_name(name),
            "namespace": namespace,
            "labels": dict(labels or {}),
            "annotations": {
                **dict(annotations or {}),
                TAG_ROUTING_ANNOTATION: "true",
                ROLLOUT_ANNOTATION: json.dumps(dict(rollout)),
            },
        },
        "spec": {"predictor": copy.deepcopy(dict(predictor))},
    }


def rollout_state(
    *,
    digest: str,
    model: str,
    phase: str,
    previous: Mapping[str, Any] | None,
    previous_digest: str | None,
    previous_model: str | None,
    by: str,
    rolled_before: str | None = None,
    previous_labels: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The rollout's state, for :data:`ROLLOUT_ANNOTATION`.

    :param digest: :func:`predictor_digest` of the predictor written.
    :param model: what is rolled out (``churn/3`` or the storage URI).
    :param phase: ``rolling-out``, ``promoting``, ``done`` or ``rolled-back``.
    :param previous: the predictor that served before (None: first rollout).
    :param previous_digest: its digest.
    :param previous_model: what it served.
    :param by: the task try that rolls out (``dag/task/run/try``).
    :param rolled_before: the revision that had all traffic before (``latestRolledoutRevision``):
        while it still has, a rollback pins it (see :func:`stop_rollout`).
    :param previous_labels: the values of :data:`MANAGED_LABELS` before (restored on rollback).
    """
    return {
        "digest": digest,
        "model": model,
        "phase": phase,
        "previous": copy.deepcopy(dict(previous)) if previous is not None else None,
        "previous_digest": previous_digest,
        "previous_model": previous_model,
        "by": by,
        "rolled_before": rolled_before,
        "previous_labels": dict(previous_labels or {}),
    }


def read_rollout(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object's rollout state ({} when none: not deployed by this provider, or unreadable).

    :param obj: the InferenceService.
    """
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ROLLOUT_ANNOTATION)
    try:
        state = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def merge_patch_to(current: Any, target: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``current`` into ``target``.

    :param current: the value now.
    :param target: the value wanted.
    """
    if not isinstance(current, Mapping) or not isinstance(target, Mapping):
        return copy.deepcopy(target)
    patch: dict[str, Any] = {}
    for key in current:
        if key not in target:
            patch[key] = None
    for key, value in target.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif current[key] != value:
            patch[key] = merge_patch_to(current[key], value)
    return patch


def predictor_patch(
    obj: Mapping[str, Any], predictor: Mapping[str, Any], rollout: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch that rolls ``obj`` out to ``predictor`` with ``rollout`` as its state,
    guarded by the object's resourceVersion (a concurrent change answers 409).

    :param obj: the InferenceService as read.
    :param predictor: the predictor wanted.
    :param rollout: the new rollout state.
    """
    current = (obj.get("spec") or {}).get("predictor") or {}
    meta = obj.get("metadata") or {}
    return {
        "metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {TAG_ROUTING_ANNOTATION: "true", ROLLOUT_ANNOTATION: json.dumps(dict(rollout))},
        },
        "spec": {"predictor": merge_patch_to(current, dict(predictor))},
    }


def phase_patch(obj: Mapping[str, Any], phase: str) -> dict[str, Any]:
    """The merge patch that only moves the rollout to ``phase``, guarded by the object's
    resourceVersion (a kill's rollback in between answers 409 instead of being overwritten).

    :param obj: the InferenceService as read.
    :param phase: the new phase.
    """
    state = {**read_rollout(obj), "phase": phase}
    return {
        "metadata": {
            "resourceVersion": (obj.get("metadata") or {}).get("resourceVersion"),
            "annotations": {ROLLOUT_ANNOTATION: json.dumps(state)},
        }
    }


def stop_rollout(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """:attr:`JobKind.stop` of an InferenceService: restore the predictor that served before.

    Restoring the old spec makes Knative start a new revision of it; until that one is ready,
    traffic without a canary share goes to the latest *ready* revision, which may be the canary
    that just failed its smoke test. So while the revision that had all traffic before the
    rollout still has it (``rolled_before``), the restored predictor carries
    ``canaryTrafficPercent: 0``: KServe then keeps that revision at 100% ("rollback and pin").
    Once the new revision had taken all traffic, the plain previous predictor is restored.
    The model labels are restored too.

    ``{}`` when no rollout is under way (a deployment is meant to stay); None for a first rollout
    that never served (deleting it leaves the namespace as it was).

    :param obj: the InferenceService as read now.
    """
    state = read_rollout(obj)
    if state.get("phase") not in ACTIVE_PHASES:
        return {}
    previous = state.get("previous")
    if not previous:
        return None
    rolled_now = predictor_status(obj).get("latestRolledoutRevision")
    pinned = {k: v for k, v in previous.items() if k != "canaryTrafficPercent"}
    if state.get("rolled_before") and rolled_now == state.get("rolled_before"):
        pinned["canaryTrafficPercent"] = 0
    restored = {
        **state,
        "phase": "rolled-back",
        "digest": state.get("previous_digest") or predictor_digest(previous),
        "model": state.get("previous_model"),
        "rolled_back_from": state.get("model"),
    }
    current = (obj.get("spec") or {}).get("predictor") or {}
    labels = {k: v for k, v in (state.get("previous_labels") or {}).items() if k in MANAGED_LABELS}
    metadata: dict[str, Any] = {"annotations": {ROLLOUT_ANNOTATION: json.dumps(restored)}}
    if labels:
        metadata["labels"] = labels
    return {"metadata": metadata, "spec": {"predictor": merge_patch_to(current, pinned)}}


def managed_labels(obj: Mapping[str, Any]) -> dict[str, str | None]:
    """The object's :data:`MANAGED_LABELS` now (None for absent ones: a merge patch removes them).

    :param obj: the InferenceService.
    """
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {k: labels.get(k) for k in MANAGED_LABELS}


# ---- reading the object ----------------------------------------------------------------------
def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The status condition of type ``kind`` ({} when absent).

    :param obj: the InferenceService.
    :param kind: ``Ready``, ``PredictorReady``...
    """
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def is_observed(obj: Mapping[str, Any]) -> bool:
    """The controller has seen the object's current spec (``observedGeneration`` >= generation).

    :param obj: the InferenceService.
    """
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is not None and observed is not None and int(observed) >= int(generation)


def isvc_state(obj: Mapping[str, Any]) -> str | None:
    """The rollout's state: ``Ready``, ``FailedToLoad``, ``InvalidSpec``, ``Failed``, ``Loading``,
    ``Updating`` (the controller has not seen the current spec yet), or None (no status at all).

    :param obj: the InferenceService.
    """
    status = obj.get("status") or {}
    if not status:
        return None
    if not is_observed(obj):
        return "Updating"
    model = status.get("modelStatus") or {}
    states = model.get("states") or {}
    if model.get("transitionStatus") == "InvalidSpec":
        return "InvalidSpec"
    if (
        model.get("transitionStatus") == "BlockedByFailedLoad"
        or states.get("targetModelState") == "FailedToLoad"
    ):
        return "FailedToLoad"
    ready = condition(obj, "Ready")
    predictor = predictor_status(obj)
    created, latest = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if ready.get("status") == "True" and (not created or not latest or created == latest):
        return "Ready"
    if ready.get("status") == "False" and ready.get("reason") == "RevisionFailed":
        return "Failed"
    return "Loading"


def isvc_message(obj: Mapping[str, Any]) -> str:
    """Why the rollout is not ready: the model's last failure, else the Ready condition's message.

    :param obj: the InferenceService.
    """
    failure = ((obj.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo") or {}
    if failure.get("message") and isvc_state(obj) in ("FailedToLoad", "InvalidSpec", "Failed"):
        return f"{failure.get('reason') or 'ModelLoadFailed'}: {failure['message']}"
    ready = condition(obj, "Ready")
    if ready.get("status") != "True":
        return " ".join(str(ready[k]) for k in ("reason", "message") if ready.get(k))
    return ""


def predictor_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``status.components.predictor`` ({} when absent).

    :param obj: the InferenceService.
    """
    return dict(((obj.get("status") or {}).get("components") or {}).get("predictor") or {})


def endpoint(obj: Mapping[str, Any]) -> str | None:
    """The InferenceService's URL (``status.url``, else ``status.address.url``).

    :param obj: the InferenceService.
    """
    status = obj.get("status") or {}
    return status.get("url") or ((status.get("address") or {}).get("url")) or None


def revision(obj: Mapping[str, Any]) -> str | None:
    """The latest ready revision of the predictor.

    :param obj: the InferenceService.
    """
    return predictor_status(obj).get("latestReadyRevision") or None


def tag_url(obj: Mapping[str, Any], tag: str) -> str | None:
    """The URL of a tagged traffic target (``latest``: the newest revision; ``prev``: the one
    that served before a canary), or None.

    :param obj: the InferenceService.
    :param tag: the tag.
    """
    for target in predictor_status(obj).get("traffic") or []:
        if target.get("tag") == tag and target.get("url"):
            return str(target["url"])
    return None


def traffic_of(obj: Mapping[str, Any]) -> dict[str, int]:
    """Revision -> traffic percent.

    :param obj: the InferenceService.
    """
    return {
        str(t.get("revisionName")): int(t.get("percent") or 0)
        for t in predictor_status(obj).get("traffic") or []
        if t.get("revisionName")
    }


def isvc_replicas(manifest: Mapping[str, Any]) -> list[Any]:
    """The predictor's pods, for the record's ``usage`` (``minReplicas``, at least 1).

    :param manifest: the InferenceService.
    """
    predictor = (manifest.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    pod = {
        "containers": [{"name": "kserve-container", "resources": model.get("resources") or {}}],
        "nodeSelector": predictor.get("nodeSelector") or {},
    }
    count = max(int(predictor.get("minReplicas") or 1), 1)
    labels = {**((manifest.get("metadata") or {}).get("labels") or {}), **(predictor.get("labels") or {})}
    return [("predictor", count, pod, labels)]


INFERENCESERVICE_KIND = JobKind(
    ref="airflow_mlplatform.specs.inference:INFERENCESERVICE_KIND",
    resource=RESOURCE,
    name_prefix="isvc",
    state=isvc_state,
    # a rollout "starts" when it is over: the start-up timeout is the time to become ready
    started=frozenset({"Ready", "FailedToLoad", "InvalidSpec", "Failed"}),
    succeeded=frozenset({"Ready"}),
    failed=frozenset({"FailedToLoad", "InvalidSpec", "Failed"}),
    message=isvc_message,
    crd_hint="Install KServe (its serving.kserve.io CRDs and controller) in the cluster.",
    controller="KServe (the kserve-controller-manager)",
    pods_selector=f"{ISVC_POD_LABEL}={{name}}",
    replicas=isvc_replicas,
    stop=stop_rollout,
)
