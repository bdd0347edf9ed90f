"""One pod template for every Kubernetes job kind (pod, TFJob replicas, Dask runner/scheduler/workers...).

Pure functions: no client, no server. A job kind's spec module builds its manifest around
:func:`build_pod_template`, so every pod the provider starts gets the same fields from the same
place: image, command, the one environment rule, ``envFrom`` secrets, resources, volumes,
scheduling, service account and the security defaults (the restricted Pod Security Standard unless
the compute profile relaxes it).

Pod fields are a plain snake_case dict (keys in :data:`POD_FIELDS`), so they can come from a
compute profile (:func:`pod_fields`) or be written by hand (a TFJob replica's own fields).

The environment rule, the same for every kind (:func:`merge_env`): the task's variables win over
the profile's, and the provider's own variables (``MLPLATFORM_*``: parameters, output folder...)
win over both; every name appears once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlplatform.compute import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY

#: Names of the variables the provider itself sets in a job (they win over task and profile env).
PROVIDER_ENV_PREFIX = "MLPLATFORM_"
#: Pod fields a template takes (snake_case keys), e.g. from :func:`pod_fields`.
POD_FIELDS = (
    "image",
    "resources",
    "node_selector",
    "tolerations",
    "affinity",
    "priority_class",
    "service_account",
    "env",
    "secrets",
    "labels",
    "annotations",
    "volumes",
    "volume_mounts",
    "pod_security_context",
    "container_security_context",
    "image_pull_policy",
)


def pod_fields(profile: Any, *, kueue_pods: bool = False) -> dict[str, Any]:
    """The pod fields of a :class:`airflow_mlplatform.compute.ComputeProfile` (empty ones left out).

    :param profile: the compute profile.
    :param kueue_pods: the kind's pods carry the profile's Kueue queue label (kinds Kueue admits
        pod by pod: :mod:`airflow_mlplatform.specs.kueue`).
    """
    from airflow_mlplatform.specs.kueue import queue_label

    fields: dict[str, Any] = {
        "image": profile.image,
        "resources": profile.resources(),
        "node_selector": dict(profile.node_selector),
        "tolerations": list(profile.tolerations),
        "affinity": profile.affinity,
        "priority_class": profile.priority_class,
        "service_account": profile.service_account,
        "env": dict(profile.env),
        "secrets": list(profile.secrets),
        "labels": {**profile.labels, **(queue_label(profile) if kueue_pods else {})},
        "annotations": dict(profile.annotations),
        "volumes": list(profile.volumes),
        "volume_mounts": list(profile.volume_mounts),
        "pod_security_context": profile.pod_security_context(),
        "container_security_context": profile.container_security_context(),
        "image_pull_policy": profile.image_pull_policy,
    }
    return {k: v for k, v in fields.items() if v}


def placement(profile: Any, *, service_account_key: str = "serviceAccountName") -> dict[str, Any]:
    """A profile's placement fields, camelCase, as custom resources that embed pod fields name
    them (a SparkApplication's driver, an InferenceService's predictor); empty ones left out.

    :param profile: the compute profile.
    :param service_account_key: the kind's name for the service account field
        (``serviceAccountName``; the Spark operator's ``serviceAccount``).
    """
    fields: dict[str, Any] = {
        service_account_key: profile.service_account,
        "nodeSelector": dict(profile.node_selector),
        "tolerations": [dict(t) for t in profile.tolerations],
        "affinity": dict(profile.affinity) if profile.affinity else None,
        "priorityClassName": profile.priority_class,
        "annotations": dict(profile.annotations),
    }
    return {k: v for k, v in fields.items() if v}


def merge_env(
    profile_env: Mapping[str, Any] | None,
    task_env: Mapping[str, Any] | None = None,
    provider_env: Mapping[str, Any] | None = None,
) -> list[dict[str, str]]:
    """The container's ``env`` list: task over profile, the provider's own variables over both.

    Every name appears once (a later source replaces an earlier one in place). A task variable
    named ``MLPLATFORM_*`` counts as the provider's: it wins over the profile like any task
    variable, and ``provider_env`` still wins over it.

    :param profile_env: the compute profile's ``env``.
    :param task_env: the task's ``env`` (the operator's ``env=`` argument and kind defaults).
    :param provider_env: what the provider sets (``MLPLATFORM_PARAMETERS``...).
    """
    merged: dict[str, str] = {}
    for source in (profile_env or {}, task_env or {}, provider_env or {}):
        for name, value in source.items():
            merged[str(name)] = str(value)
    return [{"name": name, "value": value} for name, value in merged.items()]


def _resources(resources: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {part: {name: str(q) for name, q in values.items()} for part, values in resources.items()}


def build_container(
    pod: Mapping[str, Any],
    *,
    name: str,
    image: str | None = None,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, Any] | None = None,
    provider_env: Mapping[str, Any] | None = None,
    working_dir: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One container from pod fields (the job's container; also a Dask scheduler or worker).

    :param pod: pod fields (:data:`POD_FIELDS`); ``image`` there wins over ``image``.
    :param name: the container's name (some controllers look for a fixed one).
    :param image: the default image.
    :param command: the container's command (entrypoint); None keeps the image's.
    :param args: the container's args.
    :param env: the task's environment variables (see :func:`merge_env`).
    :param provider_env: the provider's own variables.
    :param working_dir: the working directory.
    :param extra: further container keys (ports, probes...), camelCase.
    """
    container: dict[str, Any] = {"name": name, "image": pod.get("image") or image or ""}
    if command:
        container["command"] = [str(c) for c in command]
    if args:
        container["args"] = [str(a) for a in args]
    env_list = merge_env(pod.get("env"), env, provider_env)
    if env_list:
        container["env"] = env_list
    if pod.get("secrets"):
        container["envFrom"] = [{"secretRef": {"name": str(s)}} for s in pod["secrets"]]
    if pod.get("resources"):
        container["resources"] = _resources(pod["resources"])
    if pod.get("volume_mounts"):
        container["volumeMounts"] = [dict(m) for m in pod["volume_mounts"]]
    # restricted unless the pod fields (from the profile) say otherwise; a given context is used as given
    given = pod.get("container_security_context")
    container["securityContext"] = copy.deepcopy(
        dict(RESTRICTED_CONTAINER_SECURITY if given is None else given)
    )
    if pod.get("image_pull_policy"):
        container["imagePullPolicy"] = pod["image_pull_policy"]
    if working_dir:
        container["workingDir"] = working_dir
    container.update(copy.deepcopy(dict(extra or {})))
    return container


