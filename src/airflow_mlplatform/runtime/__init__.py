"""What runs INSIDE a job: report named values and metrics back to Airflow.

Standard library only, so a job image needs nothing but this file (or no file at all:
the wire format is one line on stdout and is as easy to print from R or a shell).

Wire format, one line on stdout per value::

    ::mlplatform::record {"name": "accuracy", "value": 0.93}

Metrics follow the Valohai convention: every line of stdout that is a JSON object,
e.g. ``{"epoch": 3, "loss": 0.21}``, is one row of the metric series.

From R (the one-liner)::

    cat("::mlplatform::record", jsonlite::toJSON(list(name = "accuracy", value = 0.93), auto_unbox = TRUE, digits = NA), "\\n")

or ``source(Sys.getenv("MLPLATFORM_R_RUNTIME")); record("accuracy", 0.93)``.

From Scala (an Apache Toree notebook), load ``mlplatform.scala`` in one cell, then
``mlplatform.record("accuracy", 0.93)``::

    assert(kernel.eval(Some(scala.io.Source.fromFile(sys.env("MLPLATFORM_SCALA_RUNTIME")).mkString))._1)

A Spark session as the compute profile says (``spark: {master, conf}``): ``spark_session()``.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import RecordError

RECORD_PREFIX = "::mlplatform::record"
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,249}$")
#: XCom keys the provider writes itself; a recorded value cannot use them.
RESERVED_NAMES = frozenset({"return_value", "metrics", "execution_record"})
#: Largest recorded value (bytes of JSON); larger data goes to a file under ``output_dir()``.
MAX_VALUE_BYTES = 1024 * 1024
#: Environment variable holding the directory where a job writes its output files.
OUTPUT_DIR_ENV = "MLPLATFORM_OUTPUT_DIR"
#: Environment variable holding the URI of this try's output folder (shared storage).
OUTPUT_URI_ENV = "MLPLATFORM_OUTPUT_URI"
#: Environment variable holding the path of the R runtime (``source()`` it from R).
R_RUNTIME_ENV = "MLPLATFORM_R_RUNTIME"
#: Environment variable holding the path of the Scala runtime (``mlplatform.scala``).
SCALA_RUNTIME_ENV = "MLPLATFORM_SCALA_RUNTIME"
#: Environment variable with the job's Spark master and conf as JSON (set by the operator).
SPARK_ENV = "MLPLATFORM_SPARK"

__all__ = [
    "RECORD_PREFIX",
    "RESERVED_NAMES",
    "log_metrics",
    "output_dir",
    "output_uri",
    "record",
    "spark_session",
]


def check_name(name: object) -> str:
    """Return ``name`` if it can be a recorded value's name (an XCom key), else raise.

    :param name: the proposed name.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RecordError(
            f"cannot record a value named {name!r}: a name starts with a letter or '_' and holds only "
            "letters, digits, '_', '.', '-' (at most 250 characters)"
        )
    if name in RESERVED_NAMES:
        raise RecordError(
            f"cannot record a value named {name!r}: that XCom key is reserved by the provider "
            f"({', '.join(sorted(RESERVED_NAMES))}); choose another name"
        )
    return name


