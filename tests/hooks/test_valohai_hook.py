"""ValohaiHook against the contract server over 127.0.0.1: retries, errors, re-attach, async."""

from __future__ import annotations

import asyncio
import logging

import pytest

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    ValohaiAPIError,
    ValohaiAuthError,
    ValohaiConnectionError,
    ValohaiNotFoundError,
    ValohaiRequestError,
)
from airflow_mlplatform.hooks import valohai as hook_module
from airflow_mlplatform.hooks.valohai import ValohaiHook
from airflow_mlplatform.valohai_payloads import execution_payload
from valohai_contract_server import PROJECT_ID, PROJECT_NAME, ContractServer, connection_json

FAST = {"backoff": 0.01, "backoff_max": 0.05, "timeout": 5.0}


@pytest.fixture
def server(monkeypatch):
    # executions run for 1000 simulated s (10 s real) unless a test configures a step
    with ContractServer(speed=100, durations={"started": 1000}) as srv:
        monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(srv))
        hook_module._PROJECT_CACHE.clear()
        yield srv


def submit(hook: ValohaiHook, step: str = "train", tags: list[str] | None = None) -> dict:
    payload = execution_payload(project_id=PROJECT_ID, commit="main", step=step, tags=tags or [])
    return hook.create_execution(payload, find_tags=tags)


def test_project_resolved_with_one_filtered_request_then_cached(server):
    hook = ValohaiHook(**FAST)
    assert hook.resolve_project(None) == PROJECT_ID  # the connection's default project
    assert ValohaiHook(**FAST).resolve_project(PROJECT_NAME) == PROJECT_ID
    assert hook.resolve_project(PROJECT_ID) == PROJECT_ID
    calls = server.api_requests("GET", "/projects/")
    assert len(calls) == 1
    assert calls[0].query["name"] == [PROJECT_NAME]


def test_unknown_project_is_a_clear_error(server):
    with pytest.raises(ValohaiNotFoundError, match=r"no Valohai project named 'nobody/nothing'"):
        ValohaiHook(**FAST).resolve_project("nobody/nothing")


def test_missing_project_everywhere_says_where_to_set_it(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server, project=None))
    with pytest.raises(ConfigurationError, match="pass project="):
        ValohaiHook(**FAST).resolve_project(None)


