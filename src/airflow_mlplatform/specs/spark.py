"""Build a ``sparkoperator.k8s.io/v1beta2`` SparkApplication (a camelCase dict) from compute profiles.

Pure functions: no client, no server; tests validate the result against the CRD's schema.
The driver's and the executors' sizes come from compute profiles (``requests``/``limits``
cpu and memory, ``gpus``), as do the image, service account, node selector, tolerations,
affinity, priority class, volumes, security context and labels (tenant, cost centre: the
driver and executor pods carry them, for billing). The profile's ``spark.conf`` becomes
``sparkConf``. Parameters reach the driver as JSON in ``MLPLATFORM_PARAMETERS``.

Kubernetes quantities become Spark's own units: ``cores`` is a whole number of cores (at least
1) with the exact request in ``coreRequest``; ``memory`` is in MiB (``"2Gi"`` -> ``"2048m"``),
to which Spark adds its memory overhead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.exceptions import JobDefinitionError
from airflow_mlplatform.hooks.kubernetes import Resource
from airflow_mlplatform.specs.kinds import JobKind
from airflow_mlplatform.specs.kueue import queue_label
from airflow_mlplatform.specs.pod_template import merge_env, placement

API_VERSION = "sparkoperator.k8s.io/v1beta2"
KIND = "SparkApplication"
#: The container of the driver pod (``{name}-driver``) whose log is the job's output.
DRIVER_CONTAINER = "spark-kubernetes-driver"
APP_TYPES = ("Python", "Scala", "Java", "R")
DEFAULT_SPARK_VERSION = "3.5.5"
#: Seconds a finished SparkApplication is kept before the Spark operator deletes it.
DEFAULT_TTL_SECONDS = 86400
PARAMETERS_ENV = "MLPLATFORM_PARAMETERS"
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
_QUANTITY = re.compile(r"^([+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")


def quantity_value(quantity: Any, *, where: str) -> float:
    """A Kubernetes quantity (``"500m"``, ``"2Gi"``, ``2``) as a number (cores or bytes).

    :param quantity: the quantity.
    :param where: what holds it, for the message.
    """
    match = _QUANTITY.match(str(quantity).strip())
    if isinstance(quantity, bool) or not match:
        raise JobDefinitionError(
            f'{where}: {quantity!r} is not a Kubernetes quantity; write e.g. "2Gi" or "500m"'
        )
    number, suffix = float(match.group(1)), match.group(2) or ""
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def spark_memory(quantity: Any, *, where: str) -> str:
    """A Kubernetes memory quantity as a Spark memory size in MiB (``"2Gi"`` -> ``"2048m"``).

    :param quantity: the memory quantity.
    :param where: what holds it, for the message.
    """
    size = quantity_value(quantity, where=where)
    if size < 2**20:
        raise JobDefinitionError(f"{where}: {quantity!r} is less than 1 MiB; give the memory in Mi or Gi")
    return f"{math.ceil(size / 2**20)}m"


def app_type(main_file: str, declared: str | None = None) -> str:
    """The application's ``type``: ``declared``, else from the main file's extension.

    :param main_file: the main application file (``local:///app/job.py``, ``s3a://.../job.jar``).
    :param declared: ``Python``, ``Scala``, ``Java`` or ``R`` (case-insensitive), or None.
    """
    if declared is not None:
        for known in APP_TYPES:
            if declared.lower() == known.lower():
                return known
        raise JobDefinitionError(
            f"application type {declared!r} is unknown; use one of {', '.join(APP_TYPES)}"
        )
    suffix = main_file.rsplit(".", 1)[-1].lower() if "." in main_file else ""
    inferred = {"py": "Python", "r": "R", "jar": "Scala"}.get(suffix)
    if inferred is None:
        raise JobDefinitionError(
            f"cannot tell the application type of {main_file!r} from its extension; pass "
            f"application_type= one of {', '.join(APP_TYPES)}"
        )
    return inferred


def role_spec(
    profile: ComputeProfile,
    *,
    role: str,
    labels: Mapping[str, str],
    env: Mapping[str, Any] | None = None,
    provider_env: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``driver`` or ``executor`` section for one compute profile.

    :param profile: the role's compute profile.
    :param role: ``driver`` or ``executor`` (for messages).
    :param labels: labels of the role's pods (task identity; the profile's labels are added).
    :param env: the task's environment variables (they win over the profile's).
    :param provider_env: the provider's own variables (they win over both).
    """
    where = f"compute profile {profile.name!r} ({role})"
    # no Kueue integration for SparkApplication: its pods carry the queue (specs/kueue.py)
    spec: dict[str, Any] = {"labels": {**dict(profile.labels), **queue_label(profile), **dict(labels)}}
    cpu = profile.requests.get("cpu") or profile.limits.get("cpu")
    if cpu is not None:
        spec["cores"] = max(1, math.ceil(quantity_value(cpu, where=f"{where} cpu")))
        spec["coreRequest"] = str(cpu)
    if profile.limits.get("cpu"):
        spec["coreLimit"] = str(profile.limits["cpu"])
    memory = profile.requests.get("memory") or profile.limits.get("memory")
    if memory is not None:
        spec["memory"] = spark_memory(memory, where=f"{where} memory")
    if profile.gpus:
        spec["gpu"] = {"name": profile.gpu_resource, "quantity": profile.gpus}
    if profile.image:
        spec["image"] = profile.image
    spec.update(placement(profile, service_account_key="serviceAccount"))
    env_list = merge_env(profile.env, env, provider_env)
    if env_list:
        spec["env"] = env_list
    if profile.secrets:
        spec["envFrom"] = [{"secretRef": {"name": s}} for s in profile.secrets]
    if profile.volume_mounts:
        spec["volumeMounts"] = [dict(m) for m in profile.volume_mounts]
    spec["podSecurityContext"] = profile.pod_security_context()
    spec["securityContext"] = profile.container_security_context()
    return spec


def build_sparkapplication(
    *,
    name: str,
    namespace: str,
    profile: ComputeProfile,
    main_file: str,
    application_type: str | None = None,
    main_class: str | None = None,
    arguments: Sequence[Any] = (),
    parameters_json: str | None = None,
    executor_profile: ComputeProfile | None = None,
    executors: int = 1,
    spark_conf: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    provider_env: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    spark_version: str = DEFAULT_SPARK_VERSION,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    python_version: str | None = None,
) -> dict[str, Any]:
    """The SparkApplication manifest.

    :param name: the object's name (the driver pod is ``{name}-driver``).
    :param namespace: its namespace.
    :param profile: the driver's compute profile (also the executors' unless ``executor_profile``).
    :param main_file: the main application file, e.g. ``local:///app/job.py`` or ``s3a://b/job.jar``.
    :param application_type: ``Python``, ``Scala``, ``Java`` or ``R``; default: from ``main_file``.
    :param main_class: the main class (Scala and Java applications).
    :param arguments: the application's arguments.
    :param parameters_json: the job's parameters as JSON (``MLPLATFORM_PARAMETERS`` of the driver).
    :param executor_profile: the executors' compute profile.
    :param executors: number of executors.
    :param spark_conf: Spark properties; they win over the profile's ``spark.conf``.
    :param env: the task's environment variables (driver and executors).
    :param provider_env: the provider's own variables (driver).
    :param labels: labels of the object and its pods (task identity).
    :param annotations: annotations of the object (raw task identity).
    :param spark_version: the image's Spark version.
    :param ttl_seconds: ``timeToLiveSeconds``: how long the finished object is kept.
    :param python_version: ``pythonVersion`` (``"3"``) for Python applications.
    """
    kind = app_type(main_file, application_type)
    if kind in ("Scala", "Java") and not main_class:
        raise JobDefinitionError(
            f"a {kind} application needs main_class= (the class with main()) for {main_file!r}"
        )
    if isinstance(executors, bool) or not isinstance(executors, int) or executors < 1:
        raise JobDefinitionError(f"executors is {executors!r}; give a whole number of executors, at least 1")
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 1:
        raise JobDefinitionError(f"ttl_seconds is {ttl_seconds!r}; give whole seconds, at least 1")
    if not profile.image:
        raise JobDefinitionError(
            f"compute profile {profile.name!r} has no image; a SparkApplication needs a Spark image "
            "(set image in the profile or in compute_overrides)"
        )
    labels = dict(labels or {})
    driver_env = {
        **({PARAMETERS_ENV: parameters_json} if parameters_json is not None else {}),
        **(provider_env or {}),
    }
    driver = role_spec(profile, role="driver", labels=labels, env=env, provider_env=driver_env)
    executor = role_spec(executor_profile or profile, role="executor", labels=labels, env=env)
    executor["instances"] = executors
    conf = {
        **dict((profile.spark or {}).get("conf") or {}),
        **{str(k): str(v) for k, v in (spark_conf or {}).items()},
    }
    spec: dict[str, Any] = {
        "type": kind,
        "mode": "cluster",
        "image": profile.image,
        "sparkVersion": spark_version,
        "mainApplicationFile": main_file,
        "restartPolicy": {"type": "Never"},  # Airflow's retries, each with its own object
        "timeToLiveSeconds": ttl_seconds,
        "driver": driver,
        "executor": executor,
    }
    if main_class:
        spec["mainClass"] = main_class
    if arguments:
        spec["arguments"] = [str(a) for a in arguments]
    if conf:
        spec["sparkConf"] = conf
    if profile.image_pull_policy:
        spec["imagePullPolicy"] = profile.image_pull_policy
    if profile.volumes:
        spec["volumes"] = [dict(v) for v in profile.volumes]
    if kind == "Python" and python_version:
        spec["pythonVersion"] = python_version
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {**dict(profile.labels), **labels},
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def application_state(obj: Mapping[str, Any]) -> str | None:
    """``status.applicationState.state`` (None while the Spark operator has not set it).

    :param obj: the SparkApplication as the API returns it.
    """
    return ((obj.get("status") or {}).get("applicationState") or {}).get("state") or None


def error_message(obj: Mapping[str, Any]) -> str:
    """``status.applicationState.errorMessage``, or "".

    :param obj: the SparkApplication as the API returns it.
    """
    return ((obj.get("status") or {}).get("applicationState") or {}).get("errorMessage") or ""


def driver_pod(name: str, obj: Mapping[str, Any]) -> str:
    """The driver pod's name: ``status.driverInfo.podName``, else ``{name}-driver``.

    :param name: the SparkApplication's name.
    :param obj: the SparkApplication as the API returns it.
    """
    return ((obj.get("status") or {}).get("driverInfo") or {}).get("podName") or f"{name}-driver"


def submission_failure(obj: Mapping[str, Any]) -> str | None:
    """Why the Spark operator could not submit the application (no driver ever ran), else None.

    :param obj: the SparkApplication as the API returns it.
    """
    if application_state(obj) != "SUBMISSION_FAILED":
        return None
    return "SUBMISSION_FAILED: " + (
        error_message(obj) or "the Spark operator could not submit the application"
    )


def _spark_memory_quantity(value: Any) -> str | None:
    """Spark's ``512m``/``2g`` as a Kubernetes quantity (``512Mi``/``2Gi``)."""
    if value is None:
        return None
    text = str(value).strip()
    units = {"k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti", "p": "Pi"}
    unit = text[-1:].lower()
    if unit in units and text[:-1].replace(".", "", 1).isdigit():
        return text[:-1] + units[unit]
    if unit == "b" and text[-2:-1].lower() in units:
        return text[:-2] + units[text[-2:-1].lower()]
    return text


def spark_replicas(manifest: Mapping[str, Any]) -> list[Any]:
    """The driver and the executors (cores, memory with overhead, GPUs), for the record's ``usage``.

    :param manifest: the SparkApplication.
    """
    spec = manifest.get("spec") or {}
    out = []
    for role, count in (("driver", 1), ("executor", int((spec.get("executor") or {}).get("instances") or 1))):
        part = spec.get(role) or {}
        requests: dict[str, Any] = {}
        cpu = part.get("coreRequest") or part.get("cores")
        if cpu is not None:
            requests["cpu"] = str(cpu)
        memory = _spark_memory_quantity(part.get("memory"))
        if memory is not None:
            requests["memory"] = memory
        gpu = part.get("gpu") or {}
        if gpu.get("name") and gpu.get("quantity"):
            requests[str(gpu["name"])] = str(gpu["quantity"])
        pod = {
            "containers": [{"resources": {"requests": requests}}],
            "nodeSelector": part.get("nodeSelector") or {},
        }
        out.append((role, count, pod, part.get("labels") or {}))
    return out


#: The SparkApplication kind of the one job lifecycle (``runners.kube_job.KubeJob``).
SPARK_KIND = JobKind(
    ref="airflow_mlplatform.specs.spark:SPARK_KIND",
    resource=Resource("sparkoperator.k8s.io", "v1beta2", "sparkapplications", KIND),
    name_prefix="spark",
    state=application_state,
    started=frozenset({"RUNNING", "SUCCEEDING", "FAILING", "COMPLETED", "FAILED", "UNKNOWN"}),
    succeeded=frozenset({"COMPLETED"}),
    failed=frozenset({"FAILED", "SUBMISSION_FAILED", "UNKNOWN"}),
    message=error_message,
    fatal=submission_failure,
    log_pod=driver_pod,
    log_container=DRIVER_CONTAINER,
    earlier_try="adopt",
    name_slug=20,
    crd_hint=(
        "the Spark operator is not installed there (or not its SparkApplication CRD). Install "
        "kubeflow/spark-operator (its Helm chart), or run the application in the worker (a local compute profile)."
    ),
    controller="the Spark operator (kubeflow/spark-operator)",
    pods_selector="sparkoperator.k8s.io/app-name={name}",
    replicas=spark_replicas,
)
