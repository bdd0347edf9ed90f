"""Pytest fixtures of the Kubernetes test bed (exported by tests/conftest.py).

``k8s`` (session-scoped) starts the emulator with the fake kubelet in a background thread, writes a
kubeconfig pointing at it and sets ``AIRFLOW_CONN_KUBERNETES_DEFAULT`` to use it. Tests get a
:class:`KubeBed`; to add a fake controller for custom resources (TFJob, DaskJob...)::

    @pytest.fixture(scope="session")
    def tfjobs(k8s):
        k8s.call(k8s.emulator.declare, "kubeflow.org/v1/tfjobs", "TFJob")
        k8s.call(k8s.emulator.add_controller, MyTFJobController())
        return k8s

``k8s_kinds`` adds the session's fake job operators that way; ``kserve`` adds the fake KServe
controller (InferenceServices served by a real MLServer, see tests/fake_kserve_controller.py) and
returns it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube.emulator import Emulator, EmulatorThread
from kube.kubelet import FakeKubelet


def first_event(trigger: Any, seconds: float = 60) -> dict[str, Any]:
    """Run a trigger until its first event (as the triggerer would) and return the payload."""
    import asyncio

    async def main() -> dict[str, Any]:
        gen = trigger.run()
        try:
            return (await gen.__anext__()).payload
        finally:
            await gen.aclose()

    return asyncio.run(asyncio.wait_for(main(), seconds))


def write_kubeconfig(url: str, path: Path, namespace: str = "default") -> Path:
    """A kubeconfig whose only cluster is ``url`` (plain HTTP on loopback, a dummy token)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [
            {"name": "emulator", "context": {"cluster": "emulator", "user": "tester", "namespace": namespace}}
        ],
        "current-context": "emulator",
    }
    path.write_text(json.dumps(doc))
    return path


class KubeBed:
    """A running emulator + fake kubelet, with thread-safe helpers for tests."""

    def __init__(self, thread: EmulatorThread, kubelet: FakeKubelet, kubeconfig: Path) -> None:
        self.thread = thread
        self.kubelet = kubelet
        self.kubeconfig = kubeconfig
        self.url = thread.url
        self.conn_uri = json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(kubeconfig), "namespace": "default"},
            }
        )

    @property
    def emulator(self) -> Emulator:
        assert self.thread.emulator is not None
        return self.thread.emulator

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in the emulator's loop (thread-safe access to its state)."""
        return self.thread.call(fn, *args)

    def pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.call(self.emulator.objects, "v1/pods", namespace)

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.call(self.emulator.get_object, "v1/pods", namespace, name)

    def running_processes(self) -> list[str]:
        return self.call(self.kubelet.running)

    def inject(self, status: int, **kwargs: Any) -> Any:
        return self.call(lambda: self.emulator.inject(status, **kwargs))

    def clear_faults(self) -> None:
        self.call(self.emulator.faults.clear)

    def mark(self) -> int:
        """Index of the next request, to count requests made after this point."""
        return self.call(lambda: len(self.emulator._requests))

    def requests_since(self, mark: int) -> list[Any]:
        return self.call(lambda: list(self.emulator._requests[mark:]))

    def drop_watches(self) -> int:
        return self.call(self.emulator.drop_watches)

    def expire(self) -> None:
        self.call(self.emulator.expire)


@pytest.fixture(scope="session")
def k8s() -> Iterator[KubeBed]:
    """The Kubernetes test bed, with ``AIRFLOW_CONN_KUBERNETES_DEFAULT`` pointing at it."""
    kubelet = FakeKubelet()
    thread = EmulatorThread([kubelet]).start()
    folder = Path(tempfile.mkdtemp(prefix="kube-bed-"))
    kubeconfig = write_kubeconfig(thread.url, folder / "kubeconfig")
    bed = KubeBed(thread, kubelet, kubeconfig)
    old = os.environ.get("AIRFLOW_CONN_KUBERNETES_DEFAULT")
    os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = bed.conn_uri
    try:
        yield bed
    finally:
        if old is None:
            os.environ.pop("AIRFLOW_CONN_KUBERNETES_DEFAULT", None)
        else:
            os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = old
        thread.stop()


@pytest.fixture(scope="session")
def k8s_kinds(k8s: KubeBed) -> KubeBed:
    """The bed with every job kind's resource declared and its fake controller added, once per
    session (the fake Kubeflow training operator, the fake Dask operator, the fake Spark operator)."""
    from fake_dask_operator import DASKCLUSTERS, DASKJOBS, SERVICES, FakeDaskOperator
    from fake_spark_operator import SPARKAPPLICATIONS, FakeSparkOperator
    from fake_training_operator import TFJOBS, FakeTrainingOperator

    def setup() -> None:
        emulator = k8s.emulator
        for key, kind in (
            (TFJOBS, "TFJob"),
            (DASKJOBS, "DaskJob"),
            (DASKCLUSTERS, "DaskCluster"),
            (SPARKAPPLICATIONS, "SparkApplication"),
        ):
            if key not in emulator.kinds:
                emulator.declare(key, kind)
        if SERVICES not in emulator.kinds:
            emulator.declare(SERVICES, "Service", status_subresource=False)
        for cls in (FakeTrainingOperator, FakeDaskOperator, FakeSparkOperator):
            if not any(isinstance(c, cls) for c in emulator.controllers):
                emulator.add_controller(cls())

    k8s.call(setup)
    return k8s


@pytest.fixture(scope="session")
def kserve(k8s: KubeBed) -> Iterator[Any]:
    """The fake KServe controller (tests/fake_kserve_controller.py), once per session: the
    InferenceService kind declared, the controller added. Its model server (MLServer in
    .venv-serving) starts on the first model load, not here; it is killed at the session's end."""
    from fake_kserve_controller import INFERENCESERVICES, FakeKServeController, serving_python

    python = serving_python()
    if not python.exists():
        pytest.fail(f"the KServe test bed's model server needs {python}: run `make serving-venv`")

    def setup() -> tuple[FakeKServeController, bool]:
        emulator = k8s.emulator
        if INFERENCESERVICES not in emulator.kinds:
            emulator.declare(INFERENCESERVICES, "InferenceService", status_subresource=True)
        for c in emulator.controllers:
            if isinstance(c, FakeKServeController):
                return c, False
        controller = FakeKServeController(python=python)
        emulator.add_controller(controller)
        return controller, True

    controller, added = k8s.call(setup)
    yield controller
    if added:
        k8s.call(controller.aclose)


@pytest.fixture
def k8s_clean(k8s: KubeBed) -> Iterator[KubeBed]:
    """The bed with no injected faults before and after the test."""
    k8s.clear_faults()
    yield k8s
    k8s.clear_faults()
