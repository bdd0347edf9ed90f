"""Run a Spark application in the worker: ``spark-submit`` with the compute profile's session.

The master and conf come from the profile's ``spark`` field (:mod:`airflow_mlplatform.spark_settings`;
``local[*]`` on loopback without one). ``spark-submit`` is the one of pyspark (the provider's
``spark`` extra), else ``$SPARK_HOME/bin``, else the PATH. The JVM and its Python run in their
own process group, killed as a whole on kill and timeout (:class:`ProcessRunner`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import ConfigurationError
from airflow_mlplatform.spark_settings import session_settings, submit_args


def find_spark_submit() -> str:
    """The ``spark-submit`` to use in the worker.

    :raises ConfigurationError: none is installed.
    """
    try:
        import pyspark

        bundled = Path(pyspark.__file__).parent / "bin" / "spark-submit"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    home = os.environ.get("SPARK_HOME")
    if home and (Path(home) / "bin" / "spark-submit").is_file():
        return str(Path(home) / "bin" / "spark-submit")
    found = shutil.which("spark-submit")
    if found:
        return found
    raise ConfigurationError(
        "no spark-submit in the worker: install the provider's 'spark' extra "
        "(pip install 'airflow-provider-mlplatform[spark]', pyspark 3.5) and a Java 17 runtime, "
        "set SPARK_HOME, or run the application on Kubernetes with a kubernetes compute profile"
    )


def local_path(application: str) -> str:
    """The file of a ``local://`` or plain path application (worker mode takes no remote URIs).

    :param application: the main application file.
    """
    path = application[len("local://") :] if application.startswith("local://") else application
    if "://" in path:
        raise ConfigurationError(
            f"application {application!r} is a remote URI: in the worker spark-submit runs a local file; "
            "give a path, or use a kubernetes compute profile (the SparkApplication's image fetches it)"
        )
    return path


def spark_submit_argv(
    *,
    spark: Mapping[str, Any] | None,
    application: str,
    main_class: str | None = None,
    arguments: Sequence[Any] = (),
    spark_conf: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> list[str]:
    """The ``spark-submit`` command line of an application run in the worker.

    :param spark: the compute profile's ``spark`` field (None: ``local[*]``).
    :param application: the main file (.py, .R, .jar).
    :param main_class: the main class of a jar.
    :param arguments: the application's arguments.
    :param spark_conf: Spark properties; they win over the profile's.
    :param name: the application's name.
    """
    settings = session_settings(spark, in_worker=True)
    settings["conf"] = {**settings["conf"], **{str(k): str(v) for k, v in (spark_conf or {}).items()}}
    argv = [find_spark_submit(), *submit_args(settings)]
    if name:
        argv += ["--name", name]
    if main_class:
        argv += ["--class", main_class]
    return [*argv, application, *(str(a) for a in arguments)]


def worker_env(spark: Mapping[str, Any] | None) -> dict[str, str]:
    """Environment for spark-submit in the worker: this Python for PySpark, loopback for a local master.

    :param spark: the compute profile's ``spark`` field.
    """
    from airflow_mlplatform.spark_settings import spark_env

    env = {k: v for k, v in spark_env(spark, in_worker=True).items() if k != "PYSPARK_SUBMIT_ARGS"}
    return {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, **env}
