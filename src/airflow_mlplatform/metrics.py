"""Monitoring: every job kind's metrics through Airflow's own ``Stats`` facade.

StatsD, DogStatsD or OpenTelemetry, as the deployment configures ``[metrics]``; tags where the
backend takes them (DogStatsD, OpenTelemetry, StatsD with ``statsd_influxdb_enabled``). Tags are
the job's kind, compute profile and tenant (and an outcome or API status), never parameters or
secrets. The names are listed in docs/monitoring.md (:data:`METRICS` is the same table).

Emitting never fails a job: a broken metrics backend is logged once and ignored.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "mlplatform"
#: name -> (type, tags, what it measures). docs/monitoring.md shows this table.
METRICS: dict[str, tuple[str, str, str]] = {
    "mlplatform.job.start_latency": (
        "timer",
        "kind, profile, tenant",
        "created -> running of a remote job (pending pods, image pulls, queueing), ms",
    ),
    "mlplatform.job.duration": ("timer", "kind, profile, tenant, outcome", "the try's job, start to end, ms"),
    "mlplatform.job.runs": ("counter", "kind, profile, tenant, outcome", "tries that ended, by outcome"),
    "mlplatform.job.failures": (
        "counter",
        "kind, profile, tenant, outcome",
        "tries that failed or were killed",
    ),
    "mlplatform.job.started": ("counter", "kind, tenant", "remote jobs created (not adopted)"),
    "mlplatform.job.reattached": (
        "counter",
        "kind, tenant",
        "remote jobs of an earlier try adopted instead of started again",
    ),
    "mlplatform.job.deleted_on_stop": (
        "counter",
        "kind, reason",
        "remote objects deleted because the task was killed, timed out or failed",
    ),
    "mlplatform.api.retries": ("counter", "api, status", "API calls retried (429, 5xx, dropped connection)"),
    "mlplatform.trigger.watches": ("counter", "kind", "watches a trigger opened on a remote job"),
    "mlplatform.trigger.polls": ("counter", "api", "status polls a trigger made (Valohai)"),
    "mlplatform.notebook.cells_executed": ("counter", "kernel, profile, tenant", "notebook cells run"),
    "mlplatform.notebook.cells_failed": ("counter", "kernel, profile, tenant", "notebook cells that raised"),
}
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_broken = False


def _stats() -> Any:
    """The Task SDK's stats module, initialized from ``[metrics]`` if nothing did it yet."""
    from airflow.sdk._shared.observability.metrics import stats as module

    if getattr(module, "_factory", None) is None:  # e.g. dag.test(), the triggerer
        from airflow.sdk.configuration import conf
        from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

        module.initialize(
            factory=get_stats_factory(),
            export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=False),
        )
    return module


def clean_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tag values as StatsD-safe words (``[A-Za-z0-9_.-]``); empty ones say ``none``.

    :param tags: the tags.
    """
    return {
        str(k): _safe_value(v if v is None or isinstance(v, (str, int, float)) else str(v))
        for k, v in (tags or {}).items()
    }


@functools.lru_cache(maxsize=4096)
def _safe_value(value: Any) -> str:
    return _SAFE.sub("_", str(value)) if value not in (None, "") else "none"


def incr(name: str, *, count: int = 1, tags: Mapping[str, Any] | None = None) -> None:
    """Count ``name`` (one of :data:`METRICS`) up by ``count``.

    :param name: the metric.
    :param count: by how much.
    :param tags: its tags.
    """
    _emit("incr", name, count, tags)


def timing(name: str, seconds: float, *, tags: Mapping[str, Any] | None = None) -> None:
    """Record a duration (sent in milliseconds, as Airflow's own timers are).

    :param name: the metric.
    :param seconds: the duration.
    :param tags: its tags.
    """
    _emit("timing", name, max(0.0, seconds) * 1000.0, tags)


def _emit(method: str, name: str, value: float, tags: Mapping[str, Any] | None) -> None:
    global _broken
    if _broken:
        return
    try:
        getattr(_stats(), method)(name, value, tags=clean_tags(tags))
    except Exception:
        _broken = True
        log.warning("metrics: could not emit %s; no more metrics from this process", name, exc_info=True)


def api_retry(api: str, status: Any) -> None:
    """Count one retried API call (``mlplatform.api.retries``).

    :param api: ``kubernetes`` or ``valohai``.
    :param status: the HTTP status (429, 503...) or ``connection`` for a dropped connection.
    """
    incr("mlplatform.api.retries", tags={"api": api, "status": status})


def job_tags(usage: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """kind, profile and tenant of a record's ``usage`` section, plus ``extra``.

    :param usage: the usage section (or None).
    """
    usage = usage or {}
    return {
        "kind": usage.get("kind"),
        "profile": usage.get("profile"),
        "tenant": usage.get("tenant"),
        **extra,
    }


def job_ended(usage: Mapping[str, Any]) -> None:
    """Outcome and duration of a try, and its start latency when a remote job started.

    :param usage: the try's usage section.
    """
    outcome = usage.get("status") or "unknown"
    tags = job_tags(usage, outcome=outcome)
    incr("mlplatform.job.runs", tags=tags)
    if outcome != "success":
        incr("mlplatform.job.failures", tags=tags)
    timing("mlplatform.job.duration", float(usage.get("duration_s") or 0.0), tags=tags)
    if usage.get("pending_s") is not None and usage.get("running") is not None:
        timing("mlplatform.job.start_latency", float(usage["pending_s"]), tags=job_tags(usage))
