"""DaskHook: an existing Dask scheduler, or a dask-gateway server, named by a ``dask`` connection.

Scheduler: host (``10.0.0.5`` or a full address ``tcp://10.0.0.5:8786``), port (default 8786),
schema (protocol, default ``tcp``); extra ``{"timeout": 10}`` (seconds to connect). Example::

    AIRFLOW_CONN_DASK_DEFAULT='{"conn_type": "dask", "host": "dask-scheduler.ml", "port": 8786}'

dask-gateway: extra ``{"gateway": true}`` (or a host ``http(s)://...`` / ``gateway://...``, which
always means a gateway); host and port of the gateway's HTTP API (default port 8000, schema
``http`` or ``https``); password: the API token (JupyterHub) or, with a login, the basic-auth
password; extra ``auth`` (``jupyterhub``, ``basic``, ``kerberos``, ``none``; default: from
login/password), ``proxy_address`` (the scheduler proxy, if not the API's host:port),
``cluster_name`` (connect to that existing gateway cluster; else each task creates one),
``cluster_options`` (options of a new cluster), ``n_workers`` (workers of a new cluster).
The password is only handed to dask-gateway's auth object, never logged or put in an error.

Reachability is checked with a plain TCP connect first (``timeout`` seconds at most), so an
unreachable scheduler or gateway is a clear error within seconds, not a long client retry loop.
"""

from __future__ import annotations

import socket
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_mlplatform.exceptions import ConfigurationError, DaskSchedulerUnreachableError

DEFAULT_PORT = 8786
DEFAULT_TIMEOUT = 10.0
#: Protocols whose address is host:port and can be checked with a TCP connect.
TCP_PROTOCOLS = ("tcp", "tls", "ws", "wss")
#: Address schemes that name a dask-gateway server (its HTTP API) rather than a scheduler.
GATEWAY_SCHEMES = ("gateway", "http", "https")
DEFAULT_GATEWAY_PORT = 8000
GATEWAY_AUTHS = ("jupyterhub", "basic", "kerberos", "none")
#: Workers of a gateway cluster a task creates when neither n_workers nor the connection says.
DEFAULT_GATEWAY_WORKERS = 2


def is_gateway_address(address: str) -> bool:
    """Whether ``address`` names a dask-gateway server (``gateway://``, ``http://``, ``https://``).

    :param address: a scheduler or gateway address.
    """
    return address.strip().split("://", 1)[0].lower() in GATEWAY_SCHEMES if "://" in address else False


def gateway_url(address: str) -> str:
    """The HTTP URL of a gateway address (``gateway://h:p`` is ``http://h:p``).

    :param address: ``gateway://``, ``http://`` or ``https://`` address.
    """
    text = address.strip().rstrip("/")
    scheme, rest = text.split("://", 1)
    return f"{'http' if scheme.lower() == 'gateway' else scheme.lower()}://{rest}"


@dataclass(frozen=True)
class GatewaySettings:
    """Where and how to reach a dask-gateway server (the secret is kept out of ``repr``).

    :param address: the gateway's HTTP API, ``http(s)://host:port``.
    :param auth: ``jupyterhub``, ``basic``, ``kerberos`` or ``none``.
    :param username: basic-auth user.
    :param secret: API token or password (from the connection's password).
    :param proxy_address: the scheduler proxy address, if not the API's host:port.
    :param cluster_name: an existing gateway cluster to connect to (None: create one).
    :param cluster_options: options of a cluster the task creates.
    :param n_workers: workers of a cluster the task creates.
    :param timeout: seconds to reach the gateway.
    """

    address: str
    auth: str = "none"
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    proxy_address: str | None = None
    cluster_name: str | None = None
    cluster_options: dict[str, Any] = field(default_factory=dict)
    n_workers: int | None = None
    timeout: float = DEFAULT_TIMEOUT


