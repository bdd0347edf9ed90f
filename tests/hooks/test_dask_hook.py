from __future__ import annotations

import json
import socket

import pytest

from airflow_mlplatform.exceptions import ConfigurationError, DaskSchedulerUnreachableError
from airflow_mlplatform.hooks.dask import DaskHook, check_reachable, split_address


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("tcp://10.0.0.5:8786", ("tcp", "10.0.0.5", 8786)),
        ("10.0.0.5:9000", ("tcp", "10.0.0.5", 9000)),
        ("dask-scheduler.ml.svc", ("tcp", "dask-scheduler.ml.svc", None)),
        ("tls://sched:8786", ("tls", "sched", 8786)),
    ],
)
def test_split_address(address, parts):
    assert split_address(address) == parts


def test_bad_address_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="has a bad port"):
        split_address("tcp://host:notaport")


def test_address_from_a_dask_connection(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DASK_TEST",
        json.dumps({"conn_type": "dask", "host": "sched", "port": 9999, "extra": {"timeout": 3}}),
    )
    assert DaskHook("dask_test").get_address() == ("tcp://sched:9999", 3.0)
    assert DaskHook("dask_test", timeout=1).get_address() == ("tcp://sched:9999", 1)
    assert DaskHook("dask_test", address="tcp://other:1").get_address() == ("tcp://other:1", 10.0)
    monkeypatch.setenv("AIRFLOW_CONN_DASK_FULL", json.dumps({"conn_type": "dask", "host": "tls://s:1234"}))
    assert DaskHook("dask_full").get_address()[0] == "tls://s:1234"
    monkeypatch.setenv("AIRFLOW_CONN_DASK_EMPTY", json.dumps({"conn_type": "dask"}))
    with pytest.raises(ConfigurationError, match="has no host"):
        DaskHook("dask_empty").get_address()


def test_reachability_check_and_test_connection():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_reachable(f"tcp://127.0.0.1:{port}", timeout=2)
        assert DaskHook(None, address=f"127.0.0.1:{port}").test_connection()[0] is True
    with pytest.raises(DaskSchedulerUnreachableError, match=f"127.0.0.1:{port} within 0.5 s"):
        check_reachable(f"tcp://127.0.0.1:{port}", timeout=0.5)
    ok, message = DaskHook(None, address=f"127.0.0.1:{port}", timeout=0.3).test_connection()
    assert not ok and "no Dask scheduler answered" in message
