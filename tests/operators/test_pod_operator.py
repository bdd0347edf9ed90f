"""MLPlatformPodOperator end to end: real Airflow (dag.test) against the emulator + fake kubelet."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from airflow_mlplatform.specs import pod as podspec

REPO = Path(__file__).resolve().parents[2]

PROFILES = """
profiles:
  cpu-small:
    backend: kubernetes
    image: python:3.11-slim
    requests: {cpu: 100m, memory: 128Mi}
    labels: {tenant: tests}
  in-worker:
    backend: local
"""


@pytest.fixture
def profiles(tmp_path, monkeypatch, k8s_clean):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


def dag_pods(k8s, dag_id):
    key = podspec.label_key("dag_id")
    return [p for p in k8s.pods() if p["metadata"]["labels"].get(key) == dag_id]


def no_process_left(k8s, dag_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(dag_id.replace("_", "-") in n for n in k8s.running_processes()):
            return True
        time.sleep(0.1)
    return False


def test_example_dag_sync_and_deferrable(profiles, k8s_clean, run_dag):
    result = run_dag(REPO / "example_dags" / "example_pod_job.py", "example_pod_job")
    assert result.state == "success", result.task_states()
    assert result.xcom("train") == {"final_loss": 0.125}
    assert result.xcom("train", "final_loss") == 0.125
    assert result.xcom("train", "metrics") == {"epoch": 2, "loss": 0.125}
    record = result.xcom("train", "execution_record")
    assert record["parameters"] == {"epochs": 3, "decay": 0.5}
    assert record["where"]["backend"] == "kubernetes"
    assert record["environment"]["image"] == "python:3.11-slim"
    assert result.xcom_keys("check") >= {"return_value", "metrics", "execution_record"}
    assert dag_pods(k8s_clean, "example_pod_job") == []


def test_unknown_profile_fails_at_parse_time(profiles, dags_folder):
    import importlib.util

    from airflow_mlplatform.exceptions import UnknownComputeProfileError

    path = dags_folder / "bad_profile_dag.py"
    path.write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.sdk import DAG
            from airflow_mlplatform.operators.pod import MLPlatformPodOperator
            with DAG("bad_profile", start_date=datetime(2026, 1, 1), schedule=None) as dag:
                MLPlatformPodOperator(task_id="t", command=["true"], compute="gpu-huge")
            """
        )
    )
    try:
        spec = importlib.util.spec_from_file_location("bad_profile_dag", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        with pytest.raises(UnknownComputeProfileError, match="cpu-small, in-worker"):
            spec.loader.exec_module(module)
    finally:
        path.unlink()


def test_local_profile_is_refused_at_parse_time(profiles):
    from airflow_mlplatform.exceptions import ConfigurationError
    from airflow_mlplatform.operators.pod import MLPlatformPodOperator

    with pytest.raises(ConfigurationError, match="not a kubernetes profile"):
        MLPlatformPodOperator(task_id="t", command=["true"], compute="in-worker")


TIMEOUT_DAG = """
import sys
from datetime import datetime, timedelta
from airflow.sdk import DAG
from airflow_mlplatform.operators.pod import MLPlatformPodOperator

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    MLPlatformPodOperator(
        task_id="sleepy",
        command=[sys.executable, "-u", "-c", "import time; print('sleeping', flush=True); time.sleep(120)"],
        compute="cpu-small",
        execution_timeout=timedelta(seconds=3),
        deferrable={deferrable},
    )
"""


@pytest.mark.parametrize("deferrable", [False, True])
def test_execution_timeout_deletes_the_pod(profiles, k8s_clean, run_dag, deferrable):
    dag_id = f"pod_timeout_{'deferred' if deferrable else 'sync'}"
    result = run_dag(TIMEOUT_DAG.format(dag_id=dag_id, deferrable=deferrable), dag_id)
    assert result.task_states() == {"sleepy": "failed"}
    assert dag_pods(k8s_clean, dag_id) == []
    assert no_process_left(k8s_clean, dag_id)
