"""The one job lifecycle (KubeJob, KubeJobTrigger) for every kind, on the Kubernetes test bed.

Each test runs for every kind it applies to (parametrized over :data:`CASES`): a plain pod (the
fake kubelet runs it), a TFJob (the fake training operator creates its replica pods), a DaskJob
(the fake Dask operator starts a scheduler, a worker and the runner pod), a DaskCluster, a
SparkApplication (the fake Spark operator's driver pod is a real ``spark-submit``).

Airflow calls ``on_kill`` from a SIGTERM handler in the main thread, so the kill can arrive while
the create request is in flight in the same thread; here the hook's ``create_object`` calls the
kill itself (before or after the real POST), as such a handler would.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.exceptions import (
    JobFailedError,
    JobKilledError,
    KubernetesNotFoundError,
    KubernetesTimeoutError,
)
from airflow_mlplatform.hooks.kubernetes import USER_AGENT
from airflow_mlplatform.specs import daskjob
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs import spark as sparkspec
from airflow_mlplatform.specs import tfjob as tfspec
from airflow_mlplatform.specs.kinds import POD, JobKind, object_name
from fake_dask_operator import DASKCLUSTERS, DASKJOBS
from fake_spark_operator import SPARKAPPLICATIONS
from fake_training_operator import TFJOBS
from kube.fixtures import first_event

PROFILE = ComputeProfile(name="test", backend="kubernetes", image="python:3.11", namespace="default")

JOB = r"""
import json, os, sys, time
mode = os.environ.get("MODE", "ok")
print(json.dumps({"step": 0, "loss": 1.0}), flush=True)
time.sleep(30 if mode == "hang" else 0.6)
print(json.dumps({"step": 1, "loss": 0.5}), flush=True)
print("::mlplatform::record " + json.dumps({"name": "answer", "value": os.environ["ANSWER"]}), flush=True)
sys.exit(3 if mode == "fail" else 0)
"""


def _identity(run_id: str, try_number: int = 1) -> dict[str, Any]:
    return {"dag_id": "life", "task_id": "t", "run_id": run_id, "map_index": -1, "try_number": try_number}


def _pod(identity: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return podspec.build_pod(
        PROFILE,
        name=object_name(POD, identity),
        command=[sys.executable, "-u", "-c", JOB],
        env=env,
        labels=podspec.identity_labels(identity),
        annotations=podspec.identity_annotations(identity),
        namespace="default",
    )


def _tfjob(identity: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return tfspec.build_tfjob(
        name=object_name(tfspec.TFJOB_KIND, identity),
        namespace="default",
        image="tf",
        command=[sys.executable, "-u", "-c", JOB],
        replicas=tfspec.parse_replicas({"Worker": 1}),
        env=env,
        labels=podspec.identity_labels(identity),
        annotations=podspec.identity_annotations(identity),
    )


def _daskjob(identity: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return daskjob.build_daskjob(
        name=object_name(daskjob.DASKJOB_KIND, identity),
        namespace="default",
        image="dask",
        command=[sys.executable, "-u", "-c", JOB],
        n_workers=1,
        env=env,
        labels=podspec.identity_labels(identity),
        annotations=podspec.identity_annotations(identity),
    )


def _daskcluster(identity: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return daskjob.build_daskcluster(
        name=object_name(daskjob.DASKCLUSTER_KIND, identity),
        namespace="default",
        labels=podspec.identity_labels(identity),
        annotations=podspec.identity_annotations(identity),
        image="dask",
        n_workers=1,
    )


_SPARK_JOB = Path(tempfile.gettempdir()) / f"mlplatform-lifecycle-job-{os.getpid()}.py"


def _sparkapplication(identity: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    if not _SPARK_JOB.exists():
        _SPARK_JOB.write_text(JOB)
    return sparkspec.build_sparkapplication(
        name=object_name(sparkspec.SPARK_KIND, identity),
        namespace="default",
        profile=PROFILE,
        main_file=f"local://{_SPARK_JOB}",
        env=env,
        labels=podspec.identity_labels(identity),
        annotations=podspec.identity_annotations(identity),
    )


@dataclass(frozen=True)
class Case:
    kind: JobKind
    key: str
    build: Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]
    runs: bool = True  # it ends by itself, with a log (a DaskCluster only starts)


CASES = {
    "pod": Case(POD, "v1/pods", _pod),
    "tfjob": Case(tfspec.TFJOB_KIND, TFJOBS, _tfjob),
    "daskjob": Case(daskjob.DASKJOB_KIND, DASKJOBS, _daskjob),
    "daskcluster": Case(daskjob.DASKCLUSTER_KIND, DASKCLUSTERS, _daskcluster, runs=False),
    "spark": Case(sparkspec.SPARK_KIND, SPARKAPPLICATIONS, _sparkapplication),
}
RUNNING_KINDS = sorted(k for k, c in CASES.items() if c.runs)
#: The replica types and counts each case's manifest asks for (the record's ``usage``).
ROLES = {
    "pod": {"pod": 1},
    "tfjob": {"Worker": 1},
    "daskjob": {"runner": 1, "scheduler": 1, "worker": 1},
    "daskcluster": {"scheduler": 1, "worker": 1},
    "spark": {"driver": 1, "executor": 1},
}


def check_usage(facts: Any, case: str, started: float) -> dict[str, Any]:
    """The usage section of what the lifecycle noted: kind, replicas, created <= running <= finished."""
    from datetime import datetime, timezone

    from airflow_mlplatform import usage

    section = usage.usage_section(
        notes=usage.UsageNotes(kube=[facts]),
        profile=None,
        task_type="test",
        where={},
        started=datetime.fromtimestamp(started, timezone.utc),
        ended=datetime.now(timezone.utc),
        status="success",
    )
    assert section["backend"] == "kubernetes" and section["kind"] == CASES[case].kind.label
    assert {r["role"]: r["count"] for r in section["replicas"]} == ROLES[case]
    assert started <= facts.created <= facts.running <= (facts.finished or time.time()), facts
    assert section["pending_s"] >= 0 and section["running_s"] > 0, section
    assert section["billable_s"] == section["running_s"]
    return section


@pytest.fixture
def bed(k8s_kinds):
    k8s_kinds.clear_faults()
    yield k8s_kinds
    k8s_kinds.clear_faults()


def _job(
    case: str, run_id: str, *, try_number: int = 1, mode: str = "ok", answer: str = "42", **kwargs: Any
) -> Any:
    from airflow_mlplatform.runners.kube_job import KubeJob

    identity = _identity(run_id, try_number)
    manifest = CASES[case].build(identity, {"MODE": mode, "ANSWER": answer})
    job = KubeJob(CASES[case].kind, manifest, selector=podspec.identity_selector(identity), **kwargs)
    job.hook().api_client  # noqa: B018 (the first client costs seconds: not inside a bounded wait)
    return job


def _objects(bed, key: str, run_id: str) -> list[dict[str, Any]]:
    return [
        o
        for o in bed.call(bed.emulator.objects, key, None)
        if (o["metadata"].get("labels") or {}).get(podspec.label_key("run_id")) == run_id
    ]


def _gone(bed, key: str, run_id: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _objects(bed, key, run_id):
            return True
        time.sleep(0.05)
    return False


def _wait_until(cond: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _in_thread(fn: Callable[[], Any], seconds: float = 60) -> tuple[Any, BaseException | None]:
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "not bounded"
    return (out[0] if out else None), (errors[0] if errors else None)


class _PausedControllers:
    """No controller acts on ``key`` inside the block: a job that nothing ever starts."""

    def __init__(self, bed, key: str) -> None:
        self.bed, self.key = bed, key
        self.paused: list[Any] = []

    def __enter__(self) -> None:
        def pause() -> None:
            controllers = self.bed.emulator.controllers
            self.paused = [
                c
                for c in controllers
                if self.key in getattr(c, "resources", ())
                or (self.key == "v1/pods" and type(c).__name__ == "FakeKubelet")
            ]
            controllers[:] = [c for c in controllers if c not in self.paused]

        self.bed.call(pause)

    def __exit__(self, *exc: Any) -> None:
        self.bed.call(lambda: self.bed.emulator.controllers.extend(self.paused))


# ---- create: kill, 409, earlier tries ---------------------------------------------------------
@pytest.mark.parametrize("when", ["before_the_post", "after_the_post"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_kill_during_the_create_does_not_hang_and_deletes_the_object(bed, case, when):
    run_id = f"manual__kill_{case}_{when}"
    job = _job(case, run_id)
    hook = job.hook()
    real_create = hook.create_object

    def create_with_a_kill(resource, namespace, body):
        if when == "before_the_post":
            job.kill()  # SIGTERM while the request is being prepared
        created = real_create(resource, namespace, body)
        if when == "after_the_post":
            job.kill()  # SIGTERM while the answer is on its way
        return created

    hook.create_object = create_with_a_kill
    with _PausedControllers(bed, CASES[case].key):
        _, error = _in_thread(job.start, 15)
    assert isinstance(error, JobKilledError) and "killed" in str(error), error
    assert _gone(bed, CASES[case].key, run_id), "the object created during the kill is still there"


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_retried_create_answered_409_adopts_the_object(bed, case):
    """The first POST went through but its answer was lost; the hook's retry gets 409."""
    run_id = f"manual__conflict_{case}"
    job = _job(case, run_id)
    real_create = job.hook().create_object

    def create_twice(resource, namespace, body):
        real_create(resource, namespace, body)
        return real_create(resource, namespace, body)  # the retry: 409 AlreadyExists

    job.hook().create_object = create_twice
    with _PausedControllers(bed, CASES[case].key):
        obj, reattached = job.start()
        assert obj["metadata"]["name"] == job.name and not reattached
        assert [o["metadata"]["name"] for o in _objects(bed, CASES[case].key, run_id)] == [job.name]
        job.kill()
    assert _gone(bed, CASES[case].key, run_id)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_new_try_adopts_the_earlier_tries_live_object_but_not_a_failed_one(bed, case):
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

    run_id = f"manual__adopt_{case}"
    key, kind = CASES[case].key, CASES[case].kind
    with _PausedControllers(bed, key):
        first = _job(case, run_id, try_number=1)
        first.start()  # the worker dies here
        mark = bed.mark()
        second = _job(case, run_id, try_number=2)
        obj, reattached = second.start()
        assert reattached and second.reattached and obj["metadata"]["name"] == first.name
        posts = [
            r
            for r in bed.requests_since(mark)
            if r.method == "POST" and r.headers.get("User-Agent", "").startswith(USER_AGENT)
        ]
        assert posts == []
        # try 2's object failed: try 3 starts a new one and leaves the failed one alone
        failed = {
            "v1/pods": {"phase": "Failed"},
            TFJOBS: {"conditions": [{"type": "Failed", "status": "True"}]},
            DASKJOBS: {"jobStatus": "Failed"},
            DASKCLUSTERS: {"phase": "Error"},
            SPARKAPPLICATIONS: {"applicationState": {"state": "FAILED", "errorMessage": "driver failed"}},
        }[key]
        bed.call(bed.emulator.set_status, key, "default", first.name, failed)
        _wait_until(lambda: kind.state(bed.call(bed.emulator.get_object, key, "default", first.name) or {}))
        third = _job(case, run_id, try_number=3)
        obj, reattached = third.start()
        assert not reattached and obj["metadata"]["name"] == third.name != first.name
        for job in (first, third):
            MLPlatformKubernetesHook().delete_object(kind.resource, "default", job.name)
    assert _gone(bed, key, run_id)


