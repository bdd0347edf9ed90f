"""DaskHook: connect to an existing Dask scheduler named by an Airflow connection of type ``dask``.

Connection fields: host (``10.0.0.5`` or a full address ``tcp://10.0.0.5:8786``), port
(default 8786), schema (protocol, default ``tcp``); extra ``{"timeout": 10}`` (seconds to
connect). Example::

    AIRFLOW_CONN_DASK_DEFAULT='{"conn_type": "dask", "host": "dask-scheduler.ml", "port": 8786}'

Reachability is checked with a plain TCP connect first (``timeout`` seconds at most), so an
unreachable scheduler is a clear error within seconds, not a long client retry loop.
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_mlplatform.exceptions import ConfigurationError, DaskSchedulerUnreachableError

DEFAULT_PORT = 8786
DEFAULT_TIMEOUT = 10.0
#: Protocols whose address is host:port and can be checked with a TCP connect.
TCP_PROTOCOLS = ("tcp", "tls", "ws", "wss")


def split_address(address: str) -> tuple[str, str, int | None]:
    """``(protocol, host, port)`` of a Dask address (``tcp://host:8786``, ``host:8786``, ``host``).

    :param address: the scheduler address.
    """
    text = address.strip()
    if "://" not in text:
        text = f"tcp://{text}"
    parts = urlsplit(text)
    if not parts.hostname:
        raise ConfigurationError(
            f"Dask scheduler address {address!r} has no host; write it as tcp://HOST:8786"
        )
    try:
        port = parts.port
    except ValueError as e:
        raise ConfigurationError(f"Dask scheduler address {address!r} has a bad port: {e}") from e
    return parts.scheme, parts.hostname, port


def check_reachable(address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise DaskSchedulerUnreachableError unless a TCP connection to the scheduler opens in time.

    :param address: ``tcp://host:port`` (other protocols are not checked).
    :param timeout: seconds to try.
    """
    protocol, host, port = split_address(address)
    if protocol not in TCP_PROTOCOLS:
        return
    port = port or DEFAULT_PORT
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic())):
                return
        except OSError as e:
            last = e
        if time.monotonic() + 0.2 >= deadline:
            break
        time.sleep(0.2)
    raise DaskSchedulerUnreachableError(
        f"no Dask scheduler answered at {address} within {timeout:g} s ({last}); check that the "
        "scheduler is running, the address and port (default 8786) of the connection or the address "
        "argument, and that the Airflow worker can reach that network"
    )


class DaskHook(BaseHook):
    """Client side of an existing Dask cluster (a scheduler address).

    :param dask_conn_id: an Airflow connection of type ``dask``; None: use ``address``.
    :param address: a scheduler address; wins over the connection.
    :param timeout: seconds to connect.
    """

    conn_name_attr = "dask_conn_id"
    default_conn_name = "dask_default"
    conn_type = "dask"
    hook_name = "Dask"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: host/port of the scheduler, schema as protocol."""
        return {
            "hidden_fields": ["login", "password"],
            "relabeling": {"host": "Scheduler host (or full address)", "schema": "Protocol (tcp, tls)"},
            "placeholders": {
                "host": "dask-scheduler.ml.svc or tcp://10.0.0.5:8786",
                "port": "8786",
                "schema": "tcp",
                "extra": '{"timeout": 10}',
            },
        }

    def __init__(
        self,
        dask_conn_id: str | None = default_conn_name,
        *,
        address: str | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.dask_conn_id = dask_conn_id
        self.address = address
        self.timeout = timeout

    def _connection_settings(self) -> tuple[str, float]:
        if self.dask_conn_id is None:
            raise ConfigurationError(
                "no Dask scheduler given: pass address='tcp://HOST:8786' or dask_conn_id= naming a "
                "connection of type 'dask'"
            )
        conn = self.get_connection(self.dask_conn_id)
        extra = conn.extra_dejson or {}
        timeout = float(extra.get("timeout", DEFAULT_TIMEOUT))
        host = (conn.host or "").strip()
        if not host:
            raise ConfigurationError(
                f"connection {self.dask_conn_id!r} has no host: set it to the scheduler's host or address"
            )
        if "://" in host:
            return host, timeout
        protocol = conn.schema or extra.get("protocol") or "tcp"
        return f"{protocol}://{host}:{conn.port or DEFAULT_PORT}", timeout

    def get_address(self) -> tuple[str, float]:
        """The scheduler address and the connect timeout (argument, else connection, else default)."""
        if self.address:
            return self.address, self.timeout or DEFAULT_TIMEOUT
        address, timeout = self._connection_settings()
        return address, self.timeout or timeout

    def get_client(self, *, set_as_default: bool = True) -> Any:
        """A ``distributed.Client`` connected to the scheduler (checked reachable first).

        :param set_as_default: make it the default client of dask collections and joblib.
        """
        from distributed import Client

        address, timeout = self.get_address()
        check_reachable(address, timeout)
        try:
            return Client(address, timeout=f"{timeout}s", set_as_default=set_as_default)
        except (OSError, TimeoutError) as e:
            raise DaskSchedulerUnreachableError(
                f"could not connect a Dask client to {address}: {e}; the port is open but no Dask "
                "scheduler answered there (check the address and that client and scheduler versions match)"
            ) from e

    def test_connection(self) -> tuple[bool, str]:
        """Whether the scheduler answers (the UI's Test button)."""
        try:
            address, timeout = self.get_address()
            check_reachable(address, timeout)
        except Exception as e:
            return False, str(e)
        return True, f"Dask scheduler reachable at {address}"
