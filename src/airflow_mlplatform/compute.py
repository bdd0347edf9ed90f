"""Named compute profiles: where and with what resources a job runs.

Platform engineers define profiles once in a YAML file named by ``[mlplatform] compute_profiles``
(``AIRFLOW__MLPLATFORM__COMPUTE_PROFILES=/path/profiles.yaml``); DAG authors write
``compute="gpu-small"`` and may override single fields. Example file::

    defaults:                      # optional, merged under every profile
      namespace: ml-jobs
      labels: {tenant: research}
    profiles:
      cpu-small:
        backend: kubernetes
        image: python:3.11-slim
        requests: {cpu: "500m", memory: 1Gi}
        limits: {cpu: "1", memory: 2Gi}
      gpu-small:
        backend: kubernetes
        image: nvcr.io/nvidia/pytorch:24.05-py3
        kueue_queue: team-a-gpu       # optional: the Kueue LocalQueue that admits its jobs
        requests: {cpu: "4", memory: 16Gi}
        gpus: 1                    # resource nvidia.com/gpu unless gpu_resource says otherwise
        node_selector: {pool: gpu}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        priority_class: ml-batch
        labels: {cost-centre: cc-42}
      spark-local:
        backend: local
        spark: {master: "local[2]", conf: {spark.sql.shuffle.partitions: "4"}}
      worker:
        backend: local             # run in the Airflow worker

The file is parsed once per path and modification time, so operators can resolve a profile in
``__init__``: an unknown name, a bad quantity or a malformed file fails when the DAG file is
parsed, not when the task runs.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform import config
from airflow_mlplatform.compute_policy import (
    OverridePolicy,
    check_kubernetes_fields,
    check_kueue_queue,
    check_requests_within_limits,
    check_resource_name,
    check_security_combination,
    parse_policy,
    quantity_value,
)
from airflow_mlplatform.exceptions import (
    InvalidQuantityError,
    ProfilesFileError,
    UnknownComputeProfileError,
)
from airflow_mlplatform.spark_settings import check_spark_settings

BACKENDS = ("local", "kubernetes")
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")

#: Restricted pod security (Kubernetes "restricted" Pod Security Standard); a profile relaxes it
#: only by saying so in ``security_context: {pod: {...}, container: {...}}``.
RESTRICTED_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: Named starting points of ``security_context`` (``security_context: baseline`` or
#: ``{preset: baseline, container: {...}}``): ``restricted`` (the default) runs as a non-root user;
#: ``baseline`` lets the image's own user, root included, run (published TensorFlow images run as
#: root) and keeps privilege escalation off, all capabilities dropped and the default seccomp profile.
SECURITY_PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "restricted": (RESTRICTED_POD_SECURITY, RESTRICTED_CONTAINER_SECURITY),
    "baseline": (
        {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}},
        {
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    ),
}


def check_quantity(value: Any, *, where: str) -> str:
    """Return ``value`` as a Kubernetes quantity string, or raise InvalidQuantityError.

    :param value: ``"2Gi"``, ``"500m"``, ``2``, ``0.5``...
    :param where: what holds the value, for the message (``profile 'x' field 'requests.memory'``).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidQuantityError(
            f'{where}: {value!r} is not a Kubernetes quantity; write e.g. "2Gi", "512Mi", "500m" or 2'
        )
    text = str(value).strip()
    if not _QUANTITY.match(text):
        raise InvalidQuantityError(
            f'{where}: {value!r} is not a Kubernetes quantity; write e.g. "2Gi", "512Mi", "500m" or 2'
        )
    quantity_value(text, where=where)
    return text


