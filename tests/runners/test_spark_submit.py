"""spark-submit in the worker: the command line from the compute profile (pure: nothing started)."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import ConfigurationError
from airflow_mlplatform.runners.spark_submit import local_path, spark_submit_argv, worker_env


def test_command_line_has_the_profiles_master_conf_and_the_tasks_conf():
    argv = spark_submit_argv(
        spark={"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4"}},
        application="/app/job.jar",
        main_class="org.example.Main",
        arguments=["--n", 3],
        spark_conf={"spark.sql.shuffle.partitions": 8},
        name="t",
    )
    assert argv[0].endswith("spark-submit")
    assert argv[1:3] == ["--master", "local[2]"]
    assert "spark.sql.shuffle.partitions=8" in argv and "spark.sql.shuffle.partitions=4" not in argv
    assert "spark.driver.host=127.0.0.1" in argv  # a local master in the worker stays on loopback
    assert argv[-6:] == ["t", "--class", "org.example.Main", "/app/job.jar", "--n", "3"]
    env = worker_env({"master": "local[2]"})
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1" and env["PYSPARK_PYTHON"]


def test_worker_mode_takes_local_files_only():
    assert local_path("local:///app/job.py") == "/app/job.py"
    assert local_path("job.py") == "job.py"
    with pytest.raises(ConfigurationError, match="remote URI"):
        local_path("s3a://bucket/job.py")