# ---- start-up ---------------------------------------------------------------------------------
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_job_that_never_starts_fails_after_startup_timeout_saying_what_to_check(bed, case, deferrable):
    run_id = f"manual__never_starts_{case}_{deferrable}"
    job = _job(case, run_id, startup_timeout=1)
    with _PausedControllers(bed, CASES[case].key):
        if deferrable:
            obj, _ = job.start()
            trigger = job.trigger(obj)
            event = first_event(trigger, 30)
            assert event["status"] == "error"
            message = event["message"]
        else:

            def run() -> None:
                job.run()

            _, error = _in_thread(run, 30)
            assert isinstance(error, JobFailedError), error
            message = str(error)
    assert "did not start within 1 s" in message
    hint = CASES[case].kind.controller or "kubectl describe pods"
    assert hint in message, message
    assert _gone(bed, CASES[case].key, run_id)


# ---- runs: faults, kill, deadline, deferrable ------------------------------------------------
@pytest.mark.parametrize("case", RUNNING_KINDS)
def test_a_run_survives_a_cut_log_429_503_a_dropped_watch_and_410(bed, case):
    run_id = f"manual__faults_{case}"
    job = _job(case, run_id, answer=f"faulty-{case}")

    def faults() -> None:
        pod = _wait_until(
            lambda: job.log_pod(job.manifest) in bed.running_processes() and job.log_pod(job.manifest)
        )
        time.sleep(0.3)  # a line is out
        bed.call(bed.kubelet.drop_log_streams)
        bed.inject(429, count=2, retry_after=0)
        bed.inject(503, count=2)
        bed.drop_watches()
        time.sleep(0.2)
        bed.expire()
        assert pod

    helper = threading.Thread(target=faults, daemon=True)
    helper.start()
    result, error = _in_thread(job.run, 90)
    helper.join(30)
    assert error is None, error
    result.raise_for_status()
    assert result.outputs.values == {"answer": f"faulty-{case}"}
    assert [row["step"] for row in result.outputs.metric_rows] == [0, 1]  # no line lost or doubled
    assert _gone(bed, CASES[case].key, run_id)


