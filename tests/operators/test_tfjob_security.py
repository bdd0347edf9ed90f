"""TFJob security: the compute profile decides each replica's security context, DAG authors cannot weaken it."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import ComputeProfileError
from airflow_mlplatform.operators.tfjob import TFJobOperator
from airflow_mlplatform.specs import tfjob

PROFILES = """
profiles:
  tf-root:
    backend: kubernetes
    image: tensorflow/tensorflow:2.16.1
    security_context: baseline
  tf-custom:
    backend: kubernetes
    image: tensorflow/tensorflow:2.16.1
    overridable: {fields: [security_context, requests, limits]}
"""


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))


def _op(**kw):
    return TFJobOperator(task_id="train", command=["python", "train.py"], backend="kubeflow", **kw)


def _manifest(op):
    resolved, _ = op._resolved_replicas(tfjob.parse_replicas(op.replicas))
    return tfjob.build_tfjob(
        name="tfjob-x", namespace="ml", image="tensorflow/tensorflow:2.16.1", command=["python"],
        replicas=resolved, labels={},
    )  # fmt: skip


@pytest.mark.parametrize(
    "field",
    [
        {"container_security_context": {}},
        {"pod_security_context": {"runAsUser": 0}},
        {"service_account": "cluster-admin"},
        {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
        {"node_selector": {"node-role.kubernetes.io/control-plane": ""}},
    ],
)
def test_replica_pod_fields_cannot_weaken_the_profile(profiles, field):
    key = next(iter(field))
    with pytest.raises(ComputeProfileError, match=rf"replicas\['Worker'\]: pod field '{key}'.*'tf-root'"):
        _op(compute="tf-root", replicas={"Worker": {"count": 2, **field}})
    with pytest.raises(ComputeProfileError, match=rf"pod field '{key}'.*'\(none\)'"):
        _op(image="tensorflow/tensorflow:2.16.1", replicas={"Worker": {"count": 2, **field}})


def test_profile_choice_reaches_every_replica(profiles):
    manifest = _manifest(_op(compute="tf-root", replicas={"Chief": 1, "Worker": 2}))
    for spec in manifest["spec"]["tfReplicaSpecs"].values():
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is False
        assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_an_allowed_empty_context_is_used_as_given_not_replaced(profiles):
    manifest = _manifest(
        _op(compute="tf-custom", replicas={"Worker": {"count": 1, "container_security_context": {}}})
    )
    container = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {}
