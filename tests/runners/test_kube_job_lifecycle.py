"""TFJob, DaskJob and DaskCluster runners on the Kubernetes test bed: a kill during the create,
and a retried create that is answered 409.

Airflow calls ``on_kill`` from a SIGTERM handler in the main thread, so the kill can arrive while
the create request is in flight in the same thread; here the hook's ``create_object`` calls the
kill itself (before or after the real POST), as such a handler would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_mlplatform.exceptions import ConfigurationError, JobFailedError, KubernetesConflictError
from airflow_mlplatform.specs import daskjob
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs import tfjob as tfspec
from fake_dask_operator import DASKCLUSTERS, DASKJOBS
from fake_training_operator import TFJOBS


@pytest.fixture(scope="module")
def bed(k8s):
    kinds = k8s.call(lambda: dict(k8s.emulator.kinds))
    for key, kind in ((TFJOBS, "TFJob"), (DASKJOBS, "DaskJob"), (DASKCLUSTERS, "DaskCluster")):
        if key not in kinds:
            k8s.call(k8s.emulator.declare, key, kind)
    return k8s


def _identity(run_id: str) -> dict[str, Any]:
    return {"dag_id": "life", "task_id": "t", "run_id": run_id, "map_index": -1, "try_number": 1}


def _tfjob(run_id: str) -> Any:
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
    from airflow_mlplatform.runners.tf_kubeflow import KubeflowTFJob, tfjob_name

    identity = _identity(run_id)
    manifest = tfspec.build_tfjob(
        name=tfjob_name(identity),
        namespace="default",
        image="tf",
        command=["python", "-c", "pass"],
        replicas=tfspec.parse_replicas({"Worker": 1}),
        labels=podspec.identity_labels(identity),
    )
    job = KubeflowTFJob(
        MLPlatformKubernetesHook(),
        manifest,
        selector=podspec.identity_selector(identity),
        leader=("Worker", 0),
    )
    return job, TFJOBS, job.create_or_attach, job.delete


def _daskjob(run_id: str) -> Any:
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
    from airflow_mlplatform.runners.dask_job import KubeDaskJob
    from airflow_mlplatform.runners.dask_kubernetes import cluster_name

    identity = _identity(run_id)
    manifest = daskjob.build_daskjob(
        name=cluster_name(identity),
        namespace="default",
        image="dask",
        command=["python", "-c", "pass"],
        n_workers=1,
        labels=podspec.identity_labels(identity),
    )
    job = KubeDaskJob(MLPlatformKubernetesHook(), manifest, selector=podspec.identity_selector(identity))
    return job, DASKJOBS, job._create, job.close


def _daskcluster(run_id: str) -> Any:
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
    from airflow_mlplatform.runners.dask_kubernetes import KubeDaskCluster, cluster_name

    identity = _identity(run_id)
    manifest = daskjob.build_daskcluster(
        name=cluster_name(identity),
        namespace="default",
        labels=podspec.identity_labels(identity),
        image="dask",
        n_workers=1,
    )
    job = KubeDaskCluster(
        MLPlatformKubernetesHook(), manifest, selector=podspec.identity_selector(identity), startup_timeout=1
    )
    return job, DASKCLUSTERS, job.start, job.close


RUNNERS: dict[str, Callable[[str], Any]] = {"tfjob": _tfjob, "daskjob": _daskjob, "daskcluster": _daskcluster}


def _objects(bed, key: str, run_id: str) -> list[dict[str, Any]]:
    return [
        o
        for o in bed.call(bed.emulator.objects, key, None)
        if (o["metadata"].get("labels") or {}).get(podspec.label_key("run_id")) == run_id
    ]


def _gone(bed, key: str, run_id: str) -> bool:
    for _ in range(100):
        if not _objects(bed, key, run_id):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("when", ["before_the_post", "after_the_post"])
@pytest.mark.parametrize("kind", sorted(RUNNERS))
def test_a_kill_during_the_create_does_not_hang_and_deletes_the_object(bed, kind, when):
    run_id = f"manual__kill_{kind}_{when}"
    job, key, create, kill = RUNNERS[kind](run_id)
    hook = job.hook
    real_create = hook.create_object

    def create_with_a_kill(resource, namespace, body):
        if when == "before_the_post":
            kill()  # SIGTERM while the request is being prepared
        created = real_create(resource, namespace, body)
        if when == "after_the_post":
            kill()  # SIGTERM while the answer is on its way
        return created

    hook.create_object = create_with_a_kill
    errors: list[BaseException] = []

    def run() -> None:
        try:
            create()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive(), "the kill deadlocked against the create"
    assert errors and isinstance(errors[0], (JobFailedError, ConfigurationError)), errors
    assert "killed" in str(errors[0])
    assert _gone(bed, key, run_id), "the object created during the kill is still there"


@pytest.mark.parametrize("kind", ["tfjob", "daskjob"])
def test_a_retried_create_answered_409_adopts_the_object_and_deletes_it_at_the_end(bed, kind):
    """The first POST went through but its answer was lost; the hook's retry gets 409."""
    run_id = f"manual__conflict_{kind}"
    job, key, create, close = RUNNERS[kind](run_id)
    real_create = job.hook.create_object

    def create_twice(resource, namespace, body):
        real_create(resource, namespace, body)
        return real_create(resource, namespace, body)  # the retry: 409 AlreadyExists

    job.hook.create_object = create_twice
    obj = create()
    assert obj["metadata"]["name"] == job.name
    assert [o["metadata"]["name"] for o in _objects(bed, key, run_id)] == [job.name]
    close()
    assert _gone(bed, key, run_id)