@dataclass(frozen=True)
class ComputeProfile:
    """Where a job runs and with what resources.

    :param name: the profile's name.
    :param backend: ``local`` (in the Airflow worker) or ``kubernetes`` (in a pod).
    :param image: container image (kubernetes).
    :param namespace: namespace of the pods; None: the connection's namespace, else ``default``.
    :param requests: resource requests, e.g. ``{"cpu": "1", "memory": "2Gi"}``.
    :param limits: resource limits.
    :param gpus: number of GPUs (set as request and limit of ``gpu_resource``).
    :param gpu_resource: the GPU resource name (``nvidia.com/gpu``, ``amd.com/gpu``...).
    :param node_selector: node labels the pod must match.
    :param tolerations: Kubernetes tolerations (camelCase dicts).
    :param affinity: a Kubernetes affinity (camelCase dict).
    :param priority_class: PriorityClass name.
    :param service_account: ServiceAccount name.
    :param labels: extra pod labels (tenant, cost centre...).
    :param annotations: extra pod annotations.
    :param env: environment variables set in the job.
    :param secrets: Secret names whose keys become environment variables (``envFrom``).
    :param volumes: Kubernetes volumes (camelCase dicts).
    :param volume_mounts: Kubernetes volumeMounts of the job container.
    :param security_context: ``{"preset": "restricted"|"baseline", "pod": {...}, "container": {...}}``:
        the preset's settings (default ``restricted``) with ``pod``/``container`` merged over them.
    :param image_pull_policy: ``Always``, ``IfNotPresent`` or ``Never``.
    :param working_dir: working directory of the job container.
    :param spark: the Spark session of the job, ``{"master": "local[2]", "conf": {...}}``
        (see :mod:`airflow_mlplatform.spark_settings`); SparkApplication sizes come from
        ``requests``/``limits``.
    :param kueue_queue: the Kueue LocalQueue that admits the job (the ``kueue.x-k8s.io/queue-name``
        label, on the object of each kind Kueue expects it on: :mod:`airflow_mlplatform.specs.kueue`);
        kubernetes backend only; not overridable unless the profile lists it.
    :param overridable: what DAG authors may override, within which bounds (see
        :mod:`airflow_mlplatform.compute_policy`).
    """

    name: str
    backend: str = "local"
    image: str | None = None
    namespace: str | None = None
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    gpus: int = 0
    gpu_resource: str = DEFAULT_GPU_RESOURCE
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] | None = None
    priority_class: str | None = None
    service_account: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    security_context: Mapping[str, Any] = field(default_factory=dict)
    image_pull_policy: str | None = None
    working_dir: str | None = None
    spark: Mapping[str, Any] = field(default_factory=dict)
    kueue_queue: str | None = None
    overridable: OverridePolicy = field(default_factory=OverridePolicy)

    @property
    def is_kubernetes(self) -> bool:
        """Whether jobs with this profile run in a Kubernetes pod."""
        return self.backend == "kubernetes"

    def resources(self) -> dict[str, dict[str, str]]:
        """Kubernetes container ``resources`` (requests and limits, GPUs included)."""
        requests = dict(self.requests)
        limits = dict(self.limits)
        if self.gpus:
            requests[self.gpu_resource] = str(self.gpus)
            limits[self.gpu_resource] = str(self.gpus)
        out: dict[str, dict[str, str]] = {}
        if requests:
            out["requests"] = requests
        if limits:
            out["limits"] = limits
        return out

    def pod_security_context(self) -> dict[str, Any]:
        """The pod securityContext: the preset (restricted by default), overlaid by the ``pod`` part."""
        preset = SECURITY_PRESETS[str(self.security_context.get("preset", "restricted"))][0]
        return {**copy.deepcopy(preset), **dict(self.security_context.get("pod") or {})}

    def container_security_context(self) -> dict[str, Any]:
        """The container securityContext: the preset, overlaid by the ``container`` part."""
        preset = SECURITY_PRESETS[str(self.security_context.get("preset", "restricted"))][1]
        return {**copy.deepcopy(preset), **dict(self.security_context.get("container") or {})}

    def with_overrides(self, **overrides: Any) -> ComputeProfile:
        """A copy with single fields replaced, if the profile's policy allows each (checked like the
        file's fields).

        :param overrides: field name to new value.
        :raises ComputeOverrideError: a field the profile does not let DAG authors override, an
            image outside its allowed prefixes, or an amount above its maximum.
        """
        if not overrides:
            return self
        unknown = sorted(set(overrides) - _FIELDS)
        if unknown:
            raise ProfilesFileError(
                f"overrides of compute profile {self.name!r}: unknown field(s) {', '.join(unknown)}; "
                f"known fields: {', '.join(sorted(_FIELDS - {'name'}))}"
            )
        self.overridable.check(self.name, overrides, self)  # refuse before building anything
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.update(overrides)
        result = build_profile(self.name, data, where=f"overrides of compute profile {self.name!r}")
        self.overridable.check(self.name, overrides, result)
        return result


_FIELDS = {f.name for f in dataclasses.fields(ComputeProfile)}
_MAPPINGS = ("requests", "limits", "node_selector", "labels", "annotations", "env")
_LISTS = ("tolerations", "secrets", "volumes", "volume_mounts")


