"""The InferenceService builder and readers: pure, validated against KServe's CRD schema."""

from __future__ import annotations

import json

import pytest
from crd_schema import validate

from airflow_mlplatform.compute import build_profile
from airflow_mlplatform.exceptions import DeploymentDefinitionError
from airflow_mlplatform.specs import inference as isvc
from kube.emulator import merge_patch

CRD = "serving.kserve.io_inferenceservices.yaml"
PROFILE = build_profile(
    "serving",
    {
        "backend": "kubernetes",
        "image": "ignored/notebook:1",
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
        "gpus": 1,
        "node_selector": {"pool": "serving"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "service_account": "models-reader",
        "labels": {"tenant": "research", "cost-centre": "cc-7"},
        "priority_class": "serving",
        "env": {"MLSERVER_LOG": "info"},
        "secrets": ["s3-creds"],
    },
    where="test",
)


def _manifest(**kw):
    predictor = isvc.build_predictor(
        storage_uri=kw.pop("storage_uri", "s3://models/churn/3"),
        model_format=kw.pop("model_format", "sklearn"),
        profile=kw.pop("profile", PROFILE),
        **kw,
    )
    rollout = isvc.rollout_state(
        digest=isvc.predictor_digest(predictor),
        model="churn/3",
        phase="rolling-out",
        previous=None,
        previous_digest=None,
        previous_model=None,
        by="d/t/r/1",
    )
    return isvc.build_inferenceservice(
        name="churn", namespace="ml", predictor=predictor, rollout=rollout, labels={"tenant": "research"}
    )


def test_manifest_from_a_profile_is_valid_and_carries_size_placement_labels_and_security():
    manifest = _manifest(canary_traffic_percent=10, min_replicas=1, max_replicas=3)
    validate(manifest, CRD, "v1beta1")
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["storageUri"] == "s3://models/churn/3"
    assert model["protocolVersion"] == "v2"
    assert model["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "2Gi", "nvidia.com/gpu": "1"},
    }
    assert "image" not in model  # the ServingRuntime's image, not the profile's
    assert model["securityContext"]["allowPrivilegeEscalation"] is False
    assert predictor["securityContext"]["runAsNonRoot"] is True
    assert predictor["serviceAccountName"] == "models-reader"
    assert predictor["nodeSelector"] == {"pool": "serving"}
    assert predictor["tolerations"][0]["key"] == "gpu"
    assert predictor["priorityClassName"] == "serving"
    assert predictor["labels"] == {"tenant": "research", "cost-centre": "cc-7"}  # billing on the pods
    assert model["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert predictor["canaryTrafficPercent"] == 10
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    assert isvc.read_rollout(manifest)["model"] == "churn/3"


def test_without_a_profile_the_restricted_security_context_is_set():
    manifest = _manifest(profile=None)
    validate(manifest, CRD, "v1beta1")
    assert manifest["spec"]["predictor"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"model_format": "sklern"}, "no stock KServe runtime"),
        ({"protocol_version": "v3"}, "protocol_version"),
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 3, "max_replicas": 2}, "below min_replicas"),
    ],
)
def test_bad_predictor_fields_name_the_problem(kw, fragment):
    with pytest.raises(DeploymentDefinitionError, match=fragment):
        _manifest(**kw)


def test_a_custom_format_needs_a_runtime():
    manifest = _manifest(model_format="my-format", runtime="my-runtime")
    validate(manifest, CRD, "v1beta1")
    assert manifest["spec"]["predictor"]["model"]["runtime"] == "my-runtime"


@pytest.mark.parametrize("name", ["Churn", "1churn", "churn_model", "c" * 46, "", None])
def test_names_kserve_would_refuse_are_refused(name):
    with pytest.raises(DeploymentDefinitionError, match="not valid"):
        isvc.check_name(name)


@pytest.mark.parametrize("percent", [0, 100, 150, -5, 10.5, True, "10"])
def test_canary_share_is_a_whole_percentage_below_100(percent):
    with pytest.raises(DeploymentDefinitionError, match="canary_traffic_percent"):
        isvc.check_canary(percent)


def test_storage_uris_the_cluster_cannot_read_are_refused_with_the_fix():
    for uri in ("s3://b/m", "gs://b/m", "pvc://claim/m", "https://h/m.joblib", "hf://org/m"):
        assert isvc.check_storage_uri(uri, what="m") == uri
    with pytest.raises(DeploymentDefinitionError, match=r"storage_uri_map=.*pvc://"):
        isvc.check_storage_uri(
            "file:///home/me/.airflow/mlflow/artifacts/1/model", what="model churn version 1"
        )
    mapped = isvc.map_storage_uri(
        "file:///mnt/mlflow/1/abc/artifacts/model",
        {"file:///mnt/": "pvc://other/", "file:///mnt/mlflow/": "pvc://mlflow/"},  # the longest prefix wins
    )
    assert mapped == "pvc://mlflow/1/abc/artifacts/model"


