"""The test bed itself behaves like an API server + kubelet for the real kubernetes client."""

from __future__ import annotations

import json
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


@pytest.fixture
def gadgets(k8s, core):
    """A custom resource of its own with a status subresource (bed.example.org gadgets)."""
    key = "bed.example.org/v1/gadgets"
    k8s.call(k8s.emulator.declare, key, "Gadget")
    custom = client.CustomObjectsApi(core.api_client)
    body = {
        "apiVersion": "bed.example.org/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "generation": 7},  # the server's own, from 1
        "spec": {"n": 1},
    }
    custom.create_namespaced_custom_object("bed.example.org", "v1", "default", "gadgets", body)

    def get():
        return custom.get_namespaced_custom_object("bed.example.org", "v1", "default", "gadgets", "g")

    def patch(body):
        return custom.patch_namespaced_custom_object("bed.example.org", "v1", "default", "gadgets", "g", body)

    yield custom, get, patch
    k8s.call(k8s.emulator.remove_object, key, "default", "g")
    k8s.call(k8s.emulator.undeclare, key)


def test_generation_moves_with_the_spec_only(gadgets, k8s):
    custom, get, patch = gadgets
    assert get()["metadata"]["generation"] == 1
    assert (
        patch({"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}})["metadata"]["generation"] == 1
    )
    assert patch({"spec": {"n": 1}})["metadata"]["generation"] == 1  # the same spec: no change
    assert patch({"spec": {"n": 2}, "metadata": {"generation": 9}})["metadata"]["generation"] == 2
    custom.patch_namespaced_custom_object_status(
        "bed.example.org", "v1", "default", "gadgets", "g", {"status": {"observedGeneration": 2}}
    )
    assert get()["metadata"]["generation"] == 2
    whole = get()
    whole["spec"] = {"n": 3}
    replaced = custom.replace_namespaced_custom_object(
        "bed.example.org", "v1", "default", "gadgets", "g", whole
    )
    assert replaced["metadata"]["generation"] == 3
    assert replaced["status"] == {"observedGeneration": 2}
    # a controller's patch without HTTP counts too
    k8s.call(k8s.emulator.patch_object, "bed.example.org/v1/gadgets", "default", "g", {"spec": {"n": 4}})
    assert get()["metadata"]["generation"] == 4


def test_stale_resource_version_is_a_conflict(gadgets):
    custom, get, patch = gadgets
    stale = get()["metadata"]["resourceVersion"]
    fresh = patch({"spec": {"n": 2}})["metadata"]["resourceVersion"]
    assert fresh != stale
    for write in (
        lambda: patch({"metadata": {"resourceVersion": stale}, "spec": {"n": 3}}),
        lambda: custom.patch_namespaced_custom_object_status(
            "bed.example.org", "v1", "default", "gadgets", "g", {"metadata": {"resourceVersion": stale}}
        ),
        lambda: custom.replace_namespaced_custom_object(
            "bed.example.org",
            "v1",
            "default",
            "gadgets",
            "g",
            {**get(), "metadata": {"name": "g", "resourceVersion": stale}},
        ),
    ):
        with pytest.raises(client.ApiException) as info:
            write()
        assert info.value.status == 409
        body = json.loads(info.value.body)
        assert body["reason"] == "Conflict"
        assert body["message"] == (
            'Operation cannot be fulfilled on gadgets.bed.example.org "g": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
    assert get()["spec"] == {"n": 2}
    assert get()["metadata"]["resourceVersion"] == fresh
    # the current one is accepted, and the stored one is the server's new one, not the body's
    done = patch({"metadata": {"resourceVersion": fresh}, "spec": {"n": 5}})
    assert done["spec"] == {"n": 5}
    assert int(done["metadata"]["resourceVersion"]) > int(fresh)


def test_merge_patch_null_removes_a_key(gadgets, k8s):
    _, get, patch = gadgets
    patch({"spec": {"keep": 1, "drop": {"deep": 2}}})
    assert patch({"spec": {"drop": None}})["spec"] == {"n": 1, "keep": 1}
    k8s.call(k8s.emulator.set_status, "bed.example.org/v1/gadgets", "default", "g", {"a": {"b": 1, "c": 2}})
    k8s.call(k8s.emulator.set_status, "bed.example.org/v1/gadgets", "default", "g", {"a": {"b": None}})
    assert get()["status"] == {"a": {"c": 2}}