def build_profile(name: str, data: Mapping[str, Any], *, where: str) -> ComputeProfile:
    """Check one profile's fields and build it.

    :param name: the profile's name.
    :param data: the profile's fields as read from YAML (or overrides).
    :param where: where the data came from, for error messages.
    """
    if not isinstance(data, Mapping):
        raise ProfilesFileError(f"{where}: profile {name!r} must be a mapping of fields, got {data!r}")
    unknown = sorted(set(data) - _FIELDS - {"name"})
    if unknown:
        raise ProfilesFileError(
            f"{where}: profile {name!r} has unknown field(s) {', '.join(unknown)}; "
            f"known fields: {', '.join(sorted(_FIELDS - {'name'}))}"
        )
    values = {k: v for k, v in data.items() if k != "name"}
    backend = values.get("backend", "local")
    if backend not in BACKENDS:
        raise ProfilesFileError(
            f"{where}: profile {name!r} field 'backend' is {backend!r}; use one of {', '.join(BACKENDS)}"
        )
    for key in _MAPPINGS:
        if values.get(key) is None:
            values.pop(key, None)
        elif not isinstance(values[key], Mapping):
            raise ProfilesFileError(f"{where}: profile {name!r} field {key!r} must be a mapping")
    for key in _LISTS:
        if values.get(key) is None:
            values.pop(key, None)
        elif not isinstance(values[key], list):
            raise ProfilesFileError(f"{where}: profile {name!r} field {key!r} must be a list")
    for key in ("requests", "limits"):
        if key in values:
            values[key] = {
                str(res): check_quantity(q, where=f"{where}: profile {name!r} field '{key}.{res}'")
                for res, q in values[key].items()
            }
    gpus = values.get("gpus", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise InvalidQuantityError(
            f"{where}: profile {name!r} field 'gpus' is {gpus!r}; give a whole number of GPUs (0, 1, 2...)"
        )
    for key in ("labels", "annotations", "env", "node_selector"):
        if key in values:
            values[key] = {str(k): str(v) for k, v in values[key].items()}
    for key in ("requests", "limits"):
        for res in values.get(key, {}):
            check_resource_name(res, where=f"{where}: profile {name!r} field {key!r}")
    check_requests_within_limits(
        values.get("requests", {}), values.get("limits", {}), where=f"{where}: profile {name!r}"
    )
    check_kubernetes_fields(values, where=f"{where}: profile {name!r}")
    check_kueue_queue(values, where=f"{where}: profile {name!r}")
    if "security_context" in values:
        values["security_context"] = _security_context(
            values["security_context"], where=f"{where}: profile {name!r}"
        )
    if values.get("spark") is None:
        values.pop("spark", None)
    else:
        values["spark"] = check_spark_settings(values["spark"], where=f"{where}: profile {name!r}")
    values["overridable"] = parse_policy(
        values.get("overridable"), known=_FIELDS - {"name"}, where=f"{where}: profile {name!r}"
    )
    if backend == "kubernetes" and not values.get("image"):
        raise ProfilesFileError(
            f"{where}: profile {name!r} has backend kubernetes but no 'image'; add the container image"
        )
    profile = ComputeProfile(name=name, **values)
    check_security_combination(
        profile.pod_security_context(),
        profile.container_security_context(),
        where=f"{where}: profile {name!r}",
    )
    return profile


def _security_context(value: Any, *, where: str) -> dict[str, Any]:
    """``security_context`` as ``{"preset": ..., "pod": {...}, "container": {...}}``, checked."""
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, Mapping):
        raise ProfilesFileError(
            f"{where}: field 'security_context' must be a preset name ({', '.join(SECURITY_PRESETS)}) or a "
            "mapping with preset, pod and container"
        )
    extra = sorted(set(value) - {"preset", "pod", "container"})
    if extra:
        raise ProfilesFileError(
            f"{where}: field 'security_context' may hold only 'preset', 'pod' and 'container', not "
            f"{', '.join(map(str, extra))}"
        )
    preset = value.get("preset", "restricted")
    if preset not in SECURITY_PRESETS:
        raise ProfilesFileError(
            f"{where}: security_context preset {preset!r} is unknown; use one of {', '.join(SECURITY_PRESETS)}"
        )
    for part in ("pod", "container"):
        if value.get(part) is not None and not isinstance(value[part], Mapping):
            raise ProfilesFileError(f"{where}: security_context.{part} must be a mapping")
    return {"preset": preset, **{k: dict(value[k]) for k in ("pod", "container") if value.get(k)}}


