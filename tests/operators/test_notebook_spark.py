"""Scala (Apache Toree) and PySpark notebooks through NotebookOperator, with a Spark session
chosen by the compute profile; real papermill, real kernels, real local Spark."""

from __future__ import annotations

import textwrap

import pytest

from nbtools import write_notebook
from sparktools import needs_java, needs_toree, new_mark, wait_for_marked

# the Python notebook round trip, plus a long: papermill writes ints beyond 32 bits with L
ROUND_TRIP = {
    "an_int": 42,
    "negative": -7,
    "big": 2**40,
    "a_float": 3.25,
    "tiny": 1e-12,
    "yes": True,
    "no": False,
    "nothing": None,
    "quotes": "it's \"quoted\" and 'single'",
    "newlines": "line one\nline two\n\ttabbed \\ backslash \\u0041 \x01",
    "unicode": "héllo wörld ✓ 日本語 🚀",
    "empty": "",
    "a_list": [1, 2.5, "three", None, True, [4, {"five": 5}]],
    "a_dict": {"nested": {"deep": [1, 2, {"x": "y"}]}, "flag": False, "none": None},
}

PROFILES = """
profiles:
  spark-local:
    backend: local
    spark:
      master: "local[1]"
      conf: {spark.sql.shuffle.partitions: 3, spark.ui.enabled: true}
"""


@pytest.fixture
def spark_profiles(tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


def _dag(dag_id: str, notebook: str, **op_kwargs) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in op_kwargs.items())
    return textwrap.dedent(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.notebook import NotebookOperator

        with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            NotebookOperator(task_id="nb", notebook={notebook!r}, {args})
        """
    )


@needs_toree
@pytest.mark.slow
def test_scala_notebook_round_trips_types_and_uses_the_profiles_spark(run_dag, dags_folder, spark_profiles):
    names = sorted(ROUND_TRIP)
    write_notebook(
        dags_folder / "scala_nbs" / "types.ipynb",
        [
            ("parameters", "val an_int = 0"),
            'assert(kernel.eval(Some(scala.io.Source.fromFile(sys.env("MLPLATFORM_SCALA_RUNTIME")).mkString))._1)',
            "\n".join(f'mlplatform.record("{n}", {n})' for n in names)
            + '\nmlplatform.record("types", Map("an_int" -> an_int.getClass.getName, "big" -> big.getClass.getName,'
            ' "a_float" -> a_float.getClass.getName, "yes" -> yes.getClass.getName))'
            '\nmlplatform.record("master", spark.sparkContext.master)'
            '\nmlplatform.record("partitions", spark.conf.get("spark.sql.shuffle.partitions"))'
            '\nmlplatform.record("ui", spark.sparkContext.uiWebUrl)'
            '\nmlplatform.record("total", spark.range(1, 101).selectExpr("sum(id)").first().getLong(0))'
            '\nmlplatform.logMetrics("epoch" -> 1, "loss" -> 0.25)',
            # the one-liner, without the helper
            'println("::mlplatform::record {\\"name\\":\\"oneliner\\",\\"value\\":" + (an_int + 1) + "}")',
        ],
        kernel="apache_toree_scala",
        language="scala",
    )
    mark = new_mark()
    result = run_dag(
        _dag(
            "scala_types",
            "scala_nbs/types.ipynb",
            kernel_name="apache_toree_scala",
            compute="spark-local",
            parameters=ROUND_TRIP,
            env={"MLPLATFORM_TEST_MARK": mark},
            cell_timeout=300,
            start_timeout=180,
        ),
        "scala_types",
    )
    assert result.task_states() == {"nb": "success"}
    values = dict(result.xcom("nb"))
    extra = {k: values.pop(k) for k in ("types", "master", "partitions", "ui", "total", "oneliner")}
    assert values == ROUND_TRIP
    assert extra["types"] == {"an_int": "int", "big": "long", "a_float": "double", "yes": "boolean"}
    assert extra["master"] == "local[1]" and extra["partitions"] == "3" and extra["total"] == 5050
    assert extra["ui"].startswith("http://127.0.0.1:")
    assert extra["oneliner"] == 43
    assert result.xcom("nb", "metrics") == {"epoch": 1, "loss": 0.25}
    record = result.xcom("nb", "execution_record")
    assert record["environment"]["kernel"] == "apache_toree_scala"
    assert record["environment"]["language"] == "scala"
    wait_for_marked(mark, gone=True, timeout=20)  # the kernel's JVM is gone with the task


@needs_java
@pytest.mark.slow
def test_pyspark_notebook_gets_the_profiles_session_bound_to_loopback(run_dag, dags_folder, spark_profiles):
    write_notebook(
        dags_folder / "pyspark_nbs" / "session.ipynb",
        [
            ("parameters", "n = 10"),
            "from pyspark.sql import SparkSession\n"
            "from airflow_mlplatform.runtime import record, spark_session\n"
            "spark = spark_session('profile-session')\n"
            "plain = SparkSession.builder.getOrCreate()\n"
            "record('same_session', plain is spark)\n"
            "record('master', spark.sparkContext.master)\n"
            "record('driver_host', spark.conf.get('spark.driver.host'))\n"
            "record('partitions', spark.conf.get('spark.sql.shuffle.partitions'))\n"
            "record('ui', spark.sparkContext.uiWebUrl)\n"
            "record('total', spark.range(1, n + 1).groupBy().sum('id').first()[0])",
        ],
    )
    mark = new_mark()
    result = run_dag(
        _dag(
            "pyspark_session",
            "pyspark_nbs/session.ipynb",
            compute="spark-local",
            parameters={"n": 100},
            env={"MLPLATFORM_TEST_MARK": mark},
        ),
        "pyspark_session",
    )
    assert result.task_states() == {"nb": "success"}
    assert result.xcom("nb") == {
        "same_session": True,
        "master": "local[1]",
        "driver_host": "127.0.0.1",
        "partitions": "3",
        "ui": result.xcom("nb")["ui"],
        "total": 5050,
    }
    assert result.xcom("nb")["ui"].startswith("http://127.0.0.1:")
    wait_for_marked(mark, gone=True, timeout=20)  # the session's JVM ended with the kernel
