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
