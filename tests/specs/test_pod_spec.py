"""The pod builder's manifests are valid V1Pods (every field known to the client's models)."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient, V1Pod

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.specs import pod as podspec

IDENTITY = {
    "dag_id": "train",
    "task_id": "fit.model",
    "run_id": "manual__2026-11-23T19:32:35.123456+00:00",
    "map_index": -1,
    "try_number": 2,
}


def to_model(manifest: dict) -> V1Pod:
    """Deserialize into V1Pod and check nothing was dropped (misspelt fields would be)."""
    api = ApiClient()
    model = api._ApiClient__deserialize(manifest, "V1Pod")
    assert api.sanitize_for_serialization(model) == manifest
    return model


def full_profile() -> ComputeProfile:
    return ComputeProfile(
        name="gpu",
        backend="kubernetes",
        image="pytorch:2",
        namespace="ml",
        requests={"cpu": "2", "memory": "8Gi"},
        limits={"memory": "8Gi"},
        gpus=1,
        node_selector={"pool": "gpu"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        priority_class="ml-batch",
        service_account="trainer",
        labels={"tenant": "research"},
        annotations={"cost-centre": "cc-42"},
        env={"A": "1"},
        secrets=["s3-credentials"],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        volume_mounts=[{"name": "data", "mountPath": "/data"}],
        image_pull_policy="IfNotPresent",
        working_dir="/work",
    )


def test_full_manifest_is_a_valid_pod():
    labels = podspec.identity_labels(IDENTITY)
    manifest = podspec.build_pod(
        full_profile(),
        name=podspec.pod_name(IDENTITY),
        command=["python", "-c", "print(1)"],
        args=["--x", 1],
        env={"MLPLATFORM_PARAMETERS": '{"a": 1}', "A": "2"},
        labels=labels,
        annotations=podspec.identity_annotations(IDENTITY),
    )
    pod = to_model(manifest)
    c = pod.spec.containers[0]
    assert c.resources.limits == {"memory": "8Gi", "nvidia.com/gpu": "1"}
    assert c.security_context.capabilities.drop == ["ALL"]
    assert c.security_context.allow_privilege_escalation is False
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    assert {e.name: e.value for e in c.env} == {"A": "2", "MLPLATFORM_PARAMETERS": '{"a": 1}'}
    assert c.env_from[0].secret_ref.name == "s3-credentials"
    assert c.args == ["--x", "1"]
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.priority_class_name == "ml-batch"
    assert pod.metadata.namespace == "ml"
    assert pod.metadata.labels["tenant"] == "research"


def test_minimal_manifest_is_a_valid_pod():
    p = ComputeProfile(name="m", backend="kubernetes", image="busybox")
    manifest = podspec.build_pod(p, name="x", command=["true"])
    pod = to_model(manifest)
    assert pod.metadata.namespace == "default"


@pytest.mark.parametrize(
    "raw",
    ["manual__2026-11-23T19:32:35.123456+00:00", "x" * 80, "-lead", "ok_value", "", "a b/c"],
)
def test_label_values_follow_the_rules(raw):
    import re

    value = podspec.label_value(raw)
    assert len(value) <= 63
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value)


def test_distinct_raw_values_get_distinct_labels():
    assert podspec.label_value("a+b") != podspec.label_value("a:b")
    assert podspec.label_value("x" * 80) != podspec.label_value("x" * 81)


def test_identity_labels_and_raw_annotations():
    labels = podspec.identity_labels(IDENTITY)
    ann = podspec.identity_annotations(IDENTITY)
    assert labels[podspec.label_key("map_index")] == podspec.label_value("-1")
    assert ann[podspec.label_key("run_id")] == IDENTITY["run_id"]
    assert ann[podspec.label_key("try_number")] == "2"
    selector = podspec.identity_selector(IDENTITY)
    assert "try-number" not in selector
    assert podspec.label_key("run_id") in selector


def test_pod_name_is_dns_and_per_try():
    import re

    name = podspec.pod_name(IDENTITY)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert len(name) <= 63
    assert name == podspec.pod_name(dict(IDENTITY))
    assert name != podspec.pod_name({**IDENTITY, "try_number": 3})
