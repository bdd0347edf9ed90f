"""Build a pod manifest (a plain dict, camelCase as the API wants it) from a compute profile.

Pure functions: no client, no server. Tests validate the result by deserializing it into the
kubernetes client's V1Pod model.

Every pod carries the identity of the Airflow task try that started it as labels (sanitised to
label-value rules) and annotations (raw values), so a restarted task finds and re-attaches to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.specs import kueue, pod_template

LABEL_PREFIX = "mlplatform.airflow.apache.org"
MANAGED_BY = {"app.kubernetes.io/managed-by": "airflow-mlplatform"}
#: The identity fields a pod is found by (try_number is labelled too, but a new try re-attaches).
IDENTITY_KEYS = ("dag_id", "task_id", "run_id", "map_index")
CONTAINER_NAME = "job"
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.\-]")
_NAME_BAD = re.compile(r"[^a-z0-9\-]")


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def label_value(raw: object) -> str:
    """``raw`` as a valid label value (<= 63 chars, alphanumeric at both ends).

    Altered values get a short hash of the raw value appended, so two different raw values
    never share a label value.

    :param raw: any value (str() is taken).
    """
    text = str(raw)
    clean = _LABEL_VALUE_BAD.sub("_", text)
    if clean == text and len(clean) <= 63 and (not clean or (clean[0].isalnum() and clean[-1].isalnum())):
        return clean
    body = clean[:54].strip("_.-")
    return f"{body}-{_digest(text)}" if body else _digest(text)


def label_key(field: str) -> str:
    """The label (and annotation) key of one identity field.

    :param field: ``dag_id``, ``task_id``, ``run_id``, ``map_index`` or ``try_number``.
    """
    return f"{LABEL_PREFIX}/{field.replace('_', '-')}"


def identity_labels(identity: Mapping[str, Any]) -> dict[str, str]:
    """Labels for the task identity (dag_id, task_id, run_id, map_index, try_number).

    :param identity: as returned by ``execution_record.task_identity``.
    """
    labels = dict(MANAGED_BY)
    for field in (*IDENTITY_KEYS, "try_number"):
        if identity.get(field) is not None:
            labels[label_key(field)] = label_value(identity[field])
    return labels


def identity_annotations(identity: Mapping[str, Any]) -> dict[str, str]:
    """Annotations holding the raw identity values.

    :param identity: the task identity.
    """
    return {
        label_key(field): str(identity[field])
        for field in (*IDENTITY_KEYS, "try_number")
        if identity.get(field) is not None
    }


def identity_selector(identity: Mapping[str, Any]) -> str:
    """Label selector matching every try of the task (all identity fields but try_number).

    :param identity: the task identity.
    """
    labels = identity_labels(identity)
    keys = [*MANAGED_BY, *(label_key(f) for f in IDENTITY_KEYS if identity.get(f) is not None)]
    return ",".join(f"{k}={labels[k]}" for k in keys)


def pod_name(identity: Mapping[str, Any], prefix: str = "mlp") -> str:
    """A deterministic DNS-1123 pod name for one task try (<= 63 chars).

    :param identity: the task identity (try_number included: each try gets its own pod).
    :param prefix: name prefix.
    """
    raw = "|".join(str(identity.get(f)) for f in (*IDENTITY_KEYS, "try_number"))
    slug = _NAME_BAD.sub("-", str(identity.get("task_id", "job")).lower()).strip("-")
    slug = re.sub(r"-+", "-", slug)[:40].strip("-") or "job"
    return f"{prefix}-{slug}-{_digest(raw, 10)}"


def env_list(env: Mapping[str, Any]) -> list[dict[str, str]]:
    """``[{"name": k, "value": v}]`` from a mapping (values as strings).

    :param env: variable name to value.
    """
    return [{"name": str(k), "value": str(v)} for k, v in env.items()]


def build_pod(
    profile: ComputeProfile,
    *,
    name: str,
    command: Sequence[str],
    args: Sequence[str] | None = None,
    env: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    namespace: str | None = None,
    working_dir: str | None = None,
) -> dict[str, Any]:
    """A pod manifest that runs ``command`` once with the profile's image and resources.

    :param profile: the compute profile (image, resources, scheduling, security).
    :param name: the pod's name.
    :param command: the container's command (entrypoint).
    :param args: the container's args.
    :param env: the task's environment variables; they win over the profile's ``env`` (the one
        rule of :func:`airflow_mlplatform.specs.pod_template.merge_env`; the provider's own
        ``MLPLATFORM_*`` variables are set last by the operators).
    :param labels: extra labels (identity labels, ...); they win over the profile's.
    :param annotations: extra annotations.
    :param namespace: the namespace; default the profile's, else ``default``.
    :param working_dir: working directory; default the profile's.
    """
    fields = pod_template.pod_fields(profile)
    container = pod_template.build_container(
        fields,
        name=CONTAINER_NAME,
        image=profile.image,
        command=command,
        args=args,
        env=env,
        working_dir=working_dir or profile.working_dir,
    )
    template = pod_template.build_pod_template(fields, [container], restart_policy="Never")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace or profile.namespace or "default",
            "labels": {**profile.labels, **kueue.queue_label(profile), **(labels or {})},
            "annotations": {**profile.annotations, **(annotations or {})},
        },
        "spec": template["spec"],
    }
