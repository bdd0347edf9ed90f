"""The SparkApplication builder: pure, validated against the CRD's schema."""

from __future__ import annotations

import pytest
from crd_schema import validate

from airflow_mlplatform.compute import build_profile
from airflow_mlplatform.exceptions import JobDefinitionError
from airflow_mlplatform.specs import spark

CRD = "sparkoperator.k8s.io_sparkapplications.yaml"


def _profile(name="spark-k8s", **fields):
    base = {"backend": "kubernetes", "image": "spark:3.5.5-python3"}
    return build_profile(name, {**base, **fields}, where="test")


DRIVER = _profile(
    "spark-driver",
    requests={"cpu": "500m", "memory": "2Gi"},
    limits={"cpu": "1"},
    service_account="spark",
    node_selector={"pool": "spark"},
    tolerations=[{"key": "spark", "operator": "Exists", "effect": "NoSchedule"}],
    labels={"tenant": "research", "cost-centre": "cc-42"},
    env={"A": "profile", "B": "profile"},
    secrets=["s3-credentials"],
    spark={"conf": {"spark.sql.shuffle.partitions": 8, "spark.eventLog.enabled": True}},
)
EXECUTOR = _profile(
    "spark-exec", requests={"cpu": "3", "memory": "1500M"}, gpus=1, labels={"tenant": "research"}
)


def test_python_application_from_profiles_is_valid_and_complete():
    manifest = spark.build_sparkapplication(
        name="spark-t-1234",
        namespace="ml",
        profile=DRIVER,
        executor_profile=EXECUTOR,
        executors=3,
        main_file="local:///app/job.py",
        arguments=["--rows", 10],
        parameters_json='{"rows": 10}',
        spark_conf={"spark.sql.shuffle.partitions": "16"},
        env={"B": "task", "C": "task"},
        provider_env={"MLPLATFORM_OUTPUT_URI": "s3://b/out"},
        labels={"mlplatform.airflow.apache.org/task-id": "t"},
        annotations={"mlplatform.airflow.apache.org/run-id": "manual__1"},
        ttl_seconds=600,
        python_version="3",
    )
    validate(manifest, CRD, "v1beta2")
    spec = manifest["spec"]
    assert manifest["apiVersion"] == "sparkoperator.k8s.io/v1beta2" and manifest["kind"] == "SparkApplication"
    assert spec["type"] == "Python" and spec["mode"] == "cluster" and spec["pythonVersion"] == "3"
    assert spec["mainApplicationFile"] == "local:///app/job.py" and spec["arguments"] == ["--rows", "10"]
    assert spec["timeToLiveSeconds"] == 600 and spec["restartPolicy"] == {"type": "Never"}
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "16", "spark.eventLog.enabled": "true"}
    driver, executor = spec["driver"], spec["executor"]
    assert (driver["cores"], driver["coreRequest"], driver["coreLimit"], driver["memory"]) == (
        1,
        "500m",
        "1",
        "2048m",
    )
    assert (executor["cores"], executor["memory"], executor["instances"]) == (3, "1431m", 3)
    assert executor["gpu"] == {"name": "nvidia.com/gpu", "quantity": 1} and "gpu" not in driver
    assert driver["serviceAccount"] == "spark" and driver["nodeSelector"] == {"pool": "spark"}
    assert driver["tolerations"][0]["key"] == "spark"
    # tenant labels on the object and on both kinds of pods, for billing
    for labels in (manifest["metadata"]["labels"], driver["labels"], executor["labels"]):
        assert labels["tenant"] == "research"
        assert labels["mlplatform.airflow.apache.org/task-id"] == "t"
    # one env rule for every kind: task over profile, the provider's variables over both
    env = {e["name"]: e["value"] for e in driver["env"]}
    assert env == {
        "A": "profile",
        "B": "task",
        "C": "task",
        "MLPLATFORM_PARAMETERS": '{"rows": 10}',
        "MLPLATFORM_OUTPUT_URI": "s3://b/out",
    }
    assert "MLPLATFORM_PARAMETERS" not in {e["name"] for e in executor.get("env", [])}
    assert driver["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    # the restricted security defaults
    assert driver["podSecurityContext"]["runAsNonRoot"] is True
    assert driver["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize(
    ("main", "declared", "expected"),
    [
        ("local:///app/job.py", None, "Python"),
        ("s3a://b/job.R", None, "R"),
        ("local:///app/job.jar", None, "Scala"),
        ("local:///app/job.jar", "java", "Java"),
    ],
)
def test_application_types(main, declared, expected):
    manifest = spark.build_sparkapplication(
        name="a",
        namespace="ns",
        profile=_profile(),
        main_file=main,
        application_type=declared,
        main_class="org.example.Main" if main.endswith(".jar") else None,
    )
    validate(manifest, CRD, "v1beta2")
    assert manifest["spec"]["type"] == expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"main_file": "local:///app/job"}, "cannot tell the application type"),
        ({"main_file": "local:///a.py", "application_type": "Go"}, "'Go' is unknown"),
        ({"main_file": "local:///a.jar"}, "needs main_class"),
        ({"main_file": "local:///a.py", "executors": 0}, "at least 1"),
        ({"main_file": "local:///a.py", "ttl_seconds": 0}, "at least 1"),
        ({"main_file": "local:///a.py", "profile": _profile(requests={"memory": "100k"})}, "less than 1 MiB"),
    ],
)
def test_bad_definitions_fail_before_anything_is_created(kwargs, match):
    with pytest.raises(JobDefinitionError, match=match):
        spark.build_sparkapplication(**{"name": "a", "namespace": "ns", "profile": _profile(), **kwargs})


def test_state_readers():
    obj = {"status": {"applicationState": {"state": "FAILED", "errorMessage": "boom"}}}
    assert spark.application_state(obj) == "FAILED" and spark.error_message(obj) == "boom"
    assert spark.application_state({}) is None and spark.error_message({}) == ""
    assert spark.driver_pod("x", {}) == "x-driver"
    assert spark.driver_pod("x", {"status": {"driverInfo": {"podName": "p"}}}) == "p"