def _tcp_address(url: str) -> str:
    """``tcp://host:port`` of an HTTP(S) URL, for the reachability check."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigurationError(f"dask-gateway address {url!r} has no host; write it as http://HOST:8000")
    try:
        port = parts.port or {"https": 443}.get(parts.scheme, 80)
    except ValueError as e:
        raise ConfigurationError(f"dask-gateway address {url!r} has a bad port: {e}") from e
    return f"tcp://{parts.hostname}:{port}"


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


def check_reachable(address: str, timeout: float = DEFAULT_TIMEOUT, *, what: str = "Dask scheduler") -> None:
    """Raise DaskSchedulerUnreachableError unless a TCP connection to the scheduler opens in time.

    :param address: ``tcp://host:port`` (other protocols are not checked).
    :param timeout: seconds to try.
    :param what: what should answer there, for the message.
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
        f"no {what} answered at {address} within {timeout:g} s ({last}); check that the "
        f"{what} is running, the address and port (scheduler default 8786, gateway 8000) of the "
        "connection or the address argument, and that the Airflow worker can reach that network"
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
        """Connection form: host/port of the scheduler or gateway, schema as protocol."""
        return {
            "hidden_fields": [],
            "relabeling": {
                "host": "Scheduler or gateway host (or full address)",
                "schema": "Protocol (tcp, tls; gateway: http, https)",
                "login": "Gateway user (basic auth only)",
                "password": "Gateway API token or password",
            },
            "placeholders": {
                "host": "dask-scheduler.ml.svc, tcp://10.0.0.5:8786 or https://gateway.ml",
                "port": "8786 (gateway: 8000)",
                "schema": "tcp",
                "extra": '{"timeout": 10} or {"gateway": true, "cluster_name": null, "n_workers": 2}',
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
        self._conn: Any = None

    def _connection(self) -> Any:
        if self.dask_conn_id is None:
            raise ConfigurationError(
                "no Dask scheduler given: pass address='tcp://HOST:8786' or dask_conn_id= naming a "
                "connection of type 'dask'"
            )
        if self._conn is None:
            self._conn = self.get_connection(self.dask_conn_id)
        return self._conn

    def is_gateway(self) -> bool:
        """Whether this hook points at a dask-gateway server rather than a scheduler."""
        if self.address:
            return is_gateway_address(self.address)
        conn = self._connection()
        extra = conn.extra_dejson or {}
        return bool(extra.get("gateway")) or is_gateway_address(conn.host or "")

    def _connection_settings(self) -> tuple[str, float]:
        conn = self._connection()
        extra = conn.extra_dejson or {}
        timeout = float(extra.get("timeout", DEFAULT_TIMEOUT))
        host = (conn.host or "").strip()
        if not host:
            raise ConfigurationError(
                f"connection {self.dask_conn_id!r} has no host: set it to the scheduler's (or gateway's) "
                "host or address"
            )
        gateway = bool(extra.get("gateway")) or is_gateway_address(host)
        if "://" in host:
            return (gateway_url(host) if gateway else host), timeout
        if gateway:
            scheme = (conn.schema or "http").lower()
            if scheme not in ("http", "https"):
                raise ConfigurationError(
                    f"connection {self.dask_conn_id!r}: a dask-gateway's schema is http or https, not {scheme!r}"
                )
            return f"{scheme}://{host}:{conn.port or DEFAULT_GATEWAY_PORT}", timeout
        protocol = conn.schema or extra.get("protocol") or "tcp"
        return f"{protocol}://{host}:{conn.port or DEFAULT_PORT}", timeout

    def get_address(self) -> tuple[str, float]:
        """The scheduler (or gateway HTTP) address and the connect timeout.

        The address argument wins over the connection; the timeout argument over the
        connection's, else the default.
        """
        if self.address:
            address = gateway_url(self.address) if is_gateway_address(self.address) else self.address
            return address, self.timeout or DEFAULT_TIMEOUT
        address, timeout = self._connection_settings()
        return address, self.timeout or timeout

    def gateway_settings(self) -> GatewaySettings:
        """How to reach the dask-gateway server this hook points at (connection, else address)."""
        address, timeout = self.get_address()
        if self.dask_conn_id is None:
            return GatewaySettings(address=address, timeout=timeout)
        conn = self._connection()
        extra = conn.extra_dejson or {}
        secret = conn.password or None
        auth = str(
            extra.get("auth") or ("basic" if conn.login and secret else "jupyterhub" if secret else "none")
        )
        if auth not in GATEWAY_AUTHS:
            raise ConfigurationError(
                f"connection {self.dask_conn_id!r}: gateway auth {auth!r} is unknown; use one of "
                f"{', '.join(GATEWAY_AUTHS)}"
            )
        if auth == "jupyterhub" and not secret:
            raise ConfigurationError(
                f"connection {self.dask_conn_id!r}: gateway auth 'jupyterhub' needs the API token in the "
                "connection's password"
            )
        options = extra.get("cluster_options") or {}
        n_workers = extra.get("n_workers")
        if not isinstance(options, dict) or (
            n_workers is not None
            and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1)
        ):
            raise ConfigurationError(
                f"connection {self.dask_conn_id!r}: extra cluster_options must be an object and n_workers an "
                "integer >= 1"
            )
        return GatewaySettings(
            address=address,
            auth=auth,
            username=conn.login or None,
            secret=secret,
            proxy_address=extra.get("proxy_address") or None,
            cluster_name=extra.get("cluster_name") or None,
            cluster_options=dict(options),
            n_workers=n_workers,
            timeout=timeout,
        )

    def get_gateway(self, settings: GatewaySettings | None = None) -> Any:
        """A ``dask_gateway.Gateway`` client of the gateway server (close it when done).

        :param settings: from :meth:`gateway_settings` (default: read them now).
        """
        settings = settings or self.gateway_settings()
        try:
            import dask_gateway
        except ImportError as e:
            raise ConfigurationError(
                "the Dask connection points at a dask-gateway server but the dask-gateway package is not "
                "installed in the Airflow worker: pip install 'airflow-provider-mlplatform[dask]' (or dask-gateway)"
            ) from e
        auth: Any
        if settings.auth == "basic":
            auth = dask_gateway.BasicAuth(username=settings.username, password=settings.secret)
        elif settings.auth == "jupyterhub":
            auth = dask_gateway.JupyterHubAuth(api_token=settings.secret)
        elif settings.auth == "kerberos":
            auth = dask_gateway.KerberosAuth()
        else:
            auth = None
        return dask_gateway.Gateway(settings.address, proxy_address=settings.proxy_address, auth=auth)

    def check_gateway(self, settings: GatewaySettings | None = None) -> GatewaySettings:
        """Raise a clear error unless the gateway answers, accepts our credentials and has the named cluster.

        :param settings: from :meth:`gateway_settings` (default: read them now).
        """
        settings = settings or self.gateway_settings()
        check_reachable(_tcp_address(settings.address), settings.timeout, what="dask-gateway server")
        gateway = self.get_gateway(settings)
        try:
            names = [c.name for c in gateway.list_clusters()]
        except Exception as e:
            raise DaskSchedulerUnreachableError(
                f"the dask-gateway server at {settings.address} did not list clusters ({type(e).__name__}: "
                f"{_scrub(str(e), settings.secret)}); check the address, that it is a dask-gateway API, and "
                f"the credentials (auth {settings.auth!r})"
            ) from e
        finally:
            close_gateway_client(gateway)
        if settings.cluster_name and settings.cluster_name not in names:
            raise ConfigurationError(
                f"the dask-gateway server at {settings.address} has no running cluster named "
                f"{settings.cluster_name!r} for this user; fix cluster_name in the connection's extra, or "
                "remove it to create a cluster per task"
            )
        return settings

    def check(self) -> None:
        """Raise a clear error unless the scheduler (or gateway) answers; nothing is created."""
        if self.is_gateway():
            self.check_gateway()
        else:
            check_reachable(*self.get_address())

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
        """Whether the scheduler (or gateway) answers (the UI's Test button)."""
        try:
            self.check()
            address, _timeout = self.get_address()
        except Exception as e:
            return False, str(e)
        return (
            True,
            f"{'dask-gateway server' if self.is_gateway() else 'Dask scheduler'} reachable at {address}",
        )


def close_gateway_client(gateway: Any) -> None:
    """Close a ``dask_gateway.Gateway`` client once, for good.

    dask-gateway's ``Gateway.__del__`` closes again, and with recent ``distributed`` that raises
    ("Accessing the loop property while the loop is not running") as an ignored exception on
    stderr; dropping the loop runner after the close makes ``__del__`` skip it.

    :param gateway: a ``Gateway`` (or a ``GatewayCluster``'s ``gateway``).
    """
    if gateway is None:
        return
    with suppress(Exception):
        gateway.close()
    with suppress(AttributeError):
        del gateway._loop_runner


def _scrub(text: str, secret: str | None) -> str:
    """``text`` with the secret masked (error messages must never carry a token)."""
    return text.replace(secret, "***") if secret else text
