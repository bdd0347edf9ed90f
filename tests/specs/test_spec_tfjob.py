from __future__ import annotations

import jsonschema
import pytest
from crd_schema import validate

from airflow_mlplatform.exceptions import ReplicaSpecError
from airflow_mlplatform.specs import tfjob

CRD = "kubeflow.org_tfjobs.yaml"
IDENTITY_LABELS = {
    "mlplatform.airflow.apache.org/dag-id": "train",
    "mlplatform.airflow.apache.org/task-id": "fit",
    "mlplatform.airflow.apache.org/run-id": "manual__2026-01-01T00_00_00_00_00-1a2b3c4d",
    "mlplatform.airflow.apache.org/map-index": "-1",
    "mlplatform.airflow.apache.org/try-number": "1",
}


def _job(replicas, **kw):
    return tfjob.build_tfjob(
        name="tfjob-train-fit-0123456789",
        namespace="ml",
        image="tensorflow/tensorflow:2.16.1",
        command=["python", "/code/train.py"],
        replicas=tfjob.parse_replicas(replicas),
        labels=IDENTITY_LABELS,
        **kw,
    )


def test_single_worker_is_the_default_and_valid():
    manifest = _job(None)
    validate(manifest, CRD)
    assert manifest["apiVersion"] == "kubeflow.org/v1"
    assert manifest["kind"] == "TFJob"
    (rtype,) = manifest["spec"]["tfReplicaSpecs"]
    assert rtype == "Worker"
    spec = manifest["spec"]["tfReplicaSpecs"]["Worker"]
    assert spec["replicas"] == 1
    (container,) = spec["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow"
    assert container["ports"] == [{"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"}]
    assert spec["template"]["metadata"]["labels"] == IDENTITY_LABELS
    assert manifest["metadata"]["labels"] == IDENTITY_LABELS


def test_distributed_job_with_per_replica_pod_fields_and_run_policy():
    gpu = {
        "count": 4,
        "compute": "gpu-small",
        "resources": {"requests": {"cpu": "4", "nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": "1"}},
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "priority_class": "ml-batch",
        "env": {"NCCL_DEBUG": "INFO"},
    }
    manifest = _job(
        {"chief": 1, "Worker": gpu, "PS": (2, "cpu-large"), "Evaluator": 1},
        env={"MLPLATFORM_PARAMETERS": '{"epochs": 3}'},
        run_policy=tfjob.build_run_policy(
            clean_pod_policy="All",
            ttl_seconds_after_finished=600,
            active_deadline_seconds=3600,
            backoff_limit=2,
        ),
        port=2345,
        restart_policy="OnFailure",
    )
    validate(manifest, CRD)
    specs = manifest["spec"]["tfReplicaSpecs"]
    assert set(specs) == {"Chief", "Worker", "PS", "Evaluator"}
    assert specs["Worker"]["replicas"] == 4
    assert specs["PS"]["replicas"] == 2
    worker = specs["Worker"]["template"]["spec"]
    assert worker["nodeSelector"] == {"pool": "gpu"}
    assert worker["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert worker["priorityClassName"] == "ml-batch"
    container = worker["containers"][0]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert {"name": "NCCL_DEBUG", "value": "INFO"} in container["env"]
    assert {"name": "MLPLATFORM_PARAMETERS", "value": '{"epochs": 3}'} in container["env"]
    assert container["ports"][0]["containerPort"] == 2345
    assert "nodeSelector" not in specs["Chief"]["template"]["spec"]
    assert manifest["spec"]["runPolicy"] == {
        "cleanPodPolicy": "All",
        "ttlSecondsAfterFinished": 600,
        "activeDeadlineSeconds": 3600,
        "backoffLimit": 2,
    }
    assert specs["Chief"]["restartPolicy"] == "OnFailure"


def test_replicas_normalised():
    parsed = tfjob.parse_replicas({"worker": 2, "ps": {"replicas": 1, "compute": "cpu"}})
    assert parsed == {
        "Worker": tfjob.Replica("Worker", 2),
        "PS": tfjob.Replica("PS", 1, "cpu"),
    }
    assert tfjob.leader(parsed) == ("Worker", 0)
    assert tfjob.leader(tfjob.parse_replicas({"Chief": 1, "Worker": 2})) == ("Chief", 0)


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        ({"Launcher": 1}, "unknown replica type 'Launcher'"),
        ({"Worker": 0}, "at least 1 replica"),
        ({"Worker": -2}, "at least 1 replica"),
        ({"Worker": "2"}, "must be an integer"),
        ({"Worker": 2.0}, "must be an integer"),
        ({"PS": 2}, "PS replicas without Workers"),
        ({"Chief": 1, "PS": 1}, "PS replicas without Workers"),
        ({"Chief": 2, "Worker": 1}, "at most one Chief"),
        ({"Chief": 1, "Master": 1, "Worker": 1}, "not both"),
        ({"Evaluator": 1}, "no replica that trains"),
        ({}, "non-empty dict"),
        ([("Worker", 2)], "non-empty dict"),
        ({"Worker": {"count": 2, "gpu": 1}}, "unknown keys ['gpu']"),
        ({"Worker": (2, "a", "b")}, "a pair is"),
        ({"Worker": 1, "worker": 2}, "given twice"),
    ],
)
def test_bad_replicas_are_clear_errors(replicas, message):
    with pytest.raises(ReplicaSpecError) as e:
        tfjob.parse_replicas(replicas)
    assert message in str(e.value)


