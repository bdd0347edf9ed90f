"""The Spark session a compute profile gives a job (pure: no Spark started)."""

from __future__ import annotations

import json
import shlex

import pytest

from airflow_mlplatform.compute import build_profile
from airflow_mlplatform.exceptions import ProfilesFileError
from airflow_mlplatform.spark_settings import spark_env


def _profile(**fields):
    return build_profile("p", fields, where="test")


def test_profile_spark_field_is_checked_and_normalised():
    profile = _profile(spark={"master": " local[2] ", "conf": {"spark.ui.enabled": False, "spark.sql.x": 4}})
    assert profile.spark == {"master": "local[2]", "conf": {"spark.ui.enabled": "false", "spark.sql.x": "4"}}
    assert _profile().spark == {}
    assert profile.with_overrides(spark={"master": "local[1]"}).spark == {"master": "local[1]", "conf": {}}


@pytest.mark.parametrize(
    ("spark", "match"),
    [
        ("local[2]", "must be a mapping"),
        ({"master": "local[2]", "cores": 2}, "only 'master' and 'conf', not cores"),
        ({"master": ""}, "Spark master URL"),
        ({"conf": {"executor.memory": "1g"}}, "names starting with 'spark.'"),
        ({"conf": {"spark.master": "local"}}, "give the master as 'spark.master'"),
    ],
)
def test_bad_spark_fields_say_what_to_write(spark, match):
    with pytest.raises(ProfilesFileError, match=match):
        _profile(spark=spark)


def test_worker_session_is_local_and_bound_to_loopback():
    env = spark_env({"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "3"}}, in_worker=True)
    args = shlex.split(env["PYSPARK_SUBMIT_ARGS"])
    assert args[:2] == ["--master", "local[2]"] and args[-1] == "pyspark-shell"
    assert "spark.driver.host=127.0.0.1" in args and "spark.driver.bindAddress=127.0.0.1" in args
    assert "spark.sql.shuffle.partitions=3" in args
    assert shlex.split(env["SPARK_OPTS"]) == args[:-1]  # the Toree kernel's options
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert json.loads(env["MLPLATFORM_SPARK"])["master"] == "local[2]"
    # no profile: local[*], still on loopback
    assert shlex.split(spark_env(None, in_worker=True)["SPARK_OPTS"])[:2] == ["--master", "local[*]"]


def test_cluster_session_is_not_forced_onto_loopback():
    env = spark_env(
        {"master": "spark://spark-master:7077", "conf": {"spark.executor.memory": "2g"}}, in_worker=True
    )
    assert "127.0.0.1" not in env["PYSPARK_SUBMIT_ARGS"] and "SPARK_LOCAL_IP" not in env
    in_pod = spark_env({"conf": {"spark.executor.instances": "4"}}, in_worker=False)
    assert shlex.split(in_pod["SPARK_OPTS"]) == ["--conf", "spark.executor.instances=4"]
    assert spark_env(None, in_worker=False) == {}