def test_bad_token_is_an_auth_error_that_never_shows_the_token(server, monkeypatch, caplog, capsys):
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server, token="wrong-Secret-123"))
    hook = ValohaiHook(**FAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(ValohaiAuthError) as info:
        hook.get_execution("x")
    assert "password field" in str(info.value)
    assert "wrong-Secret-123" not in str(info.value)
    assert "wrong-Secret-123" not in caplog.text
    assert "wrong-Secret-123" not in capsys.readouterr().out
    assert "wrong-Secret-123" not in repr(hook.settings)
    assert len(server.api_requests()) == 1  # 401 is not retried


def test_unknown_step_is_a_400_that_names_the_step(server):
    server.project_steps = {"preprocess", "train"}
    with pytest.raises(ValohaiRequestError, match=r"step 'evaluate'.*step: Step 'evaluate' not found"):
        submit(ValohaiHook(**FAST), step="evaluate")


def test_unknown_execution_is_not_found(server):
    with pytest.raises(ValohaiNotFoundError, match="execution nope"):
        ValohaiHook(**FAST).get_execution("nope")


def test_429_with_retry_after_503_and_dropped_connections_are_retried(server, capsys):
    hook = ValohaiHook(**FAST)
    ex = submit(hook)
    server.inject("429", count=2, retry_after=0.02)
    server.inject("503", count=1)
    server.inject("drop", count=1)
    assert hook.get_execution(ex["id"])["id"] == ex["id"]
    statuses = [r.status for r in server.api_requests("GET", "/executions/")]
    assert statuses == [429, 429, 503, -1, 200]
    logged = capsys.readouterr().out
    assert "HTTP 429; retry 1 in 0.02s" in logged
    assert server.token not in logged


def test_retries_are_bounded(server):
    server.inject("503", count=10)
    with pytest.raises(ValohaiAPIError, match="HTTP 503") as info:
        ValohaiHook(retries=2, **FAST).get_execution("x")
    assert info.value.status_code == 503
    assert len(server.api_requests()) == 3


def test_unreachable_host_is_a_connection_error(monkeypatch):
    with ContractServer() as srv:
        env = connection_json(srv)
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", env)  # server gone: connection refused
    with pytest.raises(ValohaiConnectionError, match="could not be reached after 2 tries"):
        ValohaiHook(retries=1, **FAST).get_execution("x")


def test_dropped_create_does_not_submit_twice(server):
    hook = ValohaiHook(**FAST)
    server.inject("drop", count=1, path="/executions/", method="POST")
    ex = submit(hook, tags=["airflow-dag:d", "airflow-try:1"])
    assert ex["status"] == "created"
    assert len(server.executions) == 1
    # a drop *after* the server created it: the lookup by tags finds it instead of resubmitting
    server.inject("drop", count=1, path="/executions/", method="POST")
    again = submit(hook, tags=["airflow-dag:d", "airflow-try:1"])
    assert again["id"] in server.executions


def test_find_running_executions_by_tags(server):
    hook = ValohaiHook(**FAST)
    mine = submit(hook, tags=["airflow-dag:d", "airflow-task:t", "airflow-try:1"])
    submit(hook, tags=["airflow-dag:d", "airflow-task:other"])
    found = hook.find_executions(PROJECT_ID, ["airflow-dag:d", "airflow-task:t"], in_progress_only=True)
    assert [e["id"] for e in found] == [mine["id"]]
    assert server.api_requests("GET", "/executions/")[-1].query["status"] == [
        "created",
        "queued",
        "started",
        "stopping",
    ]
    hook.stop_execution(mine["id"])
    assert hook.get_execution(mine["id"])["status"] == "stopped"
    assert hook.find_executions(PROJECT_ID, ["airflow-task:t"], in_progress_only=True) == []
    hook.stop_execution("gone")  # a 404 on stop is fine


def test_wait_outputs_metadata_log_and_download(server):
    server.configure_step(
        "train",
        outputs={"model.pkl": b"MODEL"},
        metadata=[{"loss": 0.5}, {"loss": 0.2, "acc": 0.9}],
        durations={"started": 5},
    )
    hook = ValohaiHook(**FAST)
    ex = submit(hook)
    final = hook.wait_for_execution(ex["id"], poll_interval=0.02, max_poll_interval=0.05)
    assert final["status"] == "complete"
    assert final["cumulative_metadata"] == {"loss": 0.2, "acc": 0.9}
    assert [d["name"] for d in hook.list_outputs(ex["id"])] == ["model.pkl"]
    assert hook.get_metadata(ex["id"]) == [{"loss": 0.5}, {"loss": 0.2, "acc": 0.9}]
    assert "done" in hook.get_log_tail(ex["id"])
    url = hook.download_url(f"datum://{final['outputs'][0]['id']}")
    assert url.startswith(server.url)
    addressed = hook.get_execution(f"{PROJECT_ID}:{ex['counter']}")
    assert addressed["id"] == ex["id"]


def test_wait_has_a_deadline(server):
    hook = ValohaiHook(**FAST)
    ex = submit(hook)
    with pytest.raises(TimeoutError, match="did not finish within"):
        hook.wait_for_execution(ex["id"], poll_interval=0.02, max_poll_interval=0.05, timeout=0.2)


def test_async_calls_retry_and_share_one_client(server):
    hook = ValohaiHook(**FAST)
    ex = submit(hook)
    server.inject("429", count=1, retry_after=0.01)
    server.inject("drop", count=1)

    async def main():
        a = await ValohaiHook(**FAST).aget_execution(ex["id"])
        b = await ValohaiHook(**FAST).aget_execution(ex["id"])
        clients = dict(hook_module._ASYNC_CLIENTS[asyncio.get_running_loop()])
        await ValohaiHook(**FAST).astop_execution(ex["id"])
        server.token, saved = "other", server.token
        try:
            with pytest.raises(ValohaiAuthError):
                await ValohaiHook(**FAST).aget_execution(ex["id"])
        finally:
            server.token = saved
        await ValohaiHook.aclose_all()
        return a, b, clients

    a, b, clients = asyncio.run(main())
    assert a["id"] == b["id"] == ex["id"]
    assert len(clients) == 1
    assert [r.status for r in server.api_requests("GET", ex["id"])][:3] == [429, -1, 200]
    assert server.status_of(server.executions[ex["id"]]) == "stopped"


def test_connection_type_form_and_test_button(server, monkeypatch):
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert pm.field_behaviours["valohai"]["relabeling"]["password"] == "API token"
    assert "login" in pm.field_behaviours["valohai"]["hidden_fields"]
    assert pm.connection_form_widgets["extra__valohai__project"].field["schema"]["title"] == "Default project"
    info = pm.hooks["valohai"]
    assert info.hook_class_name == "airflow_mlplatform.hooks.valohai.ValohaiHook"
    assert info.connection_testable

    assert ValohaiHook(**FAST).test_connection() == (
        True,
        f"Connected to {server.url}/api/v0/; 1 project(s) visible",
    )
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server, token="nope"))
    ok, message = ValohaiHook(**FAST).test_connection()
    assert not ok and "API token" in message and "nope" not in message


