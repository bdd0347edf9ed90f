"""Open a Dask cluster for one task (or connect to an existing one) and always tear down what was created.

Clusters:
- ``local``: ``dask_cuda.LocalCUDACluster`` (one worker per GPU: single-node RAPIDS) when
  dask-cuda is installed and GPUs are visible, else ``distributed.LocalCluster`` (worker
  processes on 127.0.0.1).
- ``address``: an existing scheduler (DaskHook: an Airflow connection or an address); nothing
  is created, so nothing is torn down but the client. Or a dask-gateway server (a ``dask``
  connection with ``{"gateway": true}`` or an ``http(s)://``/``gateway://`` address): connect to
  its named cluster (``cluster_name``; left running), or create a gateway cluster for the task
  (shut down on close: success, failure, kill).

On a GPU cluster Dask's ``dataframe.backend``/``array.backend`` are set to cudf/cupy, so the
same user code (``dd.from_dict``, ``da.random``...) runs on pandas/numpy on CPU and on
cudf/cupy on GPU; :attr:`ClusterInfo.libraries` says which.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from airflow_mlplatform.exceptions import ConfigurationError

CLUSTERS = ("local", "address", "kubernetes")
CPU_LIBRARIES = "pandas/numpy"
GPU_LIBRARIES = "cudf/cupy"


@dataclass
class ClusterInfo:
    """What a task ran on.

    :param kind: ``LocalCluster``, ``LocalCUDACluster``, ``address``, ``GatewayCluster`` or ``DaskCluster``.
    :param address: the scheduler's address.
    :param n_workers: workers when the task started.
    :param gpu: whether the workers have GPUs and RAPIDS.
    :param libraries: ``pandas/numpy`` or ``cudf/cupy``.
    :param created: whether the task created the cluster (and tore it down).
    """

    kind: str
    address: str
    n_workers: int
    gpu: bool
    libraries: str
    created: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the execution record."""
        return {
            "cluster": self.kind,
            "scheduler": self.address,
            "n_workers": self.n_workers,
            "gpu": self.gpu,
            "libraries": self.libraries,
            "created_by_task": self.created,
        }


def gpu_count() -> int:
    """GPUs usable by dask-cuda here (0 without dask-cuda, a driver or a visible GPU)."""
    try:
        from dask_cuda.utils import get_n_gpus
    except ImportError:
        return 0
    try:
        return int(get_n_gpus())
    except Exception:
        return 0