def _dumps(value: Any, what: str) -> str:
    offenders: list[Any] = []

    def _default(obj: Any) -> Any:
        offenders.append(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"), default=_default)
    except (TypeError, ValueError) as e:
        hint = ""
        if offenders and type(offenders[0]).__module__.split(".")[0] == "numpy":
            hint = " (a numpy value: convert it with .item() or .tolist())"
        raise RecordError(
            f"cannot record {what}: {e}{hint}. Recorded values must be JSON-serializable "
            "(str, int, float, bool, None, list, dict); pass large data or files as a path/URI "
            "written under output_dir()"
        ) from e


def _finite(value: Any) -> tuple[Any, bool]:
    if isinstance(value, float) and not math.isfinite(value):
        return None, True
    if isinstance(value, dict):
        pairs = [(k, _finite(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, any(f for _, (_, f) in pairs)
    if isinstance(value, (list, tuple)):
        items = [_finite(v) for v in value]
        return [v for v, _ in items], any(f for _, f in items)
    return value, False


def record(name: str, value: Any) -> Any:
    """Record a named value; Airflow pushes it to XCom under ``name`` and in ``return_value``.

    NaN and infinity are recorded as null (with a warning on stderr), as in metrics.

    :param name: the value's name (becomes an XCom key).
    :param value: any JSON-serializable value of at most 1 MB as JSON; larger data is written
        to a file under ``output_dir()`` and its path (``output_uri(name)``) recorded instead.
    :return: ``value`` unchanged, so ``x = record("x", compute())`` reads naturally.
    """
    check_name(name)
    clean, changed = _finite(value)
    if changed:
        sys.stderr.write(f"mlplatform: recorded value {name!r} holds NaN or infinity: recorded as null\n")
    payload = _dumps({"name": name, "value": clean}, f"value {name!r}")
    if len(payload.encode()) > MAX_VALUE_BYTES:
        raise RecordError(
            f"cannot record value {name!r}: {len(payload.encode())} bytes as JSON, over the limit of "
            f"{MAX_VALUE_BYTES}; write it to a file under output_dir() and record the file's path "
            "(output_uri(name)) instead"
        )
    sys.stdout.write(f"{RECORD_PREFIX} {payload}\n")
    sys.stdout.flush()
    return value


def log_metrics(**metrics: Any) -> None:
    """Print one JSON line of metrics (``log_metrics(epoch=1, loss=0.3)``).

    :param metrics: metric names and values; NaN and infinity are written as null.
    """
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    sys.stdout.write(_dumps(clean, "metrics") + "\n")
    sys.stdout.flush()


def output_uri(name: str = "") -> str:
    """Where a file written as ``output_dir() / name`` is kept once the job ends.

    Equal to the local path when the job runs in the worker; a URI (``s3://...``) when it
    runs in a pod and outputs go to object storage. Record this, not the local path, when
    the next step may run elsewhere.

    :param name: a file name relative to ``output_dir()``.
    """
    base = os.environ.get(OUTPUT_URI_ENV) or str(output_dir())
    return f"{base.rstrip('/')}/{name}" if name else base


def r_runtime_path() -> str:
    """Path of ``mlplatform.R``, the R side of this runtime."""
    return str(Path(__file__).with_name("mlplatform.R"))


def scala_runtime_path() -> str:
    """Path of ``mlplatform.scala``, the Scala side of this runtime."""
    return str(Path(__file__).with_name("mlplatform.scala"))


def spark_session(app_name: str | None = None) -> Any:
    """A pyspark ``SparkSession`` with the master and conf of the job's compute profile.

    The operator puts the profile's ``spark: {master, conf}`` in ``MLPLATFORM_SPARK`` (and in
    ``PYSPARK_SUBMIT_ARGS``, so a plain ``SparkSession.builder.getOrCreate()`` gets it too);
    outside Airflow the session is pyspark's default (``local[*]``). The session is stopped
    when the process exits. Needs pyspark (imported here, not when this module is).

    :param app_name: the application name shown by Spark.
    """
    from pyspark.sql import SparkSession

    settings = json.loads(os.environ.get(SPARK_ENV) or "{}")
    builder = SparkSession.builder
    if settings.get("master"):
        builder = builder.master(settings["master"])
    for key, value in (settings.get("conf") or {}).items():
        builder = builder.config(key, value)
    if app_name:
        builder = builder.appName(app_name)
    session = builder.getOrCreate()
    atexit.register(session.stop)
    return session


def output_dir() -> Path:
    """Directory where the job should write files it wants to keep (created if missing).

    The operator sets ``MLPLATFORM_OUTPUT_DIR`` for each try of each task; outside Airflow
    it is the current directory.
    """
    path = Path(os.environ.get(OUTPUT_DIR_ENV) or ".").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