def test_merge_patch_to_turns_one_predictor_into_another():
    old = _manifest(storage_uri="s3://m/1", canary_traffic_percent=20)["spec"]["predictor"]
    new = _manifest(storage_uri="s3://m/2", profile=None)["spec"]["predictor"]
    patch = isvc.merge_patch_to(old, new)
    assert merge_patch(old, patch) == new
    assert patch["canaryTrafficPercent"] is None  # keys that must go are nulled
    assert isvc.merge_patch_to(new, new) == {}


def test_the_digest_ignores_the_canary_share_only():
    a = _manifest(canary_traffic_percent=10)["spec"]["predictor"]
    b = _manifest()["spec"]["predictor"]
    c = _manifest(storage_uri="s3://models/churn/4")["spec"]["predictor"]
    assert isvc.predictor_digest(a) == isvc.predictor_digest(b) != isvc.predictor_digest(c)


def _status(generation, observed, ready="True", **model):
    return {
        "metadata": {"name": "churn", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready, "reason": model.pop("reason", None)}],
            "modelStatus": model or {"transitionStatus": "UpToDate"},
            "url": "http://churn.ml.example.com",
            "components": {
                "predictor": {
                    "latestReadyRevision": "churn-predictor-00002",
                    "traffic": [
                        {
                            "tag": "latest",
                            "revisionName": "churn-predictor-00002",
                            "percent": 10,
                            "url": "http://latest",
                        },
                        {
                            "tag": "prev",
                            "revisionName": "churn-predictor-00001",
                            "percent": 90,
                            "url": "http://prev",
                        },
                    ],
                }
            },
        },
    }


def test_ready_counts_only_once_the_current_generation_is_observed():
    assert isvc.isvc_state({"metadata": {"generation": 1}}) is None  # no controller yet
    assert isvc.isvc_state(_status(2, 1)) == "Updating"  # Ready=True describes generation 1
    assert not isvc.INFERENCESERVICE_KIND.is_done(_status(2, 1))
    assert isvc.isvc_state(_status(2, 2)) == "Ready"
    assert isvc.INFERENCESERVICE_KIND.is_succeeded(_status(2, 2))
    assert isvc.isvc_state(_status(2, 2, ready="Unknown")) == "Loading"
    failed = _status(
        2,
        2,
        ready="False",
        transitionStatus="BlockedByFailedLoad",
        states={"activeModelState": "Loaded", "targetModelState": "FailedToLoad"},
        lastFailureInfo={"reason": "ModelLoadFailed", "message": "invalid load key"},
    )
    assert isvc.isvc_state(failed) == "FailedToLoad"
    assert isvc.isvc_message(failed) == "ModelLoadFailed: invalid load key"
    assert isvc.INFERENCESERVICE_KIND.is_done(failed) and not isvc.INFERENCESERVICE_KIND.is_succeeded(failed)
    assert isvc.isvc_state(_status(2, 2, ready="False", reason="RevisionFailed")) == "Failed"
    ready = _status(2, 2)
    assert isvc.tag_url(ready, "latest") == "http://latest" and isvc.tag_url(ready, "prev") == "http://prev"
    assert isvc.traffic_of(ready) == {"churn-predictor-00002": 10, "churn-predictor-00001": 90}
    assert isvc.endpoint(ready) == "http://churn.ml.example.com"
    assert isvc.revision(ready) == "churn-predictor-00002"


def test_stopping_a_rollout_restores_the_previous_predictor_or_deletes_a_first_one():
    previous = _manifest(storage_uri="s3://m/1")["spec"]["predictor"]
    obj = _manifest(storage_uri="s3://m/2", canary_traffic_percent=10)
    state = isvc.read_rollout(obj)
    assert isvc.stop_rollout(obj) is None  # a first rollout never served: delete
    state.update(previous=previous, previous_digest=isvc.predictor_digest(previous), previous_model="churn/1")
    obj["metadata"]["annotations"][isvc.ROLLOUT_ANNOTATION] = json.dumps(state)
    patch = isvc.stop_rollout(obj)
    restored = merge_patch(obj, patch)
    assert restored["spec"]["predictor"] == previous
    after = isvc.read_rollout(restored)
    assert (after["phase"], after["model"], after["rolled_back_from"]) == (
        "rolled-back",
        "churn/1",
        "churn/3",
    )
    assert after["digest"] == isvc.predictor_digest(previous)
    assert isvc.stop_rollout(restored) == {}  # nothing under way any more: leave it serving


def test_usage_bills_the_predictor_pods():
    manifest = _manifest(min_replicas=2)
    [(role, count, pod, labels)] = isvc.isvc_replicas(manifest)
    assert (role, count) == ("predictor", 2)
    assert pod["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    assert labels["cost-centre"] == "cc-7"
