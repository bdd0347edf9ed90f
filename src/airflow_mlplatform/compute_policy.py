"""What DAG authors may change in a compute profile, and within which bounds.

A profile is policy written by platform engineers. DAG authors may override only the fields
its ``overridable`` section lists (default :data:`DEFAULT_OVERRIDABLE`: image, resources, GPUs,
environment, working folder, Spark session), within its bounds::

    profiles:
      gpu-small:
        ...
        overridable:
          fields: [image, requests, limits, gpus, env]   # the default list
          max: {cpu: "8", memory: 64Gi, gpus: 2}         # per resource, requests and limits
          images: [registry.example.com/ml/]             # allowed image prefixes (default: any)

Security context, namespace, service account, secrets, volumes (and host paths in them),
priority class, node placement, the Kueue queue, labels and annotations are never overridable
unless listed.
Also the pure checks of Kubernetes-shaped profile fields (quantities as numbers, resource
names, tolerations, pull policy, security-context combinations the API server refuses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airflow_mlplatform.exceptions import ComputeOverrideError, InvalidQuantityError, ProfilesFileError

#: Fields a DAG author may override when the profile does not say otherwise.
# ``spark`` (the session's master and conf) changes nothing a job's own code could not change.
DEFAULT_OVERRIDABLE = (
    "image",
    "requests",
    "limits",
    "gpus",
    "env",
    "image_pull_policy",
    "working_dir",
    "spark",
)
#: Never overridable (the profile's identity and its policy).
NEVER_OVERRIDABLE = ("backend", "overridable")
#: Pseudo-field: allows ``hostPath`` volumes in an overridden ``volumes``.
HOST_PATH = "host_path"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage", "storage")
_QUALIFIED = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")  # fmt: skip
_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
#: Kubernetes stores quantities as int64 in their canonical unit: larger values do not exist.
MAX_QUANTITY = Decimal(2**63 - 1)
#: A LocalQueue name that is also a label value (DNS-1123 label, dots allowed).
_QUEUE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute", "")


def quantity_value(text: str, *, where: str) -> Decimal:
    """The numeric value of a quantity string already matched by the quantity pattern.

    :param text: e.g. ``"2Gi"``, ``"500m"``, ``"1e3"``.
    :param where: what holds the value, for the message.
    :raises InvalidQuantityError: the value is beyond what Kubernetes can store.
    """
    m = _NUMBER.match(text)
    if m is None:  # pragma: no cover - the caller matched the pattern
        raise InvalidQuantityError(f"{where}: {text!r} is not a Kubernetes quantity")
    number, suffix = Decimal(m.group(0)), text[m.end() :]
    too_big = InvalidQuantityError(
        f"{where}: {text!r} is larger than any Kubernetes quantity (at most 2^63-1 units); "
        'write a real amount such as "64Gi" or "8"'
    )
    if suffix in _BINARY:
        value = number * (Decimal(1024) ** _BINARY[suffix])
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        try:
            exponent = int(suffix[1:])
        except ValueError as e:  # pragma: no cover - the pattern allows digits only
            raise InvalidQuantityError(f"{where}: {text!r} is not a Kubernetes quantity") from e
        if exponent > 30:
            raise too_big
        value = number.scaleb(exponent)
    else:
        value = number.scaleb(_DECIMAL[suffix])
    if value > MAX_QUANTITY:
        raise too_big
    return value


def check_resource_name(name: str, *, where: str) -> str:
    """Return ``name`` if Kubernetes knows it as a container resource, else raise.

    :param name: ``cpu``, ``memory``, ``ephemeral-storage``, ``hugepages-2Mi``, ``nvidia.com/gpu``...
    :param where: the profile and field, for the message.
    """
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-") or _QUALIFIED.match(name):
        return name
    raise ProfilesFileError(
        f"{where}: unknown resource name {name!r}; use cpu, memory, ephemeral-storage, hugepages-<size> "
        "or a vendor resource with its domain (nvidia.com/gpu); GPUs are set with gpus:"
    )


def check_requests_within_limits(
    requests: Mapping[str, str], limits: Mapping[str, str], *, where: str
) -> None:
    """Raise when a request is larger than the limit of the same resource (the API refuses it).

    :param requests: checked quantities by resource.
    :param limits: checked quantities by resource.
    :param where: the profile, for the message.
    """
    for res, q in requests.items():
        if res in limits and quantity_value(q, where=where) > quantity_value(limits[res], where=where):
            raise InvalidQuantityError(
                f"{where}: requests.{res} {q} is larger than limits.{res} {limits[res]}; Kubernetes refuses "
                "such a pod: lower the request or raise the limit"
            )


def check_kubernetes_fields(values: Mapping[str, Any], *, where: str) -> None:
    """Check the Kubernetes-shaped fields of a profile before any API sees them.

    :param values: the profile's fields (lists and mappings already type-checked).
    :param where: the profile, for the message.
    """
    policy = values.get("image_pull_policy")
    if policy is not None and policy not in PULL_POLICIES:
        raise ProfilesFileError(
            f"{where}: field 'image_pull_policy' is {policy!r}; use one of {', '.join(PULL_POLICIES)}"
        )
    for i, t in enumerate(values.get("tolerations") or []):
        if not isinstance(t, Mapping) or set(t) - set(_TOLERATION_KEYS):
            raise ProfilesFileError(
                f"{where}: tolerations[{i}] is {t!r}; a toleration is a mapping of "
                f"{', '.join(_TOLERATION_KEYS)}"
            )
        if t.get("operator", "Equal") not in ("Equal", "Exists") or t.get("effect", "") not in _EFFECTS:
            raise ProfilesFileError(
                f"{where}: tolerations[{i}] {dict(t)!r}: operator is Equal or Exists, effect one of "
                f"{', '.join(e for e in _EFFECTS if e)}"
            )
    for key, needs in (("volumes", "name"), ("volume_mounts", "mountPath")):
        for i, v in enumerate(values.get(key) or []):
            if not isinstance(v, Mapping) or not v.get("name") or not v.get(needs):
                raise ProfilesFileError(
                    f"{where}: {key}[{i}] is {v!r}; each needs 'name'"
                    + (f" and {needs!r}" if needs != "name" else "")
                )


def check_kueue_queue(values: Mapping[str, Any], *, where: str) -> None:
    """Check a profile's ``kueue_queue``: a LocalQueue name (a label value), kubernetes backend only,
    and no Kueue label of its own in ``labels``.

    :param values: the profile's fields.
    :param where: the profile, for the message.
    """
    from airflow_mlplatform.specs.kueue import QUEUE_LABEL

    if QUEUE_LABEL in (values.get("labels") or {}):
        raise ProfilesFileError(
            f"{where}: labels set {QUEUE_LABEL!r}; name the Kueue queue with kueue_queue: instead (the "
            "label must go on the object Kueue reads for each job kind: the TFJob, not its pods)"
        )
    queue = values.get("kueue_queue")
    if queue is None:
        return
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise ProfilesFileError(
            f"{where}: kueue_queue {queue!r} is not a Kueue LocalQueue name; use lower-case letters, "
            "digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters"
        )
    if values.get("backend", "local") != "kubernetes":
        raise ProfilesFileError(
            f"{where}: kueue_queue {queue!r} needs backend: kubernetes (Kueue admits Kubernetes jobs; "
            "a local profile runs in the Airflow worker)"
        )


def check_security_combination(pod: Mapping[str, Any], container: Mapping[str, Any], *, where: str) -> None:
    """Raise for security settings no pod can start with (the kubelet or API server refuses them).

    :param pod: the effective pod securityContext.
    :param container: the effective container securityContext.
    :param where: the profile, for the message.
    """
    for part, ctx in (("pod", pod), ("container", container)):
        non_root = container.get("runAsNonRoot", pod.get("runAsNonRoot"))
        if ctx.get("runAsUser") == 0 and non_root:
            raise ProfilesFileError(
                f"{where}: security_context.{part} sets runAsUser: 0 while runAsNonRoot is true, so the "
                "pod can never start; to run as root say security_context: baseline (or runAsNonRoot: false)"
            )
    if container.get("allowPrivilegeEscalation") is False:
        if container.get("privileged"):
            raise ProfilesFileError(
                f"{where}: security_context.container sets privileged: true with allowPrivilegeEscalation: "
                "false, which Kubernetes refuses; set allowPrivilegeEscalation: true as well"
            )
        added = (container.get("capabilities") or {}).get("add") or []
        if any(str(c).upper().removeprefix("CAP_") == "SYS_ADMIN" for c in added):
            raise ProfilesFileError(
                f"{where}: security_context.container adds SYS_ADMIN with allowPrivilegeEscalation: false, "
                "which Kubernetes refuses; set allowPrivilegeEscalation: true as well"
            )


@dataclass(frozen=True)
class OverridePolicy:
    """What DAG authors may override in one profile.

    :param fields: overridable field names (plus ``host_path`` for hostPath volumes).
    :param max: bound per resource (``cpu``, ``memory``... as quantities, ``gpus`` as a count).
    :param images: allowed image prefixes; empty: any image.
    """

    fields: tuple[str, ...] = DEFAULT_OVERRIDABLE
    max: Mapping[str, Any] = field(default_factory=dict)
    images: tuple[str, ...] = ()

    def check(self, profile: str, overrides: Mapping[str, Any], result: Any) -> None:
        """Raise ComputeOverrideError for the first override this policy refuses.

        :param profile: the profile's name (for the message).
        :param overrides: what the DAG author gave.
        :param result: the profile with the overrides applied (bounds are checked on it).
        """
        allowed = ", ".join(self.fields) or "none"
        for key in overrides:
            if key in NEVER_OVERRIDABLE or key not in self.fields:
                raise ComputeOverrideError(
                    f"compute profile {profile!r} does not let DAG authors override {key!r} (overridable "
                    f"here: {allowed}); ask the platform engineers for a profile that sets it, or to list "
                    f"it under the profile's overridable.fields"
                )
        if "volumes" in overrides and HOST_PATH not in self.fields:
            for v in overrides["volumes"] or []:
                if isinstance(v, Mapping) and "hostPath" in v:
                    raise ComputeOverrideError(
                        f"compute profile {profile!r} does not let DAG authors mount host paths (volume "
                        f"{v.get('name')!r} has hostPath); the profile must list {HOST_PATH!r} in "
                        "overridable.fields"
                    )
        if (
            "image" in overrides
            and self.images
            and not any(str(overrides["image"]).startswith(p) for p in self.images)
        ):
            raise ComputeOverrideError(
                f"compute profile {profile!r} allows images starting with {', '.join(self.images)} only; "
                f"override 'image' {overrides['image']!r} is not one of them"
            )
        where = f"override of compute profile {profile!r}"
        for res, bound in self.max.items():
            if res == "gpus":
                if result.gpus > bound:
                    raise ComputeOverrideError(
                        f"{where}: gpus {result.gpus} is more than the profile's maximum of {bound}"
                    )
                continue
            top = quantity_value(bound, where=where)
            for kind in ("requests", "limits"):
                q = getattr(result, kind).get(res)
                if q is not None and quantity_value(q, where=where) > top:
                    raise ComputeOverrideError(
                        f"{where}: {kind}.{res} {q} is more than the profile's maximum of {bound} "
                        f"(overridable.max.{res})"
                    )


def parse_policy(data: Any, *, known: set[str], where: str) -> OverridePolicy:
    """Build the policy of a profile's ``overridable`` section.

    :param data: the section as read (None: the defaults).
    :param known: the profile's field names (a listed field must be one).
    :param where: the profile, for the message.
    """
    from airflow_mlplatform.compute import check_quantity

    if data is None:
        return OverridePolicy()
    if isinstance(data, OverridePolicy):
        return data
    if not isinstance(data, Mapping) or set(data) - {"fields", "max", "images"}:
        raise ProfilesFileError(
            f"{where}: field 'overridable' must be a mapping with fields (a list), max (resource to "
            f"amount) and images (image prefixes), got {data!r}"
        )
    fields = data.get("fields", list(DEFAULT_OVERRIDABLE))
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ProfilesFileError(f"{where}: overridable.fields must be a list of field names")
    bad = sorted(set(fields) - known - {HOST_PATH} | set(fields) & set(NEVER_OVERRIDABLE))
    if bad:
        raise ProfilesFileError(
            f"{where}: overridable.fields names {', '.join(bad)}, which cannot be overridden; "
            f"overridable fields: {', '.join(sorted(known - set(NEVER_OVERRIDABLE)))}, {HOST_PATH}"
        )
    bounds = data.get("max") or {}
    if not isinstance(bounds, Mapping):
        raise ProfilesFileError(f"{where}: overridable.max must be a mapping of resource to amount")
    checked: dict[str, Any] = {}
    for res, q in bounds.items():
        if res == "gpus":
            if isinstance(q, bool) or not isinstance(q, int) or q < 0:
                raise InvalidQuantityError(f"{where}: overridable.max.gpus must be a whole number, got {q!r}")
            checked[res] = q
        else:
            check_resource_name(str(res), where=f"{where}: overridable.max")
            checked[str(res)] = check_quantity(q, where=f"{where}: overridable.max.{res}")
    images = data.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) and i for i in images):
        raise ProfilesFileError(f"{where}: overridable.images must be a list of image prefixes")
    return OverridePolicy(fields=tuple(fields), max=checked, images=tuple(images))
