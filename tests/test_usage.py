"""The record's ``usage`` section: replica shapes of every kind, the worker, Valohai (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_mlplatform import usage
from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.specs import daskjob, pod_template
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs import spark as sparkspec
from airflow_mlplatform.specs import tfjob as tfspec
from airflow_mlplatform.specs.kinds import POD

GPU = ComputeProfile(
    name="gpu-small",
    backend="kubernetes",
    image="img",
    requests={"cpu": "4", "memory": "16Gi"},
    gpus=1,
    node_selector={"pool": "gpu", "nvidia.com/gpu.product": "A100"},
    labels={"tenant": "research", "cost-centre": "cc-42"},
)
IDENTITY = {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 1}
GIB = 1024**3


def _pod() -> dict[str, Any]:
    return podspec.build_pod(GPU, name="p", command=["x"], labels=podspec.identity_labels(IDENTITY))


def _tfjob() -> dict[str, Any]:
    fields = pod_template.pod_fields(GPU)
    return tfspec.build_tfjob(
        name="tf",
        namespace="ml",
        image="img",
        command=["x"],
        replicas=tfspec.parse_replicas({"Chief": {"count": 1, **fields}, "Worker": {"count": 3, **fields}}),
        labels=podspec.identity_labels(IDENTITY),
    )


def _daskjob() -> dict[str, Any]:
    return daskjob.build_daskjob(
        name="dj",
        namespace="ml",
        image="img",
        command=["x"],
        n_workers=2,
        worker_pod=pod_template.pod_fields(GPU),
        labels=podspec.identity_labels(IDENTITY),
    )


def _daskcluster() -> dict[str, Any]:
    return daskjob.build_daskcluster(
        name="dc", namespace="ml", image="img", n_workers=2, worker_pod=pod_template.pod_fields(GPU)
    )


def _spark() -> dict[str, Any]:
    return sparkspec.build_sparkapplication(
        name="sp", namespace="ml", profile=GPU, main_file="local:///app.py", executors=3
    )


# kind builder -> (kind, {role: (count, cpu, memory GiB, gpus)})
KINDS = {
    "pod": (POD, _pod, {"pod": (1, 4.0, 16, 1)}),
    "tfjob": (tfspec.TFJOB_KIND, _tfjob, {"Chief": (1, 4.0, 16, 1), "Worker": (3, 4.0, 16, 1)}),
    "daskjob": (
        daskjob.DASKJOB_KIND,
        _daskjob,
        {"runner": (1, None, None, 0), "scheduler": (1, None, None, 0), "worker": (2, 4.0, 16, 1)},
    ),
    "daskcluster": (
        daskjob.DASKCLUSTER_KIND,
        _daskcluster,
        {"scheduler": (1, None, None, 0), "worker": (2, 4.0, 16, 1)},
    ),
    "spark": (sparkspec.SPARK_KIND, _spark, {"driver": (1, 4.0, 16, 1), "executor": (3, 4.0, 16, 1)}),
}


@pytest.mark.parametrize("case", sorted(KINDS))
def test_every_kind_says_its_replicas_resources_gpus_labels_and_node_pool(case):
    kind, build, expected = KINDS[case]
    shape = usage.manifest_shape(kind, build())
    got = {
        r["role"]: (
            r["count"],
            r["cpu"],
            r["memory_bytes"] / GIB if r["memory_bytes"] is not None else None,
            r["gpus"],
        )
        for r in shape["replicas"]
    }
    assert got == expected
    assert shape["kind"] == kind.label
    gpu_rows = [r for r in shape["replicas"] if r["gpus"]]
    assert gpu_rows and all(r["gpu_type"] == "A100" and r["node_pool"] == "gpu" for r in gpu_rows)
    assert shape["node_pool"] == "gpu"
    assert shape["labels"].get("tenant") == "research", shape["labels"]
    assert not any(k.startswith("mlplatform.airflow.apache.org/") for k in shape["labels"])


def test_totals_multiply_by_the_replica_count():
    shape = usage.manifest_shape(tfspec.TFJOB_KIND, _tfjob())
    assert usage.totals(shape["replicas"]) == {"replicas": 4, "cpu": 16.0, "memory_gib": 64.0, "gpus": 4.0}


T0 = datetime(2026, 11, 3, 10, 0, tzinfo=timezone.utc)


def test_a_remote_job_separates_pending_from_running_and_bills_the_running_time():
    notes = usage.UsageNotes()
    facts = usage.KubeFacts(
        shape=usage.manifest_shape(POD, _pod()),
        created=T0.timestamp() + 1,
        running=T0.timestamp() + 31,
        finished=T0.timestamp() + 91,
    )
    notes.kube.append(facts)
    section = usage.usage_section(
        notes=notes,
        profile=GPU,
        task_type="NotebookOperator",
        where={"backend": "kubernetes"},
        started=T0,
        ended=T0 + timedelta(seconds=95),
        status="success",
    )
    assert section["backend"] == "kubernetes" and section["kind"] == "Pod"
    assert (section["pending_s"], section["running_s"], section["duration_s"]) == (30.0, 60.0, 95.0)
    assert section["billable_s"] == 60.0
    assert (section["tenant"], section["cost_centre"], section["profile"]) == (
        "research",
        "cc-42",
        "gpu-small",
    )
    assert section["totals"] == {"replicas": 1, "cpu": 4.0, "memory_gib": 16.0, "gpus": 1.0}
    assert section["failed"] is False and section["killed"] is False


def test_a_job_killed_while_running_ran_until_the_try_ended():
    notes = usage.UsageNotes(
        kube=[
            usage.KubeFacts(
                shape=usage.manifest_shape(POD, _pod()), created=T0.timestamp(), running=T0.timestamp() + 5
            )
        ]
    )
    section = usage.usage_section(
        notes=notes,
        profile=GPU,
        task_type="X",
        where={},
        started=T0,
        ended=T0 + timedelta(seconds=20),
        status="killed",
    )
    assert section["running_s"] == 15.0 and section["killed"] is True and section["failed"] is True


def test_a_job_that_never_ran_is_all_pending_and_bills_nothing():
    notes = usage.UsageNotes(
        kube=[usage.KubeFacts(shape=usage.manifest_shape(POD, _pod()), created=T0.timestamp())]
    )
    section = usage.usage_section(
        notes=notes,
        profile=GPU,
        task_type="X",
        where={},
        started=T0,
        ended=T0 + timedelta(seconds=600),
        status="failed",
    )
    assert section["pending_s"] == 600.0 and section["running_s"] is None and section["billable_s"] == 0.0


def test_a_worker_job_bills_its_duration_with_one_core_unless_the_profile_says_more():
    section = usage.usage_section(
        notes=None,
        profile=None,
        task_type="NotebookOperator",
        where={"hostname": "w1"},
        started=T0,
        ended=T0 + timedelta(seconds=10),
        status="success",
    )
    assert (section["backend"], section["kind"], section["worker"]) == ("local", "worker", "w1")
    assert section["totals"]["cpu"] == 1.0 and section["billable_s"] == 10.0 and section["tenant"] is None
    local = ComputeProfile(name="big-worker", requests={"cpu": "2", "memory": "4Gi"}, labels={"tenant": "t1"})
    section = usage.usage_section(
        notes=None,
        profile=local,
        task_type="TFJobOperator",
        where={"replicas": {"Chief": 1, "Worker": 2}},
        started=T0,
        ended=T0 + timedelta(seconds=10),
        status="success",
    )
    assert section["totals"] == {"replicas": 3, "cpu": 6.0, "memory_gib": 12.0, "gpus": 0.0}
    assert section["tenant"] == "t1"


def test_valohai_records_its_environment_and_duration():
    notes = usage.UsageNotes(
        valohai=usage.valohai_facts(
            {
                "id": "e1",
                "status": "complete",
                "duration": 42.5,
                "environment": {"id": "u", "slug": "aws-eu-west-1-p3-2xlarge", "name": "AWS p3.2xlarge"},
            }
        )
    )
    section = usage.usage_section(
        notes=notes,
        profile=None,
        task_type="ValohaiExecutionOperator",
        where={"backend": "valohai"},
        started=T0,
        ended=T0 + timedelta(seconds=60),
        status="success",
    )
    assert section["kind"] == "ValohaiExecution" and section["billable_s"] == 42.5
    assert section["valohai"]["environment"] == "aws-eu-west-1-p3-2xlarge"
    assert section["valohai"]["environment_name"] == "AWS p3.2xlarge"


def test_spark_memory_units_become_kubernetes_quantities():
    assert sparkspec._spark_memory_quantity("512m") == "512Mi"
    assert sparkspec._spark_memory_quantity("2g") == "2Gi"
    assert sparkspec._spark_memory_quantity("3gb") == "3Gi"


def test_a_spark_job_in_the_worker_counts_the_cores_of_its_local_master():
    profile = ComputeProfile(name="spark-local", spark={"master": "local[4]"})
    section = usage.usage_section(
        notes=None, profile=profile, task_type="SparkApplicationOperator", where={}, started=T0,
        ended=T0 + timedelta(seconds=60), status="success",
    )  # fmt: skip
    assert section["totals"]["cpu"] == 4.0 and section["profile"] == "spark-local"