@pytest.mark.parametrize("case", RUNNING_KINDS)
def test_a_failed_job_fails_with_its_log_tail_and_is_deleted(bed, case):
    run_id = f"manual__fails_{case}"
    result, error = _in_thread(_job(case, run_id, mode="fail").run, 90)
    assert error is None, error
    assert not result.succeeded
    with pytest.raises(JobFailedError, match=r"failed(.|\n)*Last lines of(.|\n)*mlplatform::record"):
        result.raise_for_status()
    assert _gone(bed, CASES[case].key, run_id)


@pytest.mark.parametrize("case", RUNNING_KINDS)
def test_a_kill_mid_job_deletes_the_object_and_its_processes(bed, case):
    run_id = f"manual__killmid_{case}"
    job = _job(case, run_id, mode="hang")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    pod = job.kind.log_pod(job.name, job.manifest)
    _wait_until(lambda: pod in bed.running_processes())
    job.kill()
    thread.join(30)
    assert not thread.is_alive() and errors
    assert isinstance(errors[0], (KubernetesNotFoundError, JobFailedError)), errors
    assert _gone(bed, CASES[case].key, run_id)
    _wait_until(lambda: pod not in bed.running_processes())


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
@pytest.mark.parametrize("case", RUNNING_KINDS)
def test_the_deadline_deletes_the_job(bed, case, deferrable):
    run_id = f"manual__deadline_{case}_{deferrable}"
    job = _job(case, run_id, mode="hang", deadline=time.time() + 2.5)
    if deferrable:
        obj, _ = job.start()
        event = first_event(job.trigger(obj), 60)
        assert event["status"] == "timeout"
    else:
        _, error = _in_thread(job.run, 60)
        assert isinstance(error, KubernetesTimeoutError), error
        assert "deadline" in str(error)
    assert _gone(bed, CASES[case].key, run_id)
    pod = job.kind.log_pod(job.name, job.manifest)
    _wait_until(lambda: pod not in bed.running_processes())


