"""DeployModelOperator in real DAG runs: registry versions rolled out to the KServe test bed.

The registry is the embedded MLflow store; its artifact folder is the ``mlflow-artifacts`` PVC of
the fake cluster (``[mlplatform] deploy_storage_map``), so a version's ``file://`` source becomes
``pvc://mlflow-artifacts/...``, which the fake storage initializer copies and a real MLServer
loads. The deferrable run waits in the triggerer (``dag.test`` runs the trigger inline).
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import requests
from sklearn.linear_model import LogisticRegression

from airflow_mlplatform.hooks.mlflow import MLflowHook, embedded_store
from airflow_mlplatform.models import registry
from airflow_mlplatform.specs import inference as isvc

pytestmark = pytest.mark.slow
MODEL = "churn-op"
SMOKE = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.9, 0.2, 0.3]}]}


@pytest.fixture(scope="module")
def versions(airflow_db, kserve, tmp_path_factory):
    """Versions 1 (says 1), 2 (says 0) and 3 (not a model) of ``churn-op`` in the registry."""
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(1)
    x = rng.random((200, 3))
    files = []
    for name, labels in (("one", x[:, 0] > 0.5), ("two", x[:, 0] <= 0.5)):
        (folder / name).mkdir()
        joblib.dump(LogisticRegression().fit(x, labels.astype(int)), folder / name / "model.joblib")
        files.append(folder / name / "model.joblib")
    (folder / "bad").mkdir()
    (folder / "bad" / "model.joblib").write_bytes(b"garbage, not a model")
    files.append(folder / "bad" / "model.joblib")
    hook = MLflowHook()
    numbers = [
        registry.register(
            hook, name=MODEL, artifact=f, experiment="deploy-tests", key=f"k{i}", tags={}, description=""
        ).version
        for i, f in enumerate(files)
    ]
    root = str(embedded_store().artifact_root).rstrip("/")
    kserve.pvcs["mlflow-artifacts"] = Path(root.removeprefix("file://"))
    return numbers


@pytest.fixture
def storage_map(monkeypatch):
    root = str(embedded_store().artifact_root).rstrip("/")
    monkeypatch.setenv(
        "AIRFLOW__MLPLATFORM__DEPLOY_STORAGE_MAP", json.dumps({f"{root}/": "pvc://mlflow-artifacts/"})
    )


@pytest.fixture(scope="module")
def profiles_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("profiles") / "profiles.yaml"
    path.write_text(
        "profiles:\n"
        "  k8s-small:\n"
        "    backend: kubernetes\n"
        "    image: python:3.11-slim\n"  # a job's image; a deployment runs KServe's runtime image
        "    requests: {cpu: 250m, memory: 512Mi}\n"
        "    labels: {tenant: research, cost-centre: cc-7}\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
        yield path


DEPLOY_DAG = f"""
from airflow.sdk import DAG
from airflow_mlplatform.operators.deploy import DeployModelOperator

with DAG(dag_id="deploy_churn", schedule=None, catchup=False, params={{"version": 1}}) as dag:
    DeployModelOperator(
        task_id="deploy",
        model="models:/{MODEL}/{{{{ params.version }}}}",
        name="churn-op",
        compute="k8s-small",
        canary_traffic_percent=25,
        smoke_request={SMOKE!r},
        canary_gate="errors == 0",
        deferrable=True,
        startup_timeout=120,
    )
"""


def _predict(url: str) -> int:
    return _predict_at(url, "churn-op")


def _predict_at(url: str, name: str) -> int:
    r = requests.post(f"{url}/v2/models/{name}/infer", json=SMOKE, timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["outputs"][0]["data"][0])


def test_deploy_then_canary_then_an_unchanged_rerun(
    run_dag, k8s, kserve, versions, storage_map, profiles_file
):
    first = run_dag(DEPLOY_DAG, "deploy_churn", run_conf={"version": int(versions[0])})
    assert first.task_states() == {"deploy": "success"}
    url = first.xcom("deploy", "url")
    assert _predict(url) == 1
    assert first.xcom("deploy", "model_version") == int(
        versions[0]
    )  # an int, as RegisterModelOperator's version
    assert first.xcom("deploy", "changed") is True and first.xcom("deploy", "previous_model") is None
    assert first.xcom("deploy", "gate") is None  # a first rollout has no canary and nothing to compare with
    record = first.xcom("deploy", "execution_record")
    assert record["status"] == "success"
    assert record["where"]["inferenceservice"] == "churn-op" and record["where"]["deferred"] is True
    assert record["models"]["used"] == [
        {"name": MODEL, "alias": None, "version": str(versions[0]), "uri": f"models:/{MODEL}/{versions[0]}"}
    ]
    obj = k8s.call(
        k8s.emulator.get_object, "serving.kserve.io/v1beta1/inferenceservices", "default", "churn-op"
    )
    assert obj["spec"]["predictor"]["model"]["storageUri"].startswith("pvc://mlflow-artifacts/")
    assert obj["metadata"]["labels"][isvc.MODEL_VERSION_LABEL] == str(versions[0])
    assert obj["spec"]["predictor"]["labels"]["tenant"] == "research"  # the profile's billing labels

    second = run_dag(DEPLOY_DAG, "deploy_churn", run_conf={"version": int(versions[1])})
    assert second.task_states() == {"deploy": "success"}
    assert second.xcom("deploy", "previous_model") == f"{MODEL}/{versions[0]}"
    assert second.xcom("deploy", "canary_traffic_percent") == 25
    assert second.xcom("deploy", "gate").startswith("errors == 0 with")
    assert _predict(url) == 0
    record = second.xcom("deploy", "execution_record")
    summary = record["metrics"]["summary"]
    assert summary["smoke_errors"] == 0 and summary["smoke_latency_ms"] > 0
    assert record["where"]["api_requests"] <= 8

    third = run_dag(DEPLOY_DAG, "deploy_churn", run_conf={"version": int(versions[1])})
    assert third.xcom("deploy", "changed") is False
    assert third.xcom("deploy", "revision") == second.xcom("deploy", "revision")


FAIL_DAG = f"""
from airflow.sdk import DAG
from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.operators.deploy import DeployModelOperator

