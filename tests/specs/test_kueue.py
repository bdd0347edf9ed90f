"""A compute profile's Kueue queue: checked like the other profile fields, and labelled on the object
Kueue reads for each kind (the pod; the TFJob itself; the pod templates of DaskJob, DaskCluster and
SparkApplication), as the operators create them on the Kubernetes test bed (deferrable mode: created,
then handed to the trigger, so no job runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.exceptions import TaskDeferred

from airflow_mlplatform.compute import build_profile, get_profile
from airflow_mlplatform.exceptions import ComputeOverrideError, ProfilesFileError
from airflow_mlplatform.hooks.kubernetes import PODS, MLPlatformKubernetesHook, Resource
from airflow_mlplatform.specs.kueue import QUEUE_LABEL
from fake_dask_operator import DASKCLUSTERS, DASKJOBS
from fake_spark_operator import SPARKAPPLICATIONS
from fake_training_operator import TFJOBS

PROFILES = """
profiles:
  queued:
    backend: kubernetes
    image: python:3.11-slim
    namespace: default
    kueue_queue: team-a
    labels: {tenant: research}
"""


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"kueue_queue": "Team_A"}, r"kueue_queue 'Team_A' is not a Kueue LocalQueue name"),
        ({"kueue_queue": "x" * 64}, r"is not a Kueue LocalQueue name.*at most 63"),
        ({"kueue_queue": 7}, r"kueue_queue 7 is not a Kueue LocalQueue name"),
        ({"backend": "local", "image": None, "kueue_queue": "team-a"}, r"needs backend: kubernetes"),
        ({"labels": {QUEUE_LABEL: "team-a"}}, r"name the Kueue queue with kueue_queue: instead"),
    ],
)
def test_bad_queue_fields_are_clear_errors_naming_the_profile(fields, match):
    data = {"backend": "kubernetes", "image": "python:3.11", **fields}
    with pytest.raises(ProfilesFileError, match=rf"profile 'p'.*{match}|{match}.*"):
        build_profile("p", {k: v for k, v in data.items() if v is not None}, where="profiles.yaml")


def test_the_queue_is_not_overridable_unless_the_profile_lists_it(tmp_path):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES + "  open:\n    backend: kubernetes\n    image: python:3.11\n"
                    "    overridable: {fields: [kueue_queue]}\n")  # fmt: skip
    with pytest.raises(ComputeOverrideError, match=r"does not let DAG authors override 'kueue_queue'"):
        get_profile("queued", str(path), kueue_queue="team-b")
    assert get_profile("open", str(path), kueue_queue="team-b").kueue_queue == "team-b"
    with pytest.raises(ProfilesFileError, match=r"not a Kueue LocalQueue name"):
        get_profile("open", str(path), kueue_queue="no spaces")


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "kueue", "t", "manual__kueue", -1, 1

    def xcom_push(self, key, value):
        pass


def _context(task_id: str) -> dict:
    ti = _TI()
    ti.task_id = task_id
    return {"ti": ti, "params": {}}


def _created(k8s, key: str, task_id: str) -> dict:
    from airflow_mlplatform.specs.pod import label_key, label_value

    key_label, value = label_key("task_id"), label_value(task_id)
    (obj,) = [o for o in k8s.call(k8s.emulator.objects, key, "default")
              if (o["metadata"].get("labels") or {}).get(key_label) == value]  # fmt: skip
    return obj


def _delete(resource: Resource, obj: dict) -> None:
    MLPlatformKubernetesHook().delete_object(
        resource, "default", obj["metadata"]["name"], grace_period_seconds=0
    )


def _defer(op, task_id: str) -> None:
    with pytest.raises(TaskDeferred):
        op.execute(_context(task_id))


@pytest.fixture
def queued(tmp_path, monkeypatch, k8s_kinds):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return k8s_kinds


def test_pod_carries_the_queue(queued):
    from airflow_mlplatform.operators.pod import MLPlatformPodOperator

    op = MLPlatformPodOperator(task_id="kq_pod", compute="queued", command=["sleep", "30"], deferrable=True)
    _defer(op, "kq_pod")
    pod = _created(queued, "v1/pods", "kq_pod")
    try:
        assert pod["metadata"]["labels"][QUEUE_LABEL] == "team-a"
        assert pod["metadata"]["labels"]["tenant"] == "research"
    finally:
        _delete(PODS, pod)


def test_tfjob_carries_the_queue_on_the_tfjob_only(queued):
    from airflow_mlplatform.operators.tfjob import TFJobOperator
    from airflow_mlplatform.specs.tfjob import TFJOB_KIND

    op = TFJobOperator(task_id="kq_tf", compute="queued", command=["python", "-c", "print(1)"],
                       replicas={"Worker": 2}, deferrable=True)  # fmt: skip
    _defer(op, "kq_tf")
    tfjob = _created(queued, TFJOBS, "kq_tf")
    try:
        assert tfjob["metadata"]["labels"][QUEUE_LABEL] == "team-a"
        template = tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"]
        assert QUEUE_LABEL not in template["metadata"]["labels"]  # Kueue admits the TFJob, not its pods
        assert template["metadata"]["labels"]["tenant"] == "research"
    finally:
        _delete(TFJOB_KIND.resource, tfjob)


def test_sparkapplication_pods_carry_the_queue(queued, tmp_path):
    from airflow_mlplatform.operators.spark import SparkApplicationOperator
    from airflow_mlplatform.specs.spark import SPARK_KIND

    op = SparkApplicationOperator(task_id="kq_spark", application="local:///opt/app/job.py",
                                  compute="queued", deferrable=True)  # fmt: skip
    _defer(op, "kq_spark")
    app = _created(queued, SPARKAPPLICATIONS, "kq_spark")
    try:
        assert QUEUE_LABEL not in app["metadata"]["labels"]  # no Kueue integration for SparkApplication
        for role in ("driver", "executor"):
            assert app["spec"][role]["labels"][QUEUE_LABEL] == "team-a"
    finally:
        _delete(SPARK_KIND.resource, app)


def test_daskjob_and_daskcluster_pods_carry_the_queue(queued, tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from airflow_mlplatform.operators.rapids import RapidsDaskOperator
    from airflow_mlplatform.specs.daskjob import DASKCLUSTER_KIND, DASKJOB_KIND

    script = tmp_path / "job.py"
    script.write_text("print(1)\n")
    op = RapidsDaskOperator(task_id="kq_dask", script=str(script), cluster="kubernetes", compute="queued",
                            deferrable=True)  # fmt: skip
    _defer(op, "kq_dask")
    job = _created(queued, DASKJOBS, "kq_dask")
    try:
        assert QUEUE_LABEL not in job["metadata"]["labels"]  # no Kueue integration for DaskJob
        spec = job["spec"]
        for template in (
            spec["job"],
            spec["cluster"]["spec"]["scheduler"],
            spec["cluster"]["spec"]["worker"],
        ):
            assert template["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    finally:
        _delete(DASKJOB_KIND.resource, job)

    cluster_op = RapidsDaskOperator(
        task_id="kq_dc", python_callable=len, cluster="kubernetes", compute="queued"
    )
    kube_cluster = cluster_op._kube_cluster(_context("kq_dc"))
    kube_cluster.job.start()  # the create the session does, without waiting for the scheduler
    cluster = _created(queued, DASKCLUSTERS, "kq_dc")
    try:
        assert QUEUE_LABEL not in cluster["metadata"]["labels"]
        for role in ("scheduler", "worker"):
            assert cluster["spec"][role]["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    finally:
        _delete(DASKCLUSTER_KIND.resource, cluster)


def test_the_profile_in_the_docs_is_valid(tmp_path):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "kubernetes.md").read_text()
    block = doc.split("### Kueue queues", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "profiles.yaml"
    path.write_text(block)
    assert get_profile("team-a-gpu", str(path)).kueue_queue == "team-a-gpu"
