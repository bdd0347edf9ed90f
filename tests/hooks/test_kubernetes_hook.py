"""The Kubernetes hooks against the emulator: objects, watches, retries, error translation."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from airflow_mlplatform.exceptions import (
    KubernetesApiError,
    KubernetesConflictError,
    KubernetesNotFoundError,
    KubernetesResourceTypeNotFoundError,
    KubernetesTimeoutError,
)
from airflow_mlplatform.hooks.kubernetes import PODS, Resource, RetryPolicy

TFJOBS = Resource("kubeflow.org", "v1", "tfjobs", "TFJob")
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.2)


@pytest.fixture
def hook(k8s_clean):
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

    return MLPlatformKubernetesHook(retry_policy=FAST)


def _pod(name, code=0, sleep=0.0, labels=None):
    script = f"import time,sys; print('hi', flush=True); time.sleep({sleep}); sys.exit({code})"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "job", "image": "x", "command": [sys.executable, "-u", "-c", script]}],
        },
    }


def done(obj):
    return obj.get("status", {}).get("phase") in ("Succeeded", "Failed")


def test_hook_module_is_cheap_to_import():
    import subprocess

    code = (
        "import sys, airflow_mlplatform.hooks.kubernetes as m; "
        "assert 'kubernetes' not in sys.modules and 'kubernetes_asyncio' not in sys.modules, "
        "[k for k in sys.modules if k.startswith('kube')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_objects_round_trip_and_wait(hook):
    created = hook.create_object(PODS, "default", _pod("hook-rt", labels={"app": "rt"}))
    assert created["metadata"]["uid"]
    assert [
        p["metadata"]["name"] for p in hook.list_objects(PODS, "default", label_selector="app=rt")["items"]
    ] == ["hook-rt"]
    final = hook.wait_for_object(
        PODS, "default", "hook-rt", done, timeout=30, resource_version=created["metadata"]["resourceVersion"]
    )
    assert final["status"]["phase"] == "Succeeded"
    patched = hook.patch_object(PODS, "default", "hook-rt", {"metadata": {"labels": {"seen": "yes"}}})
    assert patched["metadata"]["labels"] == {"app": "rt", "seen": "yes"}
    assert b"".join(hook.stream_pod_log("hook-rt", "default", timestamps=False)) == b"hi\n"
    assert hook.delete_object(PODS, "default", "hook-rt") is True
    assert hook.delete_object(PODS, "default", "hook-rt") is False  # 404 on delete = success


def test_bursts_of_429_and_503_are_retried(hook, k8s_clean):
    mark = k8s_clean.mark()
    k8s_clean.inject(503, count=2)
    k8s_clean.inject(429, count=1)
    assert hook.list_objects(PODS, "default")["kind"] == "PodList"
    assert len(k8s_clean.requests_since(mark)) == 4


def test_429_honours_retry_after(hook, k8s_clean):
    # urllib3 under the sync client sleeps Retry-After itself for 429/503 (up to 3 times);
    # a longer burst reaches our retry loop, which honours the header too.
    mark = k8s_clean.mark()
    k8s_clean.inject(429, count=5, retry_after=0)
    hook.list_objects(PODS, "default")
    assert len(k8s_clean.requests_since(mark)) == 6


def test_retries_are_bounded(hook, k8s_clean):
    k8s_clean.inject(503, count=100)
    with pytest.raises(KubernetesApiError, match=r"gave up after 4 attempts.*503"):
        hook.get_object(PODS, "default", "whatever")


@pytest.mark.parametrize(
    ("status", "error"), [(400, KubernetesApiError), (403, KubernetesApiError), (422, KubernetesApiError)]
)
def test_client_errors_fail_at_once_naming_the_object(hook, k8s_clean, status, error):
    mark = k8s_clean.mark()
    k8s_clean.inject(status, count=1)
    with pytest.raises(error, match=r"Pod 'hook-x' in namespace 'default'") as info:
        hook.get_object(PODS, "default", "hook-x")
    assert info.value.status == status
    assert len(k8s_clean.requests_since(mark)) == 1


def test_missing_object_and_conflict(hook):
    with pytest.raises(KubernetesNotFoundError, match="hook-none"):
        hook.get_object(PODS, "default", "hook-none")
    hook.create_object(PODS, "default", _pod("hook-dup", sleep=5))
    with pytest.raises(KubernetesConflictError, match="already exists"):
        hook.create_object(PODS, "default", _pod("hook-dup"))
    hook.delete_object(PODS, "default", "hook-dup")


def test_crd_not_installed_is_its_own_error(hook):
    # a type no test declares (the TFJob tests declare tfjobs in the shared emulator)
    never_installed = Resource("example.org", "v1", "widgets", "Widget")
    with pytest.raises(KubernetesResourceTypeNotFoundError, match="CustomResourceDefinition"):
        hook.list_objects(never_installed, "default")


def test_custom_objects(hook, k8s):
    # the shared emulator may already serve tfjobs (k8s_kinds): then leave it declared
    declared_here = "kubeflow.org/v1/tfjobs" not in k8s.emulator.kinds
    if declared_here:
        k8s.call(k8s.emulator.declare, "kubeflow.org/v1/tfjobs", "TFJob")
    try:
        body = {
            "apiVersion": "kubeflow.org/v1",
            "kind": "TFJob",
            "metadata": {"name": "tf1"},
            "spec": {"x": 1},
        }
        created = hook.create_object(TFJOBS, "default", body)
        assert created["metadata"]["resourceVersion"]
        hook.patch_object(
            TFJOBS, "default", "tf1", {"status": {"conditions": [{"type": "Succeeded"}]}}, status=True
        )
        got = hook.get_object(TFJOBS, "default", "tf1")
        assert got["status"]["conditions"][0]["type"] == "Succeeded"
        assert hook.delete_object(TFJOBS, "default", "tf1")
    finally:
        if declared_here:
            k8s.call(k8s.emulator.undeclare, "kubeflow.org/v1/tfjobs")


def test_wait_survives_dropped_watch_and_410(hook, k8s):
    created = hook.create_object(PODS, "default", _pod("hook-drop", sleep=3))
    mark = k8s.mark()

    def faults():
        import time

        time.sleep(0.8)
        k8s.drop_watches()
        time.sleep(0.8)
        k8s.expire()

    t = threading.Thread(target=faults)
    t.start()
    final = hook.wait_for_object(
        PODS,
        "default",
        "hook-drop",
        done,
        timeout=60,
        resource_version=created["metadata"]["resourceVersion"],
    )
    t.join()
    assert final["status"]["phase"] == "Succeeded"
    reqs = k8s.requests_since(mark)
    watches = [r for r in reqs if r.params.get("watch") == "true"]
    lists = [r for r in reqs if r.params.get("watch") != "true"]
    assert len(watches) >= 3  # first, after the drop, after the relist
    assert len(lists) == 1  # the relist after 410 Gone
    hook.delete_object(PODS, "default", "hook-drop")


def test_wait_deadline(hook):
    created = hook.create_object(PODS, "default", _pod("hook-slow", sleep=30))
    with pytest.raises(KubernetesTimeoutError, match="kubectl describe"):
        hook.wait_for_object(
            PODS,
            "default",
            "hook-slow",
            done,
            timeout=1,
            resource_version=created["metadata"]["resourceVersion"],
        )
    hook.delete_object(PODS, "default", "hook-slow")


def test_async_hook(k8s_clean):
    from airflow_mlplatform.hooks.kubernetes import MLPlatformAsyncKubernetesHook

    async def main():
        hook = MLPlatformAsyncKubernetesHook(retry_policy=FAST)
        try:
            k8s_clean.inject(503, count=2)
            created = await hook.create_object(PODS, "default", _pod("ahook", code=4, sleep=1))
            k8s_clean.inject(429, count=1, retry_after=0)
            final = await hook.wait_for_object(
                PODS,
                "default",
                "ahook",
                done,
                timeout=30,
                resource_version=created["metadata"]["resourceVersion"],
            )
            log = await hook.read_pod_log("ahook", "default", timestamps=False)
            with pytest.raises(KubernetesNotFoundError):
                await hook.get_object(PODS, "default", "nope")
            with pytest.raises(KubernetesResourceTypeNotFoundError):
                await hook.list_objects(Resource("example.org", "v1", "widgets", "Widget"), "default")
            assert await hook.delete_object(PODS, "default", "ahook") is True
            assert await hook.delete_object(PODS, "default", "ahook") is False
            return final, log
        finally:
            await hook.close()

    final, log = asyncio.run(main())
    assert final["status"]["phase"] == "Failed"
    assert final["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4
    assert log == b"hi\n"


def test_async_wait_survives_drop_and_410(k8s_clean):
    from airflow_mlplatform.hooks.kubernetes import MLPlatformAsyncKubernetesHook

    async def main():
        hook = MLPlatformAsyncKubernetesHook(retry_policy=FAST)
        try:
            created = await hook.create_object(PODS, "default", _pod("ahook-drop", sleep=3))

            async def faults():
                await asyncio.sleep(0.8)
                k8s_clean.drop_watches()
                await asyncio.sleep(0.8)
                k8s_clean.expire()

            task = asyncio.ensure_future(asyncio.to_thread(lambda: asyncio.run(faults())))
            final = await hook.wait_for_object(
                PODS,
                "default",
                "ahook-drop",
                done,
                timeout=60,
                resource_version=created["metadata"]["resourceVersion"],
            )
            await task
            await hook.delete_object(PODS, "default", "ahook-drop")
            return final
        finally:
            await hook.close()

    assert asyncio.run(main())["status"]["phase"] == "Succeeded"


def _finished(hook, name):
    """A pod that succeeded, and how it looked while it was still Pending (an old version)."""
    pending = hook.create_object(PODS, "default", _pod(name))
    hook.wait_for_object(
        PODS, "default", name, done, timeout=30, resource_version=pending["metadata"]["resourceVersion"]
    )
    return pending


@pytest.fixture
def muted(k8s_clean):
    """Watches that are accepted and then say nothing (issue 11.7), for the test's duration."""
    k8s_clean.call(lambda: setattr(k8s_clean.emulator, "mute_watches", True))
    yield k8s_clean
    k8s_clean.call(lambda: setattr(k8s_clean.emulator, "mute_watches", False))