def _worker_has_rapids() -> bool:
    """Run on a worker: whether cudf and cupy import there and see a GPU."""
    try:
        import cudf  # noqa: F401
        import cupy

        return bool(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return False


def backend_config(gpu: bool) -> dict[str, str]:
    """Dask configuration that picks pandas/numpy or cudf/cupy for dataframes and arrays.

    :param gpu: whether the cluster has GPUs and RAPIDS.
    """
    return (
        {"dataframe.backend": "cudf", "array.backend": "cupy"}
        if gpu
        else {
            "dataframe.backend": "pandas",
            "array.backend": "numpy",
        }
    )


class DaskSession:
    """One task's Dask cluster and client; :meth:`close` tears down what was created.

    :param cluster: ``local`` or ``address`` (``kubernetes`` is not available in this version).
    :param n_workers: workers of a local cluster (default: one per core, or one per GPU).
    :param threads_per_worker: threads of each local worker.
    :param hook: a :class:`airflow_mlplatform.hooks.dask.DaskHook` for ``address``.
    :param log: where to say which cluster and libraries are used.
    """

    def __init__(
        self,
        cluster: str = "local",
        *,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        hook: Any = None,
        kube_cluster: Any = None,
        connect_timeout: float = 60.0,
        log: Any = None,
    ) -> None:
        self.cluster_kind = cluster
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.hook = hook
        self.kube_cluster = kube_cluster
        self.connect_timeout = connect_timeout
        self.log = log or logging.getLogger(__name__)
        self.client: Any = None
        self.cluster: Any = None
        self.gateway: Any = None
        self.gateway_cluster: Any = None
        self.gateway_created = False
        self.info: ClusterInfo | None = None
        # Guards the fields only, never held across a cluster start: close() runs from on_kill,
        # which Airflow calls from a SIGTERM handler in the main thread, possibly during the
        # start; reentrant so that such a handler never blocks on its own thread.
        self._lock = threading.RLock()
        self._closed = False

    def open(self) -> Any:
        """Create (or connect to) the cluster; return the connected ``distributed.Client``."""
        if self.cluster_kind == "local":
            self._open_local()
        elif self.cluster_kind == "address":
            self._open_address()
        elif self.cluster_kind == "kubernetes" and self.kube_cluster is not None:
            self._open_kubernetes()
        else:
            raise ConfigurationError(
                f"cluster {self.cluster_kind!r} is not available here; use 'local', 'address' or 'kubernetes'"
            )
        assert self.info is not None
        self.log.info(
            "Dask cluster: %s at %s, %d worker(s), %s; data libraries: %s",
            self.info.kind,
            self.info.address,
            self.info.n_workers,
            "GPU" if self.info.gpu else "CPU",
            self.info.libraries,
        )
        return self.client

    def _open_local(self) -> None:
        from distributed import Client

        gpus = gpu_count()
        with self._lock:
            if self._closed:
                raise ConfigurationError("the Dask session was closed before its cluster started")
        cluster: Any
        if gpus:
            from dask_cuda import LocalCUDACluster

            kind = "LocalCUDACluster"
            cluster = LocalCUDACluster(
                n_workers=self.n_workers or gpus,
                threads_per_worker=self.threads_per_worker or 1,
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
        else:
            from distributed import LocalCluster

            kind = "LocalCluster"
            cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.WARNING,
            )
        with self._lock:
            self.cluster = cluster
            closed = self._closed
        if closed:  # killed while the cluster started: close() found nothing to tear down
            self.cluster = None
            self._close_local(cluster)
            raise ConfigurationError(
                "the Dask session was closed while its local cluster started; tore it down"
            )
        self.client = Client(self.cluster, set_as_default=True)
        n = len(self.client.scheduler_info(n_workers=-1)["workers"])
        self.info = ClusterInfo(
            kind=kind,
            address=self.cluster.scheduler_address,
            n_workers=n,
            gpu=bool(gpus),
            libraries=GPU_LIBRARIES if gpus else CPU_LIBRARIES,
            created=True,
        )

    def _open_address(self) -> None:
        if self.hook is None:
            raise ConfigurationError("cluster='address' needs a dask_conn_id or an address")
        if self.hook.is_gateway():
            self._open_gateway()
            return
        address, _timeout = self.hook.get_address()
        self.client = self.hook.get_client(set_as_default=True)
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        gpu = bool(workers) and all(self.client.run(_worker_has_rapids).values())
        self.info = ClusterInfo(
            kind="address",
            address=address,
            n_workers=len(workers),
            gpu=gpu,
            libraries=GPU_LIBRARIES if gpu else CPU_LIBRARIES,
            created=False,
        )

    def _open_gateway(self) -> None:
        """Connect to a named gateway cluster, or create one for this task and scale it."""
        from airflow_mlplatform.hooks.dask import DEFAULT_GATEWAY_WORKERS

        settings = self.hook.gateway_settings()
        with self._lock:
            if self._closed:
                raise ConfigurationError("the Dask session was closed before its cluster started")
            self.gateway = self.hook.get_gateway(settings)
        created = settings.cluster_name is None
        if created:
            options = self.gateway.cluster_options()
            try:
                options.update(settings.cluster_options)
            except (KeyError, ValueError, TypeError) as e:
                raise ConfigurationError(
                    f"dask-gateway cluster_options {sorted(settings.cluster_options)} are not accepted by the "
                    f"gateway at {settings.address} ({e}); it offers {sorted(options)}"
                ) from e
            cluster = self.gateway.new_cluster(cluster_options=options, shutdown_on_close=True)
        else:
            cluster = self.gateway.connect(settings.cluster_name, shutdown_on_close=False)
        with self._lock:
            self.gateway_cluster, self.gateway_created = cluster, created
            closed = self._closed
        if closed:  # killed while the gateway was starting the cluster
            self._close_gateway()
            raise ConfigurationError("the Dask session was closed while its gateway cluster started")
        self.log.info(
            "dask-gateway %s: %s cluster %s",
            settings.address,
            "created" if created else "connected to existing",
            cluster.name,
        )
        n = self.n_workers or settings.n_workers or DEFAULT_GATEWAY_WORKERS
        if created:
            cluster.scale(n)
        self.client = cluster.get_client(set_as_default=True)
        if created:
            self.client.wait_for_workers(n, timeout=self.connect_timeout)
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        gpu = bool(workers) and all(self.client.run(_worker_has_rapids).values())
        self.info = ClusterInfo(
            kind="GatewayCluster",
            address=self.client.scheduler.address,
            n_workers=len(workers),
            gpu=gpu,
            libraries=GPU_LIBRARIES if gpu else CPU_LIBRARIES,
            created=created,
        )

    def _close_gateway(self) -> None:
        """Shut down a gateway cluster this session created; only disconnect from one it did not."""
        from airflow_mlplatform.hooks.dask import close_gateway_client

        cluster, gateway = self.gateway_cluster, self.gateway
        self.gateway_cluster = self.gateway = None
        if cluster is not None:
            if self.gateway_created:
                try:
                    cluster.shutdown()
                    self.log.info("dask-gateway cluster %s shut down", cluster.name)
                except Exception as e:
                    self.log.warning("Shutting down the dask-gateway cluster %s failed: %s", cluster.name, e)
            else:
                with suppress(Exception):
                    cluster.close(shutdown=False)
            close_gateway_client(getattr(cluster, "gateway", None))
        close_gateway_client(gateway)

    def _open_kubernetes(self) -> None:
        from distributed import Client

        from airflow_mlplatform.hooks.dask import check_reachable

        address = self.kube_cluster.start()
        check_reachable(address, self.connect_timeout)
        self.client = Client(address, timeout=f"{self.connect_timeout}s", set_as_default=True)
        self.client.wait_for_workers(self.kube_cluster.n_workers, timeout=self.connect_timeout)
        gpu = bool(self.kube_cluster.gpu)
        self.info = ClusterInfo(
            kind="DaskCluster",
            address=address,
            n_workers=len(self.client.scheduler_info(n_workers=-1)["workers"]),
            gpu=gpu,
            libraries=GPU_LIBRARIES if gpu else CPU_LIBRARIES,
            created=True,
        )

    def worker_pids(self) -> list[int]:
        """Process ids of the workers of a local cluster (for checks that nothing is left)."""
        if self.client is None:
            return []
        import os

        return list(self.client.run(os.getpid).values())

    def close(self) -> None:
        """Close the client and tear down a cluster this session created. Idempotent, thread-safe."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, cluster = self.client, self.cluster
        if client is not None:
            with suppress(Exception):
                client.close(timeout=10)
        self._close_gateway()
        if self.kube_cluster is not None:
            self.kube_cluster.close()
        if cluster is not None:
            self._close_local(cluster)
            self.log.info("Dask cluster %s torn down", self.info.address if self.info else "")

    def _close_local(self, cluster: Any) -> None:
        try:
            cluster.close(timeout=30)
        except Exception as e:  # the workers are killed below in any case
            self.log.warning("Closing the local Dask cluster failed (%s); killing its workers", e)
            _kill_workers(cluster)

    def __enter__(self) -> Any:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill_workers(cluster: Any) -> None:
    """Last resort: kill a LocalCluster's worker processes (after a failed ``close``)."""
    for worker in getattr(cluster, "workers", {}).values():
        process = getattr(getattr(worker, "process", None), "process", None)
        kill: Callable[[], Any] | None = getattr(process, "kill", None)
        if kill is not None:
            with suppress(Exception):
                kill()
