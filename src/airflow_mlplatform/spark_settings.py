"""The Spark session a job gets from its compute profile: ``spark: {master: ..., conf: {...}}``.

A profile (or a step's compute overrides) says which Spark master and configuration a job's
session uses; the operator turns that into environment variables that every way of starting
a session picks up, so the same notebook or script runs on ``local[*]`` in the worker and
against a cluster in production without a change:

- ``PYSPARK_SUBMIT_ARGS``: read by pyspark when it starts its JVM (any
  ``SparkSession.builder.getOrCreate()``);
- ``SPARK_OPTS``: read by the Apache Toree (Scala) kernel when it starts;
- ``MLPLATFORM_SPARK``: JSON ``{"master": ..., "conf": {...}}`` for
  :func:`airflow_mlplatform.runtime.spark_session`.

In the worker with a ``local`` master, the driver and the Spark UI are bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from airflow_mlplatform.exceptions import ProfilesFileError
from airflow_mlplatform.runtime import SPARK_ENV

#: The master a job in the worker gets when its profile names none.
DEFAULT_LOCAL_MASTER = "local[*]"
#: Configuration for a local master in the worker: nothing listens beyond loopback.
LOOPBACK_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}


def check_spark_settings(value: Any, *, where: str) -> dict[str, Any]:
    """Return a profile's ``spark`` field as ``{"master": str, "conf": {str: str}}``, or raise.

    :param value: the field as read from YAML (or an override).
    :param where: what holds the value, for the message.
    """
    if not isinstance(value, Mapping):
        raise ProfilesFileError(
            f"{where}: field 'spark' must be a mapping like {{master: 'local[2]', conf: {{...}}}}, got {value!r}"
        )
    extra = sorted(set(value) - {"master", "conf"})
    if extra:
        raise ProfilesFileError(
            f"{where}: field 'spark' may hold only 'master' and 'conf', not {', '.join(extra)}"
        )
    out: dict[str, Any] = {}
    master = value.get("master")
    if master is not None:
        if not isinstance(master, str) or not master.strip():
            raise ProfilesFileError(
                f"{where}: 'spark.master' must be a Spark master URL such as local[2], "
                f"spark://host:7077 or k8s://https://host:443, got {master!r}"
            )
        out["master"] = master.strip()
    conf = value.get("conf") or {}
    if not isinstance(conf, Mapping) or any(not str(k).startswith("spark.") for k in conf):
        raise ProfilesFileError(
            f"{where}: 'spark.conf' must map Spark properties (names starting with 'spark.') to values, "
            f"got {conf!r}"
        )
    if "spark.master" in conf:
        raise ProfilesFileError(
            f"{where}: give the master as 'spark.master' (the field), not as the conf property 'spark.master'"
        )
    out["conf"] = {str(k): _conf_value(v) for k, v in conf.items()}
    return out


def _conf_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def session_settings(spark: Mapping[str, Any] | None, *, in_worker: bool) -> dict[str, Any]:
    """The master and conf a job's session uses.

    :param spark: the profile's checked ``spark`` field (empty or None: no settings).
    :param in_worker: the job runs in the Airflow worker (else in a pod or cluster).
    """
    spark = spark or {}
    master = spark.get("master") or (DEFAULT_LOCAL_MASTER if in_worker else None)
    conf = dict(spark.get("conf") or {})
    if in_worker and master and master.startswith("local"):
        conf = {**LOOPBACK_CONF, **conf}
    return {"master": master, "conf": conf} if master else {"conf": conf}


def submit_args(settings: Mapping[str, Any]) -> list[str]:
    """``spark-submit`` options for ``settings`` (``--master M --conf k=v ...``).

    :param settings: from :func:`session_settings`.
    """
    args = ["--master", settings["master"]] if settings.get("master") else []
    for key, value in sorted((settings.get("conf") or {}).items()):
        args += ["--conf", f"{key}={value}"]
    return args


def spark_env(spark: Mapping[str, Any] | None, *, in_worker: bool) -> dict[str, str]:
    """Environment variables that give a job the profile's Spark session.

    Empty for a job outside the worker whose profile has no ``spark`` field.

    :param spark: the profile's checked ``spark`` field.
    :param in_worker: the job runs in the Airflow worker.
    """
    settings = session_settings(spark, in_worker=in_worker)
    if not settings.get("master") and not settings["conf"]:
        return {}
    args = submit_args(settings)
    env = {
        SPARK_ENV: json.dumps(settings, sort_keys=True),
        "PYSPARK_SUBMIT_ARGS": shlex.join([*args, "pyspark-shell"]),
        "SPARK_OPTS": shlex.join(args),
    }
    if in_worker and str(settings.get("master", "")).startswith("local"):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env