def test_a_silent_watch_still_notices_a_pod_that_succeeded_long_ago(hook, muted):
    """Each watch attempt is bounded and followed by one GET: no hour-long wait on a dead watch."""
    import time

    pending = _finished(hook, "hook-silent")
    hook.watch_attempt_seconds = 1
    begun = time.monotonic()
    obj = hook.wait_for_object(
        PODS,
        "default",
        "hook-silent",
        done,
        timeout=600,
        resource_version=pending["metadata"]["resourceVersion"],
        initial=pending,
    )
    assert done(obj)
    assert time.monotonic() - begun < 15  # one silent attempt (1 s + 5 s read timeout), then a GET
    hook.delete_object(PODS, "default", "hook-silent")


def test_a_wait_that_overran_says_how_long_it_really_waited(hook, muted):
    """A 2 s wait on a silent watch must not be reported as "within 2 s" after several more."""
    import re
    import time

    hook.create_object(PODS, "default", _pod("hook-overrun", sleep=30))
    hook.watch_attempt_seconds = 1
    begun = time.monotonic()
    with pytest.raises(KubernetesTimeoutError) as caught:
        hook.wait_for_object(
            PODS, "default", "hook-overrun", lambda o: False, timeout=2, resource_version="1", initial=None
        )
    elapsed = time.monotonic() - begun
    message = str(caught.value)
    reported = re.search(r"in (\d+) s \(limit 2 s\)", message)
    assert reported, message
    assert abs(int(reported.group(1)) - elapsed) <= 2, (message, elapsed)
    hook.delete_object(PODS, "default", "hook-overrun")


def test_a_log_404_without_details_is_not_blamed_on_a_missing_crd(hook, k8s_clean):
    """Issue 11.8: a pod log answering 404 (no details) says the log or pod is not there."""
    k8s_clean.inject(404, count=1, match=lambda req: str(req.url).split("?")[0].endswith("/log"))
    with pytest.raises(KubernetesNotFoundError) as caught:
        list(hook.stream_pod_log("anything", "default", container="job", follow=False))
    assert not isinstance(caught.value, KubernetesResourceTypeNotFoundError)
    assert "CustomResourceDefinition" not in str(caught.value)
