"""PodJobRunner (the pod kind of KubeJob) and KubeJobTrigger against the emulator + fake kubelet."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.exceptions import JobFailedError, KubernetesNotFoundError
from airflow_mlplatform.hooks.kubernetes import USER_AGENT
from airflow_mlplatform.specs import pod as podspec

PROFILE = ComputeProfile(name="test", backend="kubernetes", image="python:3.11", namespace="default")

JOB = r"""
import json, os, time
params = json.loads(os.environ.get("MLPLATFORM_PARAMETERS", "{}"))
for i in range(3):
    print(json.dumps({"step": i, "loss": 1.0 / (i + 1)}), flush=True)
    time.sleep(params.get("sleep", 0))
print("::mlplatform::record " + json.dumps({"name": "answer", "value": params.get("answer", 42)}), flush=True)
raise SystemExit(params.get("code", 0))
"""


def context(task_id, try_number=1, run_id="manual__2026-11-23T10:00:00+00:00"):
    ti = SimpleNamespace(
        dag_id="runner_tests",
        task_id=task_id,
        run_id=run_id,
        map_index=-1,
        try_number=try_number,
        start_date=None,
    )
    return {"ti": ti}


def runner(params=None, **kwargs):
    import json

    from airflow_mlplatform.runners.pod import PodJobRunner

    return PodJobRunner(
        profile=PROFILE,
        command=[sys.executable, "-u", "-c", JOB],
        env={"MLPLATFORM_PARAMETERS": json.dumps(params or {})},
        **kwargs,
    )


def ours(reqs):
    return [r for r in reqs if r.headers.get("User-Agent", "").startswith(USER_AGENT)]


def task_pods(k8s, task_id):
    key = podspec.label_key("task_id")
    return [p for p in k8s.pods("default") if p["metadata"]["labels"].get(key) == task_id]


def wait_until(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_sync_run_returns_values_metrics_and_deletes_the_pod(k8s_clean):
    mark = k8s_clean.mark()
    result = runner({"answer": 7}).run(context("ok"))
    assert result.succeeded and result.exit_code == 0
    assert result.outputs.values == {"answer": 7}
    assert [r["step"] for r in result.outputs.metric_rows] == [0, 1, 2]
    assert result.outputs.metrics["loss"] == pytest.approx(1 / 3)
    assert task_pods(k8s_clean, "ok") == []
    reqs = ours(k8s_clean.requests_since(mark))
    assert len(reqs) <= 8, [(r.method, str(r.url)) for r in reqs]


def test_failed_job_reports_exit_code_and_log_tail(k8s_clean):
    result = runner({"code": 3}).run(context("fails"))
    assert result.exit_code == 3 and result.phase == "Failed"
    with pytest.raises(JobFailedError, match=r"exit code 3(.|\n)*mlplatform::record"):
        result.raise_for_status()


def test_delete_policy_on_success_keeps_failed_pods(k8s_clean):
    r = runner({"code": 1}, delete_policy="on_success")
    result = r.run(context("keep"))
    assert [p["metadata"]["name"] for p in task_pods(k8s_clean, "keep")] == [result.pod_name]
    assert r.delete() is True


def test_restarted_worker_reattaches_instead_of_a_second_pod(k8s_clean):
    first = runner({"sleep": 0.5})
    pod, reattached = first.start(context("restart", try_number=1))  # the worker dies here
    assert not reattached
    mark = k8s_clean.mark()
    result = runner({"sleep": 0.5}).run(context("restart", try_number=2))
    assert result.reattached and result.pod_name == pod["metadata"]["name"]
    assert result.outputs.values == {"answer": 42}
    creates = [r for r in ours(k8s_clean.requests_since(mark)) if r.method == "POST"]
    assert creates == []
    assert task_pods(k8s_clean, "restart") == []


def test_kill_mid_job_sync_deletes_pod_and_process(k8s_clean):
    r = runner({"sleep": 30})
    errors = []

    def run():
        try:
            r.run(context("killme"))
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    wait_until(lambda: any(n.startswith("mlp-killme") for n in k8s_clean.running_processes()))
    r.kill()
    t.join(30)
    assert not t.is_alive()
    assert errors and isinstance(errors[0], KubernetesNotFoundError)
    assert task_pods(k8s_clean, "killme") == []
    wait_until(lambda: not any(n.startswith("mlp-killme") for n in k8s_clean.running_processes()))


def test_faults_mid_job(k8s_clean):
    """Log stream cut, bursts of 429 and 503, watch dropped, 410 Gone: the job still ends right."""
    r = runner({"sleep": 0.7})

    def faults():
        wait_until(lambda: any(n.startswith("mlp-faulty") for n in k8s_clean.running_processes()))
        time.sleep(0.8)  # a line or two is out
        k8s_clean.call(k8s_clean.kubelet.drop_log_streams)
        k8s_clean.inject(429, count=2, retry_after=0)
        k8s_clean.inject(503, count=2)
        k8s_clean.drop_watches()
        time.sleep(0.5)
        k8s_clean.expire()

    t = threading.Thread(target=faults)
    t.start()
    result = r.run(context("faulty"))
    t.join()
    assert result.succeeded
    assert result.outputs.values == {"answer": 42}
    assert [row["step"] for row in result.outputs.metric_rows] == [0, 1, 2]  # no line lost or doubled
    assert task_pods(k8s_clean, "faulty") == []


def test_bad_profile_backend_is_refused():
    from airflow_mlplatform.exceptions import ConfigurationError
    from airflow_mlplatform.runners.pod import PodJobRunner

    with pytest.raises(ConfigurationError, match="backend"):
        PodJobRunner(profile=ComputeProfile(name="w"), command=["true"])


# ---- deferrable: the trigger ------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind",
    [
        "airflow_mlplatform.specs.kinds:POD",
        "airflow_mlplatform.specs.tfjob:TFJOB_KIND",
        "airflow_mlplatform.specs.daskjob:DASKJOB_KIND",
        "airflow_mlplatform.specs.daskjob:DASKCLUSTER_KIND",
    ],
)
def test_trigger_serialize_round_trips(kind):
    from airflow_mlplatform.triggers.kubernetes import KubeJobTrigger

    trigger = KubeJobTrigger(
        kind=kind,
        name="p",
        namespace="ns",
        resource_version="12",
        state="Running",
        deadline=5.0,
        log_pod="p-0",
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_mlplatform.triggers.kubernetes.KubeJobTrigger"
    again = KubeJobTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert again._kind().ref == kind


def _first_event(trigger):
    async def main():
        gen = trigger.run()
        try:
            return (await gen.__anext__()).payload
        finally:
            await gen.aclose()

    return asyncio.run(main())


def test_trigger_waits_then_complete_reads_outputs(k8s_clean):
    r = runner({"answer": "deferred", "sleep": 0.2})
    mark = k8s_clean.mark()
    pod, _ = r.start(context("deferred"))
    event = _first_event(r.trigger(pod))
    assert event["status"] == "done" and event["exit_code"] == 0 and event["state"] == "Succeeded"
    result = r.complete(context("deferred"), event)
    assert result.outputs.values == {"answer": "deferred"}
    assert task_pods(k8s_clean, "deferred") == []
    assert len(ours(k8s_clean.requests_since(mark))) <= 8


def test_trigger_on_kill_deletes_pod_and_process(k8s_clean):
    r = runner({"sleep": 30})
    pod, _ = r.start(context("tkill"))
    trigger = r.trigger(pod)

    async def main():
        task = asyncio.ensure_future(trigger.run().__anext__())
        while not any(
            n.startswith("mlp-tkill") for n in await asyncio.to_thread(k8s_clean.running_processes)
        ):
            await asyncio.sleep(0.05)
        task.cancel()  # the triggerer cancels the trigger, then calls on_kill for a user kill
        await trigger.on_kill()

    asyncio.run(main())
    assert task_pods(k8s_clean, "tkill") == []
    wait_until(lambda: not any(n.startswith("mlp-tkill") for n in k8s_clean.running_processes()))


def test_trigger_cleanup_on_restart_keeps_the_pod(k8s_clean):
    r = runner({"sleep": 30})
    pod, _ = r.start(context("trestart"))
    trigger = r.trigger(pod, deadline=time.time() + 3600)
    asyncio.run(trigger.cleanup())
    assert len(task_pods(k8s_clean, "trestart")) == 1
    r.kill()


def test_trigger_deadline_deletes_pod(k8s_clean):
    r = runner({"sleep": 30})
    pod, _ = r.start(context("tdeadline"))
    event = _first_event(r.trigger(pod, deadline=time.time() + 1.5))
    assert event["status"] == "timeout"
    assert task_pods(k8s_clean, "tdeadline") == []
    wait_until(lambda: not any(n.startswith("mlp-tdeadline") for n in k8s_clean.running_processes()))


def test_deferred_retry_adopts_a_pod_that_already_succeeded(k8s_clean):
    first = runner({"answer": "early"})
    pod, _ = first.start(context("adopt", try_number=1))  # the worker dies; the pod finishes alone
    name = pod["metadata"]["name"]
    wait_until(lambda: (k8s_clean.pod(name) or {}).get("status", {}).get("phase") == "Succeeded")
    second = runner({"answer": "early"})
    adopted, reattached = second.start(context("adopt", try_number=2))
    assert reattached and adopted["metadata"]["name"] == name
    event = _first_event(second.trigger(adopted))
    assert event["status"] == "done" and event["exit_code"] == 0
    assert second.complete(context("adopt", try_number=2), event).outputs.values == {"answer": "early"}
    assert task_pods(k8s_clean, "adopt") == []


def test_deferred_complete_deletes_the_pod_when_reading_its_log_fails(k8s_clean):
    """A log read error other than 404 still deletes the pod (delete_policy always) and propagates."""
    from airflow_mlplatform.exceptions import KubernetesApiError

    r = runner({"answer": 1})
    pod, _ = r.start(context("logfails"))
    event = _first_event(r.trigger(pod))
    assert event["status"] == "done"
    k8s_clean.inject(403, count=1, match=lambda req: str(req.url).split("?")[0].endswith("/log"))
    with pytest.raises(KubernetesApiError):
        r.complete(context("logfails"), event)
    assert task_pods(k8s_clean, "logfails") == []


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_a_cleared_task_runs_again_instead_of_adopting_its_kept_pod(k8s_clean, deferrable):
    """delete_policy keeps the pod of try 1; try 2 (a cleared task) must not return its old output."""

    def run_try(try_number, answer):
        r = runner({"answer": answer}, delete_policy="never")
        ctx = context(f"cleared-{deferrable}", try_number=try_number)
        if not deferrable:
            return r.run(ctx)
        pod, reattached = r.start(ctx)
        return r.complete(ctx, _first_event(r.trigger(pod)), reattached=reattached)

    mark = k8s_clean.mark()
    first = run_try(1, "old")
    assert first.outputs.values == {"answer": "old"}
    assert len(ours(k8s_clean.requests_since(mark))) <= 8  # the consumed mark is one patch

    second = run_try(2, "new")
    assert second.outputs.values == {"answer": "new"}, "try 2 returned try 1's output"
    assert not second.reattached and second.pod_name != first.pod_name
    kept = k8s_clean.pod(first.pod_name)
    assert kept["metadata"]["annotations"][podspec.label_key("consumed")] == "true"
    assert len(task_pods(k8s_clean, f"cleared-{deferrable}")) == 2
    from airflow_mlplatform.hooks.kubernetes import PODS, MLPlatformKubernetesHook

    for result in (first, second):
        MLPlatformKubernetesHook().delete_object(PODS, "default", result.pod_name)


def _cut_log_streams(r, cuts):
    """Make the runner's first ``cuts`` log streams break after one line (a dropped connection)."""
    from urllib3.exceptions import ProtocolError

    hook = r._job.hook()
    real = hook.stream_pod_log
    calls = []

    def stream(*args, **kwargs):
        calls.append(kwargs.get("follow", True))
        gen = real(*args, **kwargs)
        if len(calls) > cuts:
            yield from gen
            return
        try:
            yield next(gen)
        finally:
            gen.close()
        raise ProtocolError("Connection broken: IncompleteRead")

    hook.stream_pod_log = stream
    return calls