with DAG(dag_id="deploy_fails", schedule=None, catchup=False) as dag:
    good = DeployModelOperator(task_id="good", model=ModelRef("{MODEL}", version=1), name="churn-fail")
    bad = DeployModelOperator(task_id="bad", model=ModelRef("{MODEL}", version=3), name="churn-fail")
    good >> bad
"""


def test_a_version_that_fails_to_load_fails_the_task_with_its_record(
    run_dag, k8s, kserve, versions, storage_map
):
    assert versions[0] == "1" and versions[2] == "3"
    result = run_dag(FAIL_DAG, "deploy_fails")
    assert result.task_states() == {"good": "success", "bad": "failed"}
    record = result.xcom("bad", "execution_record")
    assert record["status"] == "failed"
    assert "FailedToLoad" in str(record["error"]) and "serves again" in str(record["error"])
    good = result.xcom("good", "execution_record")
    assert _predict_at(result.xcom("good", "url"), "churn-fail") == 1  # version 1 still serves
    obj = k8s.call(
        k8s.emulator.get_object, "serving.kserve.io/v1beta1/inferenceservices", "default", "churn-fail"
    )
    assert obj["spec"]["predictor"]["model"]["storageUri"] == good["environment"]["storage_uri"]


UNDEPLOY_DAG = f"""
from airflow.sdk import DAG
from airflow_mlplatform.operators.deploy import DeleteDeploymentOperator, DeployModelOperator

with DAG(dag_id="undeploy", schedule=None, catchup=False) as dag:
    DeleteDeploymentOperator(task_id="undeploy", name="churn-old")
    DeleteDeploymentOperator(task_id="undeploy_again", name="churn-none")
    DeployModelOperator(
        task_id="no_cluster", model="s3://models/churn/1", name="churn",
        kubernetes_conn_id="no_such_cluster", skip_without_kubernetes=True,
    )
    # no deploy_storage_map here: the registry's file:// source is the worker's disk
    DeployModelOperator(task_id="unmapped", model="models:/{MODEL}/1", name="churn-nomap")
"""


def test_undeploy_and_a_deploy_skipped_without_a_cluster(
    run_dag, k8s, kserve, versions, profiles_file, capfd
):
    old = {
        "metadata": {"name": "churn-old"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    }
    k8s.call(k8s.emulator.add_object, "serving.kserve.io/v1beta1/inferenceservices", "default", old)
    result = run_dag(UNDEPLOY_DAG, "undeploy")
    assert result.task_states() == {
        "undeploy": "success",
        "undeploy_again": "success",
        "no_cluster": "skipped",
        "unmapped": "failed",
    }
    record = result.xcom("unmapped", "execution_record")
    assert record["status"] == "failed" and "storage_uri_map" in str(record["error"])
    isvcs = k8s.call(k8s.emulator.objects, "serving.kserve.io/v1beta1/inferenceservices", "default")
    assert "churn-nomap" not in {o["metadata"]["name"] for o in isvcs}  # refused before anything was created
    assert result.xcom("undeploy", "deleted") is True
    assert result.xcom("undeploy_again", "deleted") is False
    assert (
        k8s.call(
            k8s.emulator.get_object, "serving.kserve.io/v1beta1/inferenceservices", "default", "churn-old"
        )
        is None
    )
    out = capfd.readouterr()
    assert (
        "No Kubernetes connection 'no_such_cluster' is configured: skipping the deployment"
        in out.out + out.err
    )


def test_the_quickstarts_deploy_step_serves_the_quickstarts_model(k8s, kserve, tmp_path):
    """The quickstart's own deploy task, as the README shows it: its smoke request (one row, 30
    features) answered by MLServer loading a model pickled as train.ipynb pickles it."""
    import pickle

    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_mlplatform.runners.rollout import Rollout
    from airflow_mlplatform.testing import load_dag

    repo = Path(__file__).resolve().parents[2]
    task = load_dag(repo / "example_dags" / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline").get_task(
        "deploy"
    )
    frame = load_breast_cancer(as_frame=True).frame
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(frame.drop(columns="target"), frame["target"])
    (tmp_path / "model").mkdir()
    with open(tmp_path / "model" / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    kserve.pvcs["quickstart"] = tmp_path
    rollout = Rollout(
        name=task.name,
        namespace="default",
        predictor=task._predictor("pvc://quickstart/model", None),
        model="quickstart-classifier/1",
        by="test/deploy/run/1",
        smoke_request=task.smoke_request,
        startup_timeout=120,
    )
    result = rollout.run()
    assert result.metrics["smoke_errors"] == 0  # the smoke request of the quickstart got outputs
    r = requests.post(f"{result.url}/v2/models/{task.name}/infer", json=task.smoke_request, timeout=30)
    assert r.json()["outputs"][0]["data"] == [0]  # the first row of the data set is malignant (0)