@pytest.mark.parametrize("case", RUNNING_KINDS)
def test_deferred_the_trigger_streams_the_log_and_complete_reads_it_whole(bed, case, caplog):
    """Issue 10.5: the triggerer's log (what the UI shows while deferred) has the job's lines and
    its status changes; values and metrics still come from the whole log, read by the worker."""
    import logging

    from airflow_mlplatform.runners.kube_job import KubeJob
    from airflow_mlplatform.triggers.kubernetes import KubeJobTrigger

    run_id = f"manual__deferred_{case}"
    job = _job(case, run_id, answer=f"deferred-{case}")
    begun = time.time()
    obj, reattached = job.start()
    trigger = KubeJobTrigger(**job.trigger(obj).serialize()[1])  # as the triggerer rebuilds it
    trigger._log = logging.getLogger("test.triggerer")  # structlog otherwise, which caplog misses
    with caplog.at_level(logging.INFO, logger="test.triggerer"):
        event = first_event(trigger, 90)
    assert event["status"] == "done" and event["succeeded"] is True, event
    shown = [r.getMessage() for r in caplog.records if r.name == "test.triggerer"]
    pod = event["log_pod"]
    assert f'[{pod}] {{"step": 0, "loss": 1.0}}' in shown, shown
    assert any(f"{job.kind.label} {job.name}: " in line for line in shown), shown  # a status line
    worker = KubeJob.existing(job.kind, name=event["name"], namespace=event["namespace"])
    result = worker.complete(event, reattached=reattached)
    result.raise_for_status()
    check_usage(worker.facts, case, begun)  # the trigger handed the times back in its event
    assert result.outputs.values == {"answer": f"deferred-{case}"}
    assert [row["step"] for row in result.outputs.metric_rows] == [0, 1]
    assert _gone(bed, CASES[case].key, run_id)


def test_requests_per_job_stay_within_eight_for_every_kind(bed):
    """A short job of each kind, sync: list, create, watch(es), log, delete (bench_k8s_requests.py
    measures the same with real DAG runs)."""
    counts = {}
    for case in RUNNING_KINDS:
        run_id = f"manual__requests_{case}"
        job = _job(case, run_id)
        mark, begun = bed.mark(), time.time()
        result, error = _in_thread(job.run, 90)
        assert error is None, error
        result.raise_for_status()
        check_usage(job.facts, case, begun)
        reqs = [r for r in bed.requests_since(mark) if r.headers.get("User-Agent", "").startswith(USER_AGENT)]
        counts[case] = len(reqs)
    assert all(n <= 8 for n in counts.values()), counts
