"""What the one job lifecycle notes for the record's ``usage`` section, on the test bed.

Every kind's sync run and deferred run check their notes in test_kube_job_lifecycle.py
(:func:`check_usage`); here: a job stopped while it runs.
"""

from __future__ import annotations

from datetime import datetime, timezone

from test_kube_job_lifecycle import ROLES, _job, bed  # noqa: F401

from airflow_mlplatform import usage


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
