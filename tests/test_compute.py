"""Compute profiles: file format, overrides, quantity checks, parse-time errors."""

from __future__ import annotations

import textwrap

import pytest

from airflow_mlplatform import compute
from airflow_mlplatform.exceptions import (
    ConfigurationError,
    InvalidQuantityError,
    ProfilesFileError,
    UnknownComputeProfileError,
)

PROFILES = """
defaults:
  namespace: ml-jobs
  labels: {tenant: research}
profiles:
  cpu-small:
    backend: kubernetes
    image: python:3.11-slim
    requests: {cpu: 500m, memory: 1Gi}
    limits: {cpu: 1, memory: 2Gi}
    labels: {cost-centre: cc-42}
  gpu-small:
    backend: kubernetes
    image: pytorch:latest
    gpus: 2
    gpu_resource: amd.com/gpu
    node_selector: {pool: gpu}
    tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
    priority_class: ml-batch
    service_account: trainer
  relaxed:
    backend: kubernetes
    image: busybox
    security_context: {container: {allowPrivilegeEscalation: true}}
  worker:
    backend: local
"""


@pytest.fixture
def profiles_file(tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


def _write(tmp_path, monkeypatch, text):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


def test_profile_from_config_with_defaults(profiles_file):
    p = compute.get_profile("cpu-small")
    assert p.is_kubernetes
    assert p.namespace == "ml-jobs"
    assert p.labels == {"tenant": "research", "cost-centre": "cc-42"}
    assert p.resources() == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }


def test_gpus_use_the_vendor_resource_name(profiles_file):
    p = compute.get_profile("gpu-small")
    assert p.resources() == {"requests": {"amd.com/gpu": "2"}, "limits": {"amd.com/gpu": "2"}}
    assert p.priority_class == "ml-batch"


def test_overrides_replace_single_fields(profiles_file):
    p = compute.resolve_compute("cpu-small", {"image": "python:3.12", "gpus": 1})
    assert p is not None
    assert p.image == "python:3.12"
    assert p.resources()["limits"]["nvidia.com/gpu"] == "1"
    assert compute.get_profile("cpu-small").image == "python:3.11-slim"


def test_none_means_run_in_the_worker(profiles_file):
    assert compute.resolve_compute(None) is None
    assert compute.get_profile("worker").backend == "local"


def test_unknown_profile_lists_known_ones(profiles_file):
    with pytest.raises(
        UnknownComputeProfileError, match=r"'gpu-huge'.*cpu-small, gpu-small, relaxed, worker"
    ):
        compute.resolve_compute("gpu-huge")


def test_unknown_profile_without_file(monkeypatch):
    monkeypatch.delenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", raising=False)
    with pytest.raises(ConfigurationError, match="compute_profiles"):
        compute.resolve_compute("cpu-small")


@pytest.mark.parametrize("good", ["2Gi", "512Mi", "500m", "1", 2, 0.5, "1e3", "1.5G"])
def test_good_quantities(good):
    assert compute.check_quantity(good, where="x") == str(good)


@pytest.mark.parametrize("bad", ["two gigs", "2 Gi", "2GB", "", "-1", None, True, [1]])
def test_bad_quantities(bad):
    with pytest.raises(InvalidQuantityError, match="not a Kubernetes quantity"):
        compute.check_quantity(bad, where="x")


def test_bad_quantity_in_file_names_file_and_field(tmp_path, monkeypatch):
    path = _write(
        tmp_path,
        monkeypatch,
        """
        profiles:
          big: {backend: kubernetes, image: x, requests: {memory: two gigs}}
        """,
    )
    with pytest.raises(InvalidQuantityError, match=rf"{path}.*'big'.*requests.memory.*'two gigs'"):
        compute.resolve_compute("big")


def test_bad_override_quantity(profiles_file):
    with pytest.raises(InvalidQuantityError, match=r"limits\.memory"):
        compute.resolve_compute("cpu-small", {"limits": {"memory": "lots"}})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("profiles: [1, 2]", "top level must be a mapping"),
        ("profiles:\n  a: {backend: cloud}", "'backend' is 'cloud'"),
        ("profiles:\n  a: {backend: kubernetes}", "no 'image'"),
        ("profiles:\n  a: {colour: red}", "unknown field.*colour"),
        ("profiles:\n  a: {tolerations: {key: x}}", "'tolerations' must be a list"),
        ("profiles:\n  a: {gpus: one}", "'gpus'"),
        ("profiles: {a: [unclosed", "not valid YAML"),
        ("profile: {}", "unknown top-level"),
    ],
)
def test_malformed_file_names_file_and_field(tmp_path, monkeypatch, text, match):
    path = _write(tmp_path, monkeypatch, text)
    with pytest.raises(ConfigurationError, match=match) as info:
        compute.load_profiles()
    assert str(path) in str(info.value)


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(tmp_path / "nope.yaml"))
    with pytest.raises(ProfilesFileError, match=r"nope.yaml.*cannot be read"):
        compute.resolve_compute("x")


def test_file_is_cached_by_mtime(profiles_file):
    first = compute.load_profiles()
    assert compute.load_profiles() is first
    profiles_file.write_text(PROFILES.replace("python:3.11-slim", "python:3.13"))
    import os

    os.utime(profiles_file, (1, 1))
    assert compute.get_profile("cpu-small").image == "python:3.13"


def test_restricted_security_context_by_default(profiles_file):
    p = compute.get_profile("cpu-small")
    assert p.pod_security_context() == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    c = p.container_security_context()
    assert c["allowPrivilegeEscalation"] is False
    assert c["capabilities"] == {"drop": ["ALL"]}
    assert c["runAsNonRoot"] is True


def test_profile_relaxes_security_only_explicitly(profiles_file):
    c = compute.get_profile("relaxed").container_security_context()
    assert c["allowPrivilegeEscalation"] is True
    assert c["capabilities"] == {"drop": ["ALL"]}
