"""Valohai error bodies that echo secrets are masked before they are raised or sent as trigger events."""

from __future__ import annotations

import asyncio

import pytest

from airflow_mlplatform.exceptions import ValohaiAPIError, ValohaiAuthError
from airflow_mlplatform.hooks import valohai as hook_module
from airflow_mlplatform.hooks.valohai import ValohaiHook
from airflow_mlplatform.triggers.valohai import ValohaiExecutionTrigger
from airflow_mlplatform.valohai_payloads import execution_payload
from valohai_contract_server import PROJECT_ID, ContractServer, connection_json

FAST = {"backoff": 0.01, "backoff_max": 0.05, "timeout": 5.0, "retries": 1}
TOKEN = "wrong-Secret-token-987"


@pytest.fixture
def server(monkeypatch):
    with ContractServer(speed=100) as srv:
        srv.echo_errors = True
        monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(srv))
        hook_module._PROJECT_CACHE.clear()
        yield srv


def test_an_auth_error_body_echoing_the_token_is_masked(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server, token=TOKEN))
    with pytest.raises(ValohaiAuthError) as info:
        ValohaiHook(**FAST).get_execution("x")
    assert TOKEN not in str(info.value)
    assert "Invalid token: Token ***" in str(info.value)


def test_an_api_error_body_echoing_a_masked_parameter_is_masked(server):
    from airflow.sdk.log import mask_secret

    secret = "param-secret-value-456"
    mask_secret(secret)  # as the task runner does for {{ conn.x.password }}
    server.inject("503", count=5)
    payload = execution_payload(
        project_id=PROJECT_ID, commit="main", step="train", parameters={"key": secret}
    )
    with pytest.raises(ValohaiAPIError) as info:
        ValohaiHook(**FAST).create_execution(payload)
    assert "Service unavailable for request" in str(info.value)
    assert secret not in str(info.value)


def test_the_trigger_error_event_never_carries_the_token(server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(server, token=TOKEN))
    trigger = ValohaiExecutionTrigger(
        execution_id="x", poll_interval=0.01, max_poll_interval=0.02, hook_kwargs=FAST
    )

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "error"
    assert "HTTP 401" in event["message"] and TOKEN not in event["message"]