def _finished_pod(k8s, r, task_id):
    pod, _ = r.start(context(task_id))
    name = pod["metadata"]["name"]
    wait_until(lambda: (k8s.pod(name) or {}).get("status", {}).get("phase") == "Succeeded")
    return name


def test_log_cut_twice_around_the_pod_end_still_reads_the_tail(k8s_clean):
    r = runner({"answer": "tail"})
    name = _finished_pod(k8s_clean, r, "logtail")
    calls = _cut_log_streams(r, cuts=2)
    r._job.follow_log(k8s_clean.pod(name))
    out = r._job.feed.parser.close()
    assert [row["step"] for row in out.metric_rows] == [0, 1, 2]  # nothing lost, nothing twice
    assert out.values == {"answer": "tail"}
    assert r._job.log_error is None
    assert calls[1:] == [False, False], "a done pod's log is read once more, not followed"
    r.delete()


def test_log_cut_on_every_attempt_is_an_error(k8s_clean):
    from airflow_mlplatform.exceptions import KubernetesError

    r = runner()
    name = _finished_pod(k8s_clean, r, "logcut")
    _cut_log_streams(r, cuts=100)
    with pytest.raises(KubernetesError, match=r"was cut 11 times.*incomplete"):
        r._job.follow_log(k8s_clean.pod(name))
    r.delete()