def build_pod_template(
    pod: Mapping[str, Any],
    containers: Sequence[Mapping[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    """A pod template ``{"metadata": ..., "spec": ...}`` around containers from :func:`build_container`.

    :param pod: pod fields (scheduling, service account, volumes, security, labels...).
    :param containers: the containers.
    :param labels: labels (task identity...); they win over the pod fields' labels.
    :param annotations: annotations; they win over the pod fields' annotations.
    :param restart_policy: the pod's restartPolicy (None: the controller's default).
    """
    spec: dict[str, Any] = {"containers": [dict(c) for c in containers]}
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    if pod.get("node_selector"):
        spec["nodeSelector"] = {str(k): str(v) for k, v in pod["node_selector"].items()}
    if pod.get("tolerations"):
        spec["tolerations"] = [dict(t) for t in pod["tolerations"]]
    if pod.get("affinity"):
        spec["affinity"] = copy.deepcopy(dict(pod["affinity"]))
    if pod.get("priority_class"):
        spec["priorityClassName"] = pod["priority_class"]
    if pod.get("service_account"):
        spec["serviceAccountName"] = pod["service_account"]
    if pod.get("volumes"):
        spec["volumes"] = [dict(v) for v in pod["volumes"]]
    given_pod = pod.get("pod_security_context")
    spec["securityContext"] = copy.deepcopy(dict(RESTRICTED_POD_SECURITY if given_pod is None else given_pod))
    metadata: dict[str, Any] = {"labels": {**(pod.get("labels") or {}), **(labels or {})}}
    merged_annotations = {**(pod.get("annotations") or {}), **(annotations or {})}
    if merged_annotations:
        metadata["annotations"] = {str(k): str(v) for k, v in merged_annotations.items()}
    return {"metadata": metadata, "spec": spec}