_CACHE: dict[tuple[str, float], dict[str, ComputeProfile]] = {}


def profiles_path() -> str | None:
    """The configured profiles file (``[mlplatform] compute_profiles``), or None."""
    return config.get_option("compute_profiles")


def load_profiles(path: str | None = None) -> dict[str, ComputeProfile]:
    """All profiles of the profiles file, parsed once per path and modification time.

    :param path: the YAML file; default ``[mlplatform] compute_profiles``.
    """
    path = path or profiles_path()
    if not path:
        return {}
    try:
        mtime = os.stat(path).st_mtime
    except OSError as e:
        raise ProfilesFileError(
            f"compute profiles file {path} (from [mlplatform] compute_profiles) cannot be read: {e}"
        ) from e
    key = (os.path.abspath(path), mtime)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _parse_file(path)
    return _CACHE[key]


def _parse_file(path: str) -> dict[str, ComputeProfile]:
    import yaml

    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ProfilesFileError(f"compute profiles file {path} is not valid YAML: {e}") from e
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("profiles", {}), Mapping):
        raise ProfilesFileError(
            f"compute profiles file {path}: the top level must be a mapping with a 'profiles' mapping "
            "(and optional 'defaults')"
        )
    extra = sorted(set(doc) - {"profiles", "defaults"})
    if extra:
        raise ProfilesFileError(
            f"compute profiles file {path}: unknown top-level key(s) {', '.join(map(str, extra))}; "
            "only 'profiles' and 'defaults' are allowed"
        )
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise ProfilesFileError(f"compute profiles file {path}: 'defaults' must be a mapping")
    profiles = {}
    for name, data in (doc.get("profiles") or {}).items():
        if not isinstance(data, Mapping):
            raise ProfilesFileError(
                f"compute profiles file {path}: profile {name!r} must be a mapping of fields, got {data!r}"
            )
        merged = {**defaults, **data}
        for key in ("labels", "annotations", "env"):
            if isinstance(defaults.get(key), Mapping) and isinstance(data.get(key), Mapping):
                merged[key] = {**defaults[key], **data[key]}
        profiles[str(name)] = build_profile(str(name), merged, where=f"compute profiles file {path}")
    return profiles


def get_profile(name: str, path: str | None = None, **overrides: Any) -> ComputeProfile:
    """The profile ``name`` with single fields overridden.

    :param name: a profile defined in the profiles file.
    :param path: the profiles file; default ``[mlplatform] compute_profiles``.
    :param overrides: fields to replace (``image=``, ``requests=``, ``gpus=``...).
    :raises UnknownComputeProfileError: listing the known profiles.
    """
    profiles = load_profiles(path)
    if name not in profiles:
        where = path or profiles_path()
        if not where:
            raise UnknownComputeProfileError(
                f"compute profile {name!r} is unknown: no profiles file is configured; set "
                "[mlplatform] compute_profiles (AIRFLOW__MLPLATFORM__COMPUTE_PROFILES) to a YAML file "
                "that defines it"
            )
        known = ", ".join(sorted(profiles)) or "none"
        raise UnknownComputeProfileError(
            f"compute profile {name!r} is not defined in {where}; known profiles: {known}"
        )
    return profiles[name].with_overrides(**overrides)


def resolve_compute(
    compute: str | ComputeProfile | None, overrides: Mapping[str, Any] | None = None
) -> ComputeProfile | None:
    """What an operator calls in ``__init__``: None (run in the worker) or the profile to use.

    Cheap (the file is cached by path and mtime), so an unknown name fails at DAG parse time.

    :param compute: a profile name, a ComputeProfile, or None.
    :param overrides: single fields to override.
    """
    if compute is None:
        if overrides:
            raise UnknownComputeProfileError(
                f"compute_overrides {sorted(overrides)} were given without compute=; name a profile"
            )
        return None
    if isinstance(compute, ComputeProfile):
        return compute.with_overrides(**dict(overrides or {}))
    if not isinstance(compute, str):
        raise UnknownComputeProfileError(
            f"compute must be a profile name or a ComputeProfile, got {type(compute).__name__}"
        )
    return get_profile(compute, **dict(overrides or {}))
