from __future__ import annotations

import pytest
from crd_schema import validate

from airflow_mlplatform.exceptions import JobDefinitionError
from airflow_mlplatform.specs import daskjob

LABELS = {"mlplatform.airflow.apache.org/dag-id": "d", "mlplatform.airflow.apache.org/task-id": "t"}
GPU_WORKER = {
    "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4", "memory": "16Gi"}},
    "node_selector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def test_daskjob_valid_with_gpu_workers():
    manifest = daskjob.build_daskjob(
        name="dask-d-t-0123456789",
        namespace="ml",
        image="rapidsai/base:24.10-cuda12.5-py3.12",
        command=["python", "/code/job.py"],
        n_workers=3,
        env={"MLPLATFORM_PARAMETERS": "{}"},
        labels=LABELS,
        worker_pod=GPU_WORKER,
    )
    validate(manifest, "kubernetes.dask.org_daskjobs.yaml")
    assert manifest["kind"] == "DaskJob"
    job = manifest["spec"]["job"]["spec"]
    assert job["containers"][0]["args"] == ["python", "/code/job.py"]
    assert job["restartPolicy"] == "Never"
    cluster = manifest["spec"]["cluster"]["spec"]
    assert cluster["worker"]["replicas"] == 3
    worker = cluster["worker"]["spec"]
    assert worker["containers"][0]["args"][:3] == ["dask", "cuda", "worker"]
    assert worker["nodeSelector"] == {"pool": "gpu"}
    assert cluster["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == "dask-d-t-0123456789"
    assert cluster["worker"]["metadata"]["labels"] == LABELS


def test_daskcluster_valid_cpu_workers():
    manifest = daskjob.build_daskcluster(
        name="dask-x",
        namespace="ml",
        labels=LABELS,
        image="ghcr.io/dask/dask:latest",
        n_workers=2,
        idle_timeout=600,
    )
    validate(manifest, "kubernetes.dask.org_daskclusters.yaml")
    assert manifest["kind"] == "DaskCluster"
    assert manifest["spec"]["worker"]["spec"]["containers"][0]["args"][:2] == ["dask", "worker"]
    assert manifest["spec"]["idleTimeout"] == 600


@pytest.mark.parametrize("n", [0, -1, "2", True])
def test_bad_worker_count(n):
    with pytest.raises(JobDefinitionError, match="n_workers must be an integer >= 1"):
        daskjob.build_daskcluster(name="x", namespace="d", image="i", n_workers=n)


def test_daskjob_needs_command_and_image():
    with pytest.raises(JobDefinitionError, match="needs a command"):
        daskjob.build_daskjob(name="x", namespace="d", image="i", command=[], n_workers=1)
    with pytest.raises(JobDefinitionError, match="needs an image"):
        daskjob.build_daskjob(name="x", namespace="d", image="", command=["python"], n_workers=1)


def test_a_profile_secrets_reach_the_dask_pods():
    from airflow_mlplatform.compute import build_profile
    from airflow_mlplatform.specs.tfjob import pod_fields_from_profile

    profile = build_profile(
        "dask",
        {"backend": "kubernetes", "image": "ghcr.io/dask/dask:latest", "secrets": ["s3-creds"]},
        where="test",
    )
    fields = pod_fields_from_profile(profile)
    secret_refs = [{"secretRef": {"name": "s3-creds"}}]
    job = daskjob.build_daskjob(
        name="dask-d-t-0123456789",
        namespace="ml",
        image="ghcr.io/dask/dask:latest",
        command=["python", "/code/job.py"],
        n_workers=2,
        labels=LABELS,
        runner_pod=fields,
        scheduler_pod=fields,
        worker_pod=fields,
    )
    validate(job, "kubernetes.dask.org_daskjobs.yaml")
    cluster = job["spec"]["cluster"]["spec"]
    for pod in (job["spec"]["job"]["spec"], cluster["scheduler"]["spec"], cluster["worker"]["spec"]):
        assert pod["containers"][0]["envFrom"] == secret_refs
    cluster_manifest = daskjob.build_daskcluster(
        name="dask-x",
        namespace="ml",
        labels=LABELS,
        image="ghcr.io/dask/dask:latest",
        n_workers=1,
        worker_pod=fields,
    )
    validate(cluster_manifest, "kubernetes.dask.org_daskclusters.yaml")
    assert cluster_manifest["spec"]["worker"]["spec"]["containers"][0]["envFrom"] == secret_refs
