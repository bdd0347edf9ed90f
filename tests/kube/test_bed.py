"""The test bed itself behaves like an API server + kubelet for the real kubernetes client."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from kubernetes import client, config, watch


@pytest.fixture
def core(k8s):
    api = client.ApiClient(config.new_client_from_config(str(k8s.kubeconfig)).configuration)
    return client.CoreV1Api(api)


def _pod(name, code, labels=None, sleep=0.0):
    script = f"import time,sys; print('hello from {name}', flush=True); time.sleep({sleep}); sys.exit({code})"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "job", "image": "python", "command": [sys.executable, "-u", "-c", script]}
            ],
        },
    }


def _wait_phase(core, name, phases):
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_pod, "default", field_selector=f"metadata.name={name}", timeout_seconds=30
    ):
        if ev["object"].status.phase in phases:
            w.stop()
            return ev["object"]
    raise AssertionError(f"{name} never reached {phases}")


def test_create_adds_metadata_and_status(core, k8s):
    pod = core.create_namespaced_pod("default", _pod("bed-meta", 0))
    assert pod.metadata.uid
    assert pod.metadata.resource_version
    assert pod.metadata.creation_timestamp
    assert pod.status.phase == "Pending"
    done = _wait_phase(core, "bed-meta", {"Succeeded"})
    assert done.status.container_statuses[0].state.terminated.exit_code == 0
    log = core.read_namespaced_pod_log("bed-meta", "default", _preload_content=False).data
    assert log == b"hello from bed-meta\n"
    core.delete_namespaced_pod("bed-meta", "default")


def test_real_exit_code_and_failed_phase(core):
    core.create_namespaced_pod("default", _pod("bed-fail", 3))
    done = _wait_phase(core, "bed-fail", {"Failed"})
    assert done.status.container_statuses[0].state.terminated.exit_code == 3
    core.delete_namespaced_pod("bed-fail", "default")


def test_label_selectors(core):
    core.create_namespaced_pod("default", _pod("bed-a", 0, {"team": "a", "tier": "x"}))
    core.create_namespaced_pod("default", _pod("bed-b", 0, {"team": "b"}))

    def names(sel):
        return sorted(p.metadata.name for p in core.list_namespaced_pod("default", label_selector=sel).items)

    assert names("team=a") == ["bed-a"]
    assert names("team in (a,b)") == ["bed-a", "bed-b"]
    assert names("team!=a,team") == ["bed-b"]
    assert names("tier") == ["bed-a"]
    assert names("!tier,team") == ["bed-b"]
    for n in ("bed-a", "bed-b"):
        core.delete_namespaced_pod(n, "default")


def test_status_subresource_is_separate(core):
    core.create_namespaced_pod("default", _pod("bed-status", 0, sleep=5))
    core.patch_namespaced_pod(
        "bed-status", "default", {"metadata": {"labels": {"x": "1"}}, "status": {"phase": "Bogus"}}
    )
    pod = core.read_namespaced_pod("bed-status", "default")
    assert pod.metadata.labels == {"x": "1"}
    assert pod.status.phase != "Bogus"
    core.patch_namespaced_pod_status("bed-status", "default", {"status": {"message": "hi"}})
    assert core.read_namespaced_pod_status("bed-status", "default").status.message == "hi"
    core.delete_namespaced_pod("bed-status", "default")


def test_delete_kills_the_process(core, k8s):
    core.create_namespaced_pod("default", _pod("bed-kill", 0, sleep=60))
    _wait_phase(core, "bed-kill", {"Running"})
    assert "bed-kill" in k8s.running_processes()
    core.delete_namespaced_pod("bed-kill", "default")
    deadline = time.monotonic() + 10
    while "bed-kill" in k8s.running_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "bed-kill" not in k8s.running_processes()


def test_log_follow_streams_until_exit(core):
    core.create_namespaced_pod("default", _pod("bed-follow", 0, sleep=1))
    _wait_phase(core, "bed-follow", {"Running", "Succeeded"})
    resp = core.read_namespaced_pod_log("bed-follow", "default", follow=True, _preload_content=False)
    assert resp.data == b"hello from bed-follow\n"
    core.delete_namespaced_pod("bed-follow", "default")


def test_watch_resumes_from_resource_version_and_answers_410(core, k8s):
    rv = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", _pod("bed-rv", 0))
    w = watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "ADDED":
            w.stop()
    assert events[0] == ("ADDED", "bed-rv")
    k8s.expire()
    with pytest.raises(client.ApiException) as info:
        for _ in watch.Watch().stream(
            core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=5
        ):
            pass
    assert info.value.status == 410
    core.delete_namespaced_pod("bed-rv", "default")


def test_dropped_watch_ends_the_stream(core, k8s):
    resp = core.list_namespaced_pod("default", watch=True, _preload_content=False, label_selector="none=here")
    t = threading.Timer(0.5, k8s.drop_watches)
    t.start()

    def consume():
        for _ in resp.stream():
            pass

    from urllib3.exceptions import ProtocolError

    with pytest.raises(ProtocolError):  # a cut connection, not a clean end of stream
        consume()
    t.join()


def test_fault_injection_and_user_agent_counts(core, k8s_clean):
    k8s_clean.inject(503, count=2)
    for _ in range(2):
        with pytest.raises(client.ApiException) as info:
            core.list_namespaced_pod("default")
        assert info.value.status == 503
    core.list_namespaced_pod("default")
    # With Retry-After, urllib3 (under the sync client) itself retries 429s: the log shows them.
    mark = k8s_clean.mark()
    k8s_clean.inject(429, count=2, retry_after=0)
    core.list_namespaced_pod("default")
    assert len(k8s_clean.requests_since(mark)) == 3
    counts = k8s_clean.call(k8s_clean.emulator.count_by_user_agent)
    assert any(ua.startswith("OpenAPI-Generator") for ua in counts)


def test_unknown_resource_type_is_404_without_object_details(core):
    custom = client.CustomObjectsApi(core.api_client)
    with pytest.raises(client.ApiException) as info:
        custom.list_namespaced_custom_object("bed.example.org", "v1", "default", "widgets")
    assert info.value.status == 404


def test_controller_hook_point(core, k8s):
    """A fake controller for a custom resource: declared type, events, objects made without HTTP.

    A resource of its own: the real job kinds are served by the session's fake operators."""
    import asyncio

    class FakeTFJobController:
        resources = ("bed.example.org/v1/widgets",)

        async def on_event(self, emulator, event_type, obj):
            if event_type == "ADDED":
                meta = obj["metadata"]
                await emulator.add_object("v1/pods", meta["namespace"], _pod(f"{meta['name']}-worker-0", 0))
                await asyncio.sleep(0)
                await emulator.set_status(
                    "bed.example.org/v1/widgets",
                    meta["namespace"],
                    meta["name"],
                    {"conditions": [{"type": "Created"}]},
                )

    k8s.call(k8s.emulator.declare, "bed.example.org/v1/widgets", "Widget")
    controller = FakeTFJobController()
    k8s.call(k8s.emulator.add_controller, controller)
    try:
        custom = client.CustomObjectsApi(core.api_client)
        body = {
            "apiVersion": "bed.example.org/v1",
            "kind": "Widget",
            "metadata": {"name": "tf-bed"},
            "spec": {},
        }
        custom.create_namespaced_custom_object("bed.example.org", "v1", "default", "widgets", body)
        done = _wait_phase(core, "tf-bed-worker-0", {"Succeeded"})
        assert done.status.container_statuses[0].state.terminated.exit_code == 0
        tfjob = custom.get_namespaced_custom_object("bed.example.org", "v1", "default", "widgets", "tf-bed")
        assert tfjob["status"]["conditions"] == [{"type": "Created"}]
    finally:
        k8s.call(k8s.emulator.controllers.remove, controller)
        k8s.call(k8s.emulator.remove_object, "bed.example.org/v1/widgets", "default", "tf-bed")
        k8s.call(k8s.emulator.remove_object, "v1/pods", "default", "tf-bed-worker-0")
        k8s.call(k8s.emulator.undeclare, "bed.example.org/v1/widgets")
