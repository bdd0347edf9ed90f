"""Metrics (and the usage section) per job: time spent, against the job's own work, same run.

Per job, a pod job emits what ``run_recorded`` and the ``KubeJob`` lifecycle emit: the outcome,
duration and start latency (``jobs.emit_job_metrics``), a start, a trigger watch and a notebook's
cell count: 7 metrics. Measured over ``--jobs`` jobs through Airflow's real Stats facade:

* with StatsD on (real UDP datagrams to a socket on 127.0.0.1, InfluxDB tags);
* with metrics off (Airflow's NoStatsLogger): the facade's own cost;
* building the record's usage section (``usage.usage_section``) for the same job;
* the job's own work, the cheapest real job there is: one ``python -c pass`` process.

Target: under 1 ms per job.

    .venv/bin/python benchmarks/bench_metrics_overhead.py [--jobs 20000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-metrics-home-"))


def per_job(emit, jobs: int) -> float:
    """Seconds per job."""
    begun = time.perf_counter()
    for _ in range(jobs):
        emit()
    return (time.perf_counter() - begun) / jobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

    from airflow_mlplatform import metrics, usage
    from airflow_mlplatform.jobs import emit_job_metrics
    from usage_records import PROFILES, START, record

    rec = record(dag_id="d", run_id="r", task_id="t", started=START, seconds=60, profile=PROFILES[1])
    shape = {"kind": "Pod", "replicas": rec["usage"]["replicas"], "labels": rec["usage"]["labels"]}
    t0 = START.timestamp()
    facts = usage.KubeFacts(shape=shape, created=t0, running=t0 + 10, finished=t0 + 70)

    def one_job() -> None:
        emit_job_metrics(rec)  # runs, duration, start latency
        metrics.incr("mlplatform.job.started", tags={"kind": "Pod", "tenant": "vision"})
        metrics.incr("mlplatform.trigger.watches", tags={"kind": "Pod"})
        metrics.incr(
            "mlplatform.notebook.cells_executed", count=5, tags={"kernel": "python3", "tenant": "vision"}
        )

    def one_section() -> None:
        usage.usage_section(
            notes=usage.UsageNotes(kube=[facts]),
            profile=PROFILES[1],
            task_type="MLPlatformPodOperator",
            where={},
            started=START,
            ended=START + timedelta(seconds=70),
            status="success",
        )

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    os.environ.update(
        AIRFLOW__METRICS__STATSD_ON="True",
        AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
        AIRFLOW__METRICS__STATSD_PORT=str(sink.getsockname()[1]),
        AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED="True",
    )
    stats.initialize(factory=get_stats_factory(), export_legacy_names=False)
    one_job()  # the client is created on first use
    received = 0
    statsd = per_job(one_job, args.jobs)
    try:
        while True:
            sink.recv(65535)
            received += 1
    except BlockingIOError:
        pass
    stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
    off = per_job(one_job, args.jobs)
    section = per_job(one_section, args.jobs)
    begun = time.perf_counter()
    for _ in range(20):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    work = (time.perf_counter() - begun) / 20
    print(
        f"jobs: {args.jobs}, 7 metrics each, sent for real ({received} datagrams still in the socket's "
        f"buffer afterwards); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} shared cores"
    )
    print(f"{'per job':<44} {'microseconds':>12} {'of the job':>11}")
    for name, seconds in (
        ("metrics, StatsD on (UDP to 127.0.0.1)", statsd),
        ("metrics, metrics off (NoStatsLogger)", off),
        ("usage section built", section),
        ("the job's own work: one `python -c pass`", work),
    ):
        print(f"{name:<44} {seconds * 1e6:12.1f} {seconds / work:10.4%}")
    print(f"target: under 1 ms per job -> {'met' if statsd + section < 1e-3 else 'NOT met'}")


if __name__ == "__main__":
    main()