def test_a_daskcluster_whose_retried_create_is_answered_409_is_adopted_and_deleted(bed):
    run_id = "manual__conflict_daskcluster"
    job, key, start, close = _daskcluster(run_id)
    real_create = job.hook.create_object

    def create_twice(resource, namespace, body):
        real_create(resource, namespace, body)
        return real_create(resource, namespace, body)

    job.hook.create_object = create_twice
    error: Exception | None = None
    try:
        start()  # adopted; without a Dask operator in the session the start-up wait then times out
    except Exception as e:
        error = e
    finally:
        close()
    assert not isinstance(error, KubernetesConflictError), error
    assert _gone(bed, key, run_id)


class _PausedControllers:
    """No controller acts on ``key`` inside the block: a job that nothing ever starts."""

    def __init__(self, bed, key: str) -> None:
        self.bed, self.key = bed, key
        self.paused: list[Any] = []

    def __enter__(self) -> None:
        def pause() -> None:
            controllers = self.bed.emulator.controllers
            self.paused = [c for c in controllers if self.key in getattr(c, "resources", ())]
            controllers[:] = [c for c in controllers if c not in self.paused]

        self.bed.call(pause)

    def __exit__(self, *exc: Any) -> None:
        self.bed.call(lambda: self.bed.emulator.controllers.extend(self.paused))


def _bounded(fn: Callable[[], Any], seconds: float = 30) -> BaseException | None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the start-up wait is not bounded"
    return errors[0] if errors else None


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "life", "t", "manual__never_starts", -1, 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_a_tfjob_that_never_starts_fails_after_startup_timeout_saying_what_to_check(bed):
    from airflow_mlplatform.operators.tfjob import TFJobOperator

    op = TFJobOperator(
        task_id="t",
        command=["python", "-c", "pass"],
        image="tf",
        backend="kubeflow",
        startup_timeout=1,
        deferrable=False,
    )
    ti = _TI()
    with _PausedControllers(bed, TFJOBS):
        error = _bounded(lambda: op.execute({"ti": ti}))
    assert isinstance(error, JobFailedError), error
    assert "did not start within 1 s" in str(error) and "training operator" in str(error)
    assert _gone(bed, TFJOBS, _TI.run_id)
    assert ti.pushed["execution_record"]["status"] == "failed"


def test_a_deferred_tfjob_that_never_starts_is_deleted_by_the_trigger(bed):
    import asyncio

    from airflow_mlplatform.triggers.tfjob import TFJobTrigger

    run_id = "manual__never_starts_deferred"
    job, key, create, _delete = _tfjob(run_id)
    with _PausedControllers(bed, TFJOBS):
        obj = create()
        trigger = TFJobTrigger(
            name=job.name,
            namespace="default",
            resource_version=obj["metadata"].get("resourceVersion"),
            startup_timeout=1,
        )
        assert TFJobTrigger(**trigger.serialize()[1]).startup_timeout == 1

        async def first_event() -> Any:
            async for event in trigger.run():
                return event.payload

        event = asyncio.run(asyncio.wait_for(first_event(), 30))
    assert event["status"] == "error" and "did not start within 1 s" in event["message"]
    assert _gone(bed, key, run_id)


def test_a_daskjob_that_never_starts_fails_after_startup_timeout_saying_what_to_check(bed):
    job, key, _create, close = _daskjob("manual__never_starts_daskjob")
    job.startup_timeout = 1
    with _PausedControllers(bed, DASKJOBS):
        try:
            error = _bounded(job.run)
        finally:
            close()
    assert isinstance(error, JobFailedError), error
    assert "did not start within 1 s" in str(error) and "Dask Kubernetes operator" in str(error)
    assert _gone(bed, key, "manual__never_starts_daskjob")
