"""What the one job lifecycle notes for the record's ``usage`` section, on the test bed.

Every kind's sync run and deferred run check their notes in test_kube_job_lifecycle.py
(:func:`check_usage`); here: a job stopped while it runs, and the metrics of a re-attach and a
kill received by a StatsD listener (tests/test_metrics.py has the DAG runs).
"""

from __future__ import annotations

from datetime import datetime, timezone

from test_kube_job_lifecycle import ROLES, _job, bed  # noqa: F401

from airflow_mlplatform import usage
from statsd_listener import statsd_listener


def test_a_cluster_killed_while_running_is_billed_until_the_kill_and_says_deleted(bed):  # noqa: F811
    started = datetime.now(timezone.utc)
    job = _job("daskcluster", "manual__usage_kill")
    with usage.collecting() as notes:
        obj, _ = job.start()
        job.wait_started(obj)
        job.kill()
    section = usage.usage_section(
        notes=notes,
        profile=None,
        task_type="test",
        where={},
        started=started,
        ended=datetime.now(timezone.utc),
        status="killed",
    )
    assert notes.kube == [job.facts] and job.facts.deleted is True
    assert section["running"] is not None and section["running_s"] is not None and section["killed"] is True
    assert section["finished"] is not None  # billed until the try ended
    assert {r["role"]: r["count"] for r in section["replicas"]} == ROLES["daskcluster"]


def test_a_reattach_and_a_kill_are_counted_in_statsd(bed):  # noqa: F811
    first = _job("daskcluster", "manual__metrics_adopt", try_number=1)
    obj, _ = first.start()
    first.wait_started(obj)
    with statsd_listener() as statsd:
        second = _job("daskcluster", "manual__metrics_adopt", try_number=2)
        _, reattached = second.start()
        assert reattached
        second.kill()
        assert statsd.wait_for("mlplatform.job.deleted_on_stop", kind="DaskCluster", reason="killed")
    assert len(statsd.lines("mlplatform.job.reattached", kind="DaskCluster")) == 1
    assert not statsd.lines("mlplatform.job.started")
