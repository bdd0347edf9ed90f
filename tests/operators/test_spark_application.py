"""SparkApplicationOperator in real DAG runs: spark-submit in the worker (local profile) and a
SparkApplication on the Kubernetes test bed (fake Spark operator running the real driver)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sparktools import needs_java, new_mark, wait_for_marked

JOB = Path(__file__).resolve().parents[1] / "data" / "spark" / "sum_job.py"
PROFILES = """
profiles:
  spark-local:
    backend: local
    spark:
      master: "local[1]"
      conf: {spark.sql.shuffle.partitions: 3, spark.ui.enabled: false}
"""


@pytest.fixture
def spark_profiles(tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


def _dag(dag_id: str, **op_kwargs) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in op_kwargs.items())
    return textwrap.dedent(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.spark import SparkApplicationOperator

        with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            SparkApplicationOperator(task_id="spark", {args})
        """
    )


@needs_java
@pytest.mark.slow
def test_pyspark_script_in_the_worker_gets_the_profiles_session(run_dag, spark_profiles):
    mark = new_mark()
    result = run_dag(
        _dag(
            "spark_local",
            application=str(JOB),
            compute="spark-local",
            parameters={"n": 100},
            arguments=["--flag", 7],
            env={"MLPLATFORM_TEST_MARK": mark},
        ),
        "spark_local",
    )
    assert result.task_states() == {"spark": "success"}
    assert result.xcom("spark") == {
        "total": 5050,
        "args": ["--flag", "7"],
        "master": "local[1]",
        "partitions": "3",
    }
    assert result.xcom("spark", "metrics") == {"rows": 100, "partitions": 1}
    record = result.xcom("spark", "execution_record")
    assert record["environment"]["master"] == "local[1]" and record["code"]["application"] == str(JOB)
    wait_for_marked(mark, gone=True, timeout=20)  # spark-submit's JVM ended with the job


def test_bad_definitions_fail_when_the_dag_is_parsed():
    from airflow_mlplatform.exceptions import JobDefinitionError, UnknownComputeProfileError
    from airflow_mlplatform.operators.spark import SparkApplicationOperator

    with pytest.raises(JobDefinitionError, match="needs main_class"):
        SparkApplicationOperator(task_id="t", application="local:///app/job.jar")
    with pytest.raises(JobDefinitionError, match="cannot tell the application type"):
        SparkApplicationOperator(task_id="t", application="job.scala")
    with pytest.raises(UnknownComputeProfileError):
        SparkApplicationOperator(task_id="t", application="job.py", executor_compute="nope")


K8S_PROFILES = """
profiles:
  spark-k8s:
    backend: kubernetes
    image: spark:3.5.5-python3
    namespace: default
    requests: {cpu: "1", memory: 1Gi}
    labels: {tenant: research}
    spark:
      conf: {spark.sql.shuffle.partitions: 3}
"""


@pytest.fixture
def spark_k8s(k8s_kinds, tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(K8S_PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    k8s_kinds.clear_faults()
    return k8s_kinds


@needs_java
@pytest.mark.slow
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_sparkapplication_runs_a_real_pyspark_driver_and_its_values_come_back(run_dag, spark_k8s, deferrable):
    from fake_spark_operator import SPARKAPPLICATIONS

    dag_id = f"spark_k8s_{'deferred' if deferrable else 'sync'}"
    result = run_dag(
        _dag(
            dag_id,
            application=f"local://{JOB}",
            compute="spark-k8s",
            parameters={"n": 100 if deferrable else 10},
            arguments=["--flag", 7],
            deferrable=deferrable,
            delete_policy="never",
        ),
        dag_id,
    )
    assert result.task_states() == {"spark": "success"}
    total = 5050 if deferrable else 55
    assert result.xcom("spark") == {
        "total": total,
        "args": ["--flag", "7"],
        "master": "local[2]",
        "partitions": "3",
    }
    assert result.xcom("spark", "metrics")["rows"] == (100 if deferrable else 10)
    record = result.xcom("spark", "execution_record")
    assert record["where"]["kind"] == "SparkApplication" and record["where"]["deferred"] is deferrable
    kept = [
        o
        for o in spark_k8s.call(spark_k8s.emulator.objects, SPARKAPPLICATIONS, "default")
        if o["metadata"]["name"] == record["where"]["sparkapplication"]
    ]
    assert len(kept) == 1 and kept[0]["status"]["applicationState"]["state"] == "COMPLETED"
    assert kept[0]["spec"]["driver"]["labels"]["tenant"] == "research"
    assert kept[0]["spec"]["timeToLiveSeconds"] == 86400


def test_submission_failure_fails_the_task_with_the_operators_error_message(run_dag, spark_k8s):
    result = run_dag(
        _dag("spark_k8s_bad", application="local:///nowhere/job.py", compute="spark-k8s", retries=0),
        "spark_k8s_bad",
    )
    assert result.task_states() == {"spark": "failed"}
    record = result.xcom("spark", "execution_record")
    assert record["status"] == "failed"
    assert "SparkApplication" in record["error"] and "/nowhere/job.py does not exist" in record["error"]
