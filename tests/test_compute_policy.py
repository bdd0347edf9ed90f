"""Compute profiles as policy: what DAG authors may override, bounds, Kubernetes-shaped checks."""

from __future__ import annotations

import pytest

from airflow_mlplatform import compute
from airflow_mlplatform.exceptions import ComputeProfileError, InvalidQuantityError, ProfilesFileError

PROFILES = """
profiles:
  restricted:
    backend: kubernetes
    image: registry.example.com/ml/python:3.11
    requests: {cpu: 500m, memory: 1Gi}
    limits: {cpu: "1", memory: 2Gi}
    service_account: trainer
  bounded:
    backend: kubernetes
    image: registry.example.com/ml/python:3.11
    overridable:
      fields: [image, requests, limits, gpus, volumes]
      max: {cpu: "4", memory: 8Gi, gpus: 1}
      images: [registry.example.com/ml/]
  tf-root:
    backend: kubernetes
    image: tensorflow/tensorflow:2.16.1
    security_context: baseline
"""

HOSTILE = {
    "security_context": {"container": {"runAsUser": 0, "runAsNonRoot": False, "privileged": True,
                                       "capabilities": {"add": ["SYS_ADMIN"]}}},
    "namespace": "kube-system",
    "service_account": "cluster-admin",
    "secrets": ["other-team-credentials"],
    "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    "volume_mounts": [{"name": "root", "mountPath": "/host"}],
    "node_selector": {"node-role.kubernetes.io/control-plane": ""},
    "tolerations": [{"operator": "Exists"}],
    "priority_class": "system-node-critical",
    "affinity": {"nodeAffinity": {}},
    "labels": {"tenant": "someone-else"},
    "backend": "local",
}  # fmt: skip


@pytest.fixture
def profiles_file(tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


@pytest.mark.parametrize("field", sorted(HOSTILE))
def test_sensitive_fields_are_not_overridable_by_default(profiles_file, field):
    with pytest.raises(
        ComputeProfileError, match=rf"'restricted' does not let DAG authors override '{field}'"
    ):
        compute.resolve_compute("restricted", {field: HOSTILE[field]})


def test_resource_overrides_still_work_by_default(profiles_file):
    p = compute.resolve_compute("restricted", {"requests": {"memory": "2Gi"}, "gpus": 1, "env": {"A": "1"}})
    assert p is not None and p.requests == {"memory": "2Gi"} and p.gpus == 1
    assert p.container_security_context()["runAsNonRoot"] is True
    assert p.service_account == "trainer"


def test_bounds_and_image_prefixes(profiles_file):
    assert compute.resolve_compute("bounded", {"limits": {"cpu": "4", "memory": "8Gi"}, "gpus": 1})
    with pytest.raises(ComputeProfileError, match=r"'bounded'.*limits.memory 9Gi is more than .* 8Gi"):
        compute.resolve_compute("bounded", {"limits": {"memory": "9Gi"}})
    with pytest.raises(ComputeProfileError, match=r"gpus 2 is more than the profile's maximum of 1"):
        compute.resolve_compute("bounded", {"gpus": 2})
    with pytest.raises(ComputeProfileError, match=r"'bounded' allows images starting with registry"):
        compute.resolve_compute("bounded", {"image": "docker.io/evil/miner"})
    # volumes are listed, host paths are not
    assert compute.resolve_compute("bounded", {"volumes": [{"name": "s", "emptyDir": {}}]})
    with pytest.raises(ComputeProfileError, match=r"'bounded' does not let DAG authors mount host paths"):
        compute.resolve_compute(
            "bounded", {"volumes": [{"name": "r", "hostPath": {"path": "/run/containerd"}}]}
        )


def test_workflow_step_override_is_refused_at_validation(profiles_file, tmp_path):
    from airflow_mlplatform.exceptions import WorkflowValidationError
    from airflow_mlplatform.workflow.source import read_source
    from airflow_mlplatform.workflow.validate import check_source

    (tmp_path / "n.ipynb").write_text("{}")
    text = (
        "version: 1\nid: x\nsteps:\n  - id: a\n    type: notebook\n    notebook: n.ipynb\n"
        "    compute:\n      profile: restricted\n      namespace: kube-system\n"
    )
    with pytest.raises(WorkflowValidationError) as info:
        check_source(read_source(text, file=str(tmp_path / "wf.yaml")), base_dir=tmp_path)
    [error] = info.value.errors
    assert "'restricted' does not let DAG authors override 'namespace'" in error.message
    assert error.line == 8


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ("requests: {cpu: 1e999}", "larger than any Kubernetes quantity"),
        ("limits: {memory: 99999999999999999999Ei}", "larger than any Kubernetes quantity"),
        ("requests: {cpu: '2'}\n    limits: {cpu: '1'}", r"requests.cpu 2 is larger than limits.cpu 1"),
        ("requests: {cpus: '2'}", "unknown resource name 'cpus'"),
        ("image_pull_policy: Sometimes", "'image_pull_policy' is 'Sometimes'"),
        ("tolerations: [42]", r"tolerations\[0\] is 42"),
        ("volumes: [{hostPath: {path: /}}]", r"volumes\[0\].*needs 'name'"),
        ("security_context: {container: {runAsUser: 0}}", "runAsUser: 0 while runAsNonRoot is true"),
        (
            "security_context: {container: {privileged: true}}",
            "privileged: true with allowPrivilegeEscalation",
        ),
        ("security_context: superuser", "preset 'superuser' is unknown"),
        ("overridable: {fields: [backend]}", "cannot be overridden"),
    ],
)
def test_impossible_profile_fields_fail_at_parse_time(tmp_path, monkeypatch, fields, match):
    path = tmp_path / "p.yaml"
    path.write_text(f"profiles:\n  p:\n    backend: kubernetes\n    image: x\n    {fields}\n")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    with pytest.raises((ProfilesFileError, InvalidQuantityError), match=match):
        compute.load_profiles()


def test_baseline_preset_lets_root_images_run(profiles_file):
    p = compute.get_profile("tf-root")
    assert p.pod_security_context()["runAsNonRoot"] is False
    c = p.container_security_context()
    assert c["runAsNonRoot"] is False and c["allowPrivilegeEscalation"] is False
    assert c["capabilities"] == {"drop": ["ALL"]}