def _form_test(monkeypatch, host: str, token: str) -> tuple[bool, str]:
    """What the api-server's POST /connections/test does: a temporary id, exported, then tested."""
    import json

    from airflow.models.connection import Connection

    conn = Connection(conn_id="tmpformid7", conn_type="valohai", host=host, password=token)
    monkeypatch.setenv(
        "AIRFLOW_CONN_TMPFORMID7", json.dumps({"conn_type": "valohai", "host": host, "password": token})
    )
    return conn.test_connection()


def test_connection_test_bad_token_names_the_field_not_the_temporary_id(server, monkeypatch):
    ok, message = _form_test(monkeypatch, server.url, "wrong-token")
    assert not ok
    assert message == (
        f"Valohai at {server.url}/api/v0/ refused the API token (HTTP 401: Invalid token.) "
        "Put a valid token in the password field."
    )
    assert "tmpformid7" not in message and ".." not in message and "wrong-token" not in message
    assert len(server.api_requests()) == 1


def test_connection_test_tries_an_unreachable_host_once(monkeypatch, caplog):
    import socket
    import time

    with socket.socket() as s:  # a loopback port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        ok, message = _form_test(monkeypatch, f"http://127.0.0.1:{port}", "t")
    assert not ok
    assert message == (
        f"Valohai at http://127.0.0.1:{port}/api/v0/ could not be reached (ConnectionError). "
        "Check the host (and port) field and the network."
    )
    assert not [r for r in caplog.records if "retry" in r.getMessage()]  # once, no backoff
    assert time.monotonic() - started < hook_module.TEST_TIMEOUT


def test_connection_test_gives_up_after_its_short_timeout(monkeypatch):
    import socket

    monkeypatch.setattr(hook_module, "TEST_TIMEOUT", 0.3)
    with socket.socket() as s:  # accepts connections (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        ok, message = _form_test(monkeypatch, f"http://127.0.0.1:{s.getsockname()[1]}", "t")
    assert not ok and "could not be reached (ReadTimeout)" in message


def test_auth_error_has_one_full_stop(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server, token="nope"))
    with pytest.raises(ValohaiAuthError) as info:
        ValohaiHook(**FAST).get_execution("x")
    assert "HTTP 401 Invalid token. The API token of connection 'valohai_default'" in str(info.value)
    assert ".." not in str(info.value)