def test_bad_run_policy_and_command():
    with pytest.raises(ReplicaSpecError, match="use one of All, Running, None"):
        tfjob.build_run_policy(clean_pod_policy="Always")
    with pytest.raises(ReplicaSpecError, match="backoffLimit must be an integer"):
        tfjob.build_run_policy(backoff_limit=-1)
    # no command is the image's ENTRYPOINT (Kubeflow's examples), not an error
    entrypoint = tfjob.build_tfjob(
        name="x", namespace="d", image="i", command=[], replicas=tfjob.parse_replicas(None)
    )
    assert (
        "command" not in entrypoint["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    )
    with pytest.raises(ReplicaSpecError, match="needs an image"):
        tfjob.build_tfjob(
            name="x", namespace="d", image="", command=["t"], replicas=tfjob.parse_replicas(None)
        )


def test_schema_catches_a_wrong_field():
    """The validation in these tests is real: a misspelt or mistyped field fails."""
    manifest = _job({"Worker": 2})
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] = "2"
    with pytest.raises(jsonschema.ValidationError, match="replicas"):
        validate(manifest, CRD)
    manifest = _job({"Worker": 2})
    manifest["spec"]["runPolicy"]["cleanPodPolicyy"] = "All"
    with pytest.raises(jsonschema.ValidationError, match="cleanPodPolicyy"):
        validate(manifest, CRD)


def test_pod_fields_from_a_compute_profile():
    from airflow_mlplatform.compute import build_profile

    profile = build_profile(
        "gpu",
        {
            "backend": "kubernetes",
            "image": "tf:gpu",
            "requests": {"cpu": "2", "memory": "4Gi"},
            "gpus": 1,
            "node_selector": {"pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "labels": {"tenant": "research"},
        },
        where="test",
    )
    fields = tfjob.pod_fields_from_profile(profile)
    manifest = _job({"Worker": {"count": 2, **fields}})
    validate(manifest, CRD)
    worker = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    assert worker["spec"]["containers"][0]["image"] == "tf:gpu"
    assert worker["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert worker["spec"]["securityContext"]["runAsNonRoot"] is True
    assert worker["metadata"]["labels"]["tenant"] == "research"


def test_a_job_without_a_profile_runs_restricted():
    """Every pod is restricted unless a profile relaxes it (pods, notebooks... and TFJob replicas)."""
    from airflow_mlplatform.compute import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY

    manifest = _job({"Chief": 1, "Worker": 2})
    validate(manifest, CRD)
    for rtype in ("Chief", "Worker"):
        spec = manifest["spec"]["tfReplicaSpecs"][rtype]["template"]["spec"]
        assert spec["securityContext"] == RESTRICTED_POD_SECURITY
        assert spec["containers"][0]["securityContext"] == RESTRICTED_CONTAINER_SECURITY


def test_a_profile_secrets_and_relaxed_security_reach_every_replica():
    from airflow_mlplatform.compute import build_profile

    profile = build_profile(
        "gpu",
        {
            "backend": "kubernetes",
            "image": "tf:gpu",
            "secrets": ["wandb-api-key", "s3-creds"],
            "security_context": {"pod": {"runAsNonRoot": False}, "container": {"runAsNonRoot": False}},
        },
        where="test",
    )
    fields = tfjob.pod_fields_from_profile(profile)
    manifest = _job({"Chief": {"count": 1, **fields}, "Worker": {"count": 2, **fields}})
    validate(manifest, CRD)
    for rtype in ("Chief", "Worker"):
        spec = manifest["spec"]["tfReplicaSpecs"][rtype]["template"]["spec"]
        container = spec["containers"][0]
        assert container["envFrom"] == [
            {"secretRef": {"name": "wandb-api-key"}},
            {"secretRef": {"name": "s3-creds"}},
        ]
        assert spec["securityContext"]["runAsNonRoot"] is False
        assert container["securityContext"]["runAsNonRoot"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# --- what Kubeflow users write: training-operator's own examples/tensorflow, expressed here ---


def test_kubeflow_dist_mnist_example_image_entrypoint_and_per_replica_restart_policy():
    # examples/tensorflow/dist-mnist/tf_job_mnist.yaml: no command (the image's ENTRYPOINT)
    manifest = tfjob.build_tfjob(
        name="dist-mnist-for-e2e-test",
        namespace="ml",
        image="kubeflow/tf-dist-mnist-test:latest",
        command=None,
        replicas=tfjob.parse_replicas(
            {"Chief": 1, "PS": 1, "Worker": {"count": 2, "restart_policy": "ExitCode"}}
        ),
    )
    validate(manifest, CRD)
    specs = manifest["spec"]["tfReplicaSpecs"]
    assert {t: (s["replicas"], s["restartPolicy"]) for t, s in specs.items()} == {
        "Chief": (1, "Never"),
        "PS": (1, "Never"),
        "Worker": (2, "ExitCode"),
    }
    for spec in specs.values():
        (container,) = spec["template"]["spec"]["containers"]
        assert (
            container["name"] == "tensorflow" and container["image"] == "kubeflow/tf-dist-mnist-test:latest"
        )
        assert "command" not in container


def test_kubeflow_simple_example_on_failure_for_every_replica():
    # examples/tensorflow/simple.yaml: restartPolicy OnFailure, a command
    manifest = tfjob.build_tfjob(
        name="tfjob-simple",
        namespace="kubeflow",
        image="kubeflow/tf-mnist-with-summaries:latest",
        command=["python", "/var/tf_mnist/mnist_with_summaries.py"],
        replicas=tfjob.parse_replicas({"Worker": 2}),
        restart_policy="OnFailure",
    )
    validate(manifest, CRD)
    worker = manifest["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["restartPolicy"] == "OnFailure"
    assert worker["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "/var/tf_mnist/mnist_with_summaries.py",
    ]


def test_gang_scheduling_scheduler_name_success_policy_and_suspend():
    manifest = _job(
        {"Chief": 1, "Worker": 3},
        run_policy=tfjob.build_run_policy(
            clean_pod_policy="None",
            scheduling_policy={
                "min_available": 4,
                "queue": "training",
                "priority_class": "high-priority",
                "min_resources": {"cpu": 8, "memory": "32Gi", "nvidia.com/gpu": "4"},
                "scheduleTimeoutSeconds": 600,
            },
            suspend=True,
        ),
        scheduler_name="volcano",
        success_policy="AllWorkers",
    )
    validate(manifest, CRD)
    spec = manifest["spec"]
    assert spec["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 4,
        "queue": "training",
        "priorityClass": "high-priority",
        "minResources": {"cpu": 8, "memory": "32Gi", "nvidia.com/gpu": "4"},
        "scheduleTimeoutSeconds": 600,
    }
    assert spec["runPolicy"]["suspend"] is True and spec["successPolicy"] == "AllWorkers"
    assert {s["template"]["spec"]["schedulerName"] for s in spec["tfReplicaSpecs"].values()} == {"volcano"}
    # defaults stay out of the manifest
    plain = _job({"Worker": 2})
    assert "successPolicy" not in plain["spec"] and "schedulingPolicy" not in plain["spec"]["runPolicy"]
    assert "suspend" not in plain["spec"]["runPolicy"]
    assert "schedulerName" not in plain["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: tfjob.parse_replicas({"Worker": {"count": 2, "restart_policy": "Sometimes"}}),
            r"replicas\['Worker'\]\['restart_policy'\] 'Sometimes'",
        ),
        (
            lambda: _job({"Worker": 1}, restart_policy="onfailure"),
            "use one of Always, OnFailure, Never, ExitCode",
        ),
        (
            lambda: tfjob.build_run_policy(scheduling_policy={"minMember": 2}),
            "scheduling_policy key 'minMember' is unknown",
        ),
        (
            lambda: tfjob.build_run_policy(scheduling_policy={"min_available": -1}),
            "min_available must be an integer >= 0",
        ),
        (lambda: tfjob.build_run_policy(scheduling_policy={"queue": ""}), "queue must be a non-empty string"),
        (lambda: tfjob.build_run_policy(suspend="yes"), "suspend must be true or false"),
        (lambda: _job({"Worker": 1}, success_policy="AnyWorker"), "success_policy 'AnyWorker'"),
    ],
)
def test_bad_kubeflow_options_are_clear_errors(call, message):
    with pytest.raises(ReplicaSpecError, match=message):
        call()
