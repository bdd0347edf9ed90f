"""DaskSession: a kill (close() from a signal handler) while the local cluster starts.

Airflow calls ``on_kill`` from a SIGTERM handler in the main thread; here the LocalCluster's start
calls ``close()`` itself, before or after its workers are up, as such a handler would.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

from airflow_mlplatform.exceptions import ConfigurationError
from airflow_mlplatform.runners import dask_cluster
from airflow_mlplatform.runners.dask_cluster import DaskSession


@pytest.mark.parametrize("when", ["before_the_workers_start", "after_the_workers_started"])
def test_a_kill_while_the_local_cluster_starts_does_not_hang_and_tears_it_down(monkeypatch, when):
    import distributed
    from distributed.core import Status

    session = DaskSession("local", n_workers=1, threads_per_worker=1)
    started: list[Any] = []

    class KilledDuringStart(distributed.LocalCluster):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if when == "before_the_workers_start":
                session.close()
            super().__init__(*args, **kwargs)
            started.append(self)
            if when == "after_the_workers_started":
                session.close()

    monkeypatch.setattr(distributed, "LocalCluster", KilledDuringStart)
    monkeypatch.setattr(dask_cluster, "gpu_count", lambda: 0)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            session.open()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "close() deadlocked against the cluster start"
    assert errors and isinstance(errors[0], ConfigurationError) and "closed" in str(errors[0]), errors
    (cluster,) = started
    assert cluster.status == Status.closed
    assert session.client is None
    session.close()  # the operator's finally: nothing left, no error
