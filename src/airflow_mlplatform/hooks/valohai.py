"""ValohaiHook: Valohai's REST API, synchronous (requests) and asynchronous (httpx, for triggers).

Connection type ``valohai``: host (default ``https://app.valohai.com``), the API token in
the password field, and optionally a default project in the extra field ``project``.

Every call has a timeout. 429 (honouring Retry-After), 5xx and dropped connections are
retried with capped exponential backoff; 400/401/403/404 fail at once with an error that
says what was wrong. The token never appears in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseHook

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    ValohaiAPIError,
    ValohaiAuthError,
    ValohaiConnectionError,
    ValohaiNotFoundError,
    ValohaiRequestError,
)
from airflow_mlplatform.valohai_payloads import (
    FINISHED,
    IN_PROGRESS,
    STATUS_LOG_INTERVAL,
    StatusLog,
    api_error_detail,
    is_project_id,
    poll_intervals,
    retry_delay,
)

DEFAULT_HOST = "https://app.valohai.com"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Project name -> id, per API base URL (one filtered request per name per process).
_PROJECT_CACHE: dict[tuple[str, str], str] = {}
_PROJECT_LOCK = threading.Lock()

#: Seconds the connection test (the UI's "Test" button) waits for Valohai, tried once.
TEST_TIMEOUT = 5.0

#: Seconds a connection looked up in an event loop is reused by other hooks in that loop.
SETTINGS_TTL = 60.0
_ASYNC_SETTINGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)

#: Requests in flight at once per shared async client. More wait on a semaphore, not in
#: httpcore's pool, whose request assignment costs O(waiting x connections) on every
#: change and stalled the event loop for up to 1 s with 500 triggers in one loop.
MAX_IN_FLIGHT = 32

#: One httpx.AsyncClient (and its in-flight limit) per event loop and base URL, shared by
#: every trigger in that loop.
_ASYNC_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class ValohaiSettings:
    """What a ``valohai`` connection holds.

    :param api_url: ``{host}/api/v0/``.
    :param token: the API token.
    :param project: the default project (id or name), or None.
    """

    api_url: str
    token: str
    project: str | None

    def __repr__(self) -> str:  # never show the token
        return f"ValohaiSettings(api_url={self.api_url!r}, token='***', project={self.project!r})"


def settings_from_connection(conn: Any, conn_id: str) -> ValohaiSettings:
    """Read a ``valohai`` connection.

    :param conn: the Airflow connection.
    :param conn_id: its id, for error messages.
    :raises ConfigurationError: when the token is missing.
    """
    host = (conn.host or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = f"https://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    token = conn.password or ""
    if not token:
        raise ConfigurationError(
            f"connection {conn_id!r} has no API token: put the Valohai API token in its password field"
        )
    from airflow_mlplatform.masking import mask_secret

    mask_secret(token)  # as Airflow does for connections it hands out: never in a log or record
    extra = conn.extra_dejson or {}
    project = extra.get("project") or extra.get("extra__valohai__project") or None
    return ValohaiSettings(api_url=f"{host}/api/v0/", token=token, project=project)


def _count_retry(status: Any) -> None:
    from airflow_mlplatform import metrics

    metrics.api_retry("valohai", status)


def _sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (API details often end in one already)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


class ValohaiHook(BaseHook):
    """Talks to Valohai's REST API.

    :param valohai_conn_id: the ``valohai`` connection.
    :param timeout: seconds for each HTTP call (connect and read).
    :param retries: how many times a call is retried on 429, 5xx or a dropped connection.
    :param backoff: first retry delay in seconds; doubles each retry.
    :param backoff_max: longest retry delay (also caps a server's Retry-After).
    """

    conn_name_attr = "valohai_conn_id"
    default_conn_name = "valohai_default"
    conn_type = "valohai"
    hook_name = "Valohai"

    def __init__(
        self,
        valohai_conn_id: str = default_conn_name,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        super().__init__()
        self.valohai_conn_id = valohai_conn_id
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._settings: ValohaiSettings | None = None
        self._session: Any = None

    # --- connection ---------------------------------------------------------
    @property
    def settings(self) -> ValohaiSettings:
        """The connection's settings (read once)."""
        if self._settings is None:
            conn = self.get_connection(self.valohai_conn_id)
            self._settings = settings_from_connection(conn, self.valohai_conn_id)
        return self._settings

    async def asettings(self) -> ValohaiSettings:
        """The connection's settings, read without blocking the event loop.

        Triggers in one event loop share one lookup per connection id for
        ``SETTINGS_TTL`` seconds: 500 triggers waking up together made 500 lookups
        through the secrets backends otherwise, which blocked the loop for seconds.
        """
        if self._settings is None:
            loop = asyncio.get_running_loop()
            cache = _ASYNC_SETTINGS.setdefault(loop, {})
            entry = cache.get(self.valohai_conn_id)
            if entry is None or entry[0] < time.monotonic() or (entry[1].done() and entry[1].exception()):
                entry = (time.monotonic() + SETTINGS_TTL, loop.create_task(self._lookup_settings()))
                cache[self.valohai_conn_id] = entry
            settings: ValohaiSettings = await asyncio.shield(entry[1])
            self._settings = settings
            return settings
        return self._settings

    async def _lookup_settings(self) -> ValohaiSettings:
        conn = await self.aget_connection(self.valohai_conn_id)
        return settings_from_connection(conn, self.valohai_conn_id)

    def get_conn(self) -> Any:
        """The ``requests.Session`` every synchronous call uses (auth header set)."""
        if self._session is None:
            import requests

            session = requests.Session()
            session.headers["Authorization"] = f"Token {self.settings.token}"
            session.headers["Accept"] = "application/json"
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    async def _aclient(self) -> tuple[Any, asyncio.Semaphore]:
        import httpx

        settings = await self.asettings()
        loop = asyncio.get_running_loop()
        clients = _ASYNC_CLIENTS.setdefault(loop, {})
        key = f"{settings.api_url}|{hash(settings.token)}"
        shared = clients.get(key)
        if shared is None or shared[0].is_closed:
            client = httpx.AsyncClient(
                headers={"Authorization": f"Token {settings.token}", "Accept": "application/json"},
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT),
            )
            shared = clients[key] = (client, asyncio.Semaphore(MAX_IN_FLIGHT))
        return shared

    @staticmethod
    async def aclose_all() -> None:
        """Close the shared async clients of the running event loop."""
        clients = _ASYNC_CLIENTS.pop(asyncio.get_running_loop(), {})
        for client, _limit in clients.values():
            await client.aclose()

    def test_connection(self) -> tuple[bool, str]:
        """The UI's "Test" button: one authenticated request (``GET projects/?limit=1``).

        Tried once, with a short timeout (``TEST_TIMEOUT``), not with the hook's retries: an
        unreachable host answers in seconds. The UI tests a form under a temporary connection
        id, so the messages never name the connection; they name the field to fix.
        """
        try:
            page = self.request(
                "GET",
                "projects/",
                params={"limit": 1},
                what="connection test",
                retries=0,
                timeout=min(self.timeout, TEST_TIMEOUT),
            )
        except ValohaiAuthError as e:
            return False, (
                f"Valohai at {self.settings.api_url} refused the API token (HTTP {e.status_code}: "
                f"{_sentence(e.detail)}) Put a valid token in the password field."
            )
        except ValohaiConnectionError as e:
            return False, (
                f"Valohai at {self.settings.api_url} could not be reached ({e.reason}). "
                "Check the host (and port) field and the network."
            )
        except Exception as e:
            return False, str(e)
        return True, f"Connected to {self.settings.api_url}; {page.get('count', 0)} project(s) visible"

    # --- raw calls with retries --------------------------------------------
    def _url(self, api_url: str, path: str) -> str:
        return path if path.startswith("http") else api_url + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "",
        retry_dropped: bool = True,
        retries: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call with retries; returns the parsed JSON body.

        :param method: HTTP method.
        :param path: path below ``/api/v0/`` (or a full URL from the API).
        :param params: query parameters.
        :param json: JSON body.
        :param what: what is being asked for, for error messages (e.g. "project 'x'").
        :param retry_dropped: retry after a dropped connection (False for non-idempotent calls).
        :param retries: retries for this call (default: the hook's).
        :param timeout: seconds for this call (default: the hook's).
        """
        import requests

        url = self._url(self.settings.api_url, path)
        max_retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                resp = self.get_conn().request(
                    method,
                    url,
                    params=params,
                    json=json,
                    timeout=self.timeout if timeout is None else timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as e:
                if not retry_dropped or attempt >= max_retries:
                    raise ValohaiConnectionError(
                        f"{method} {path}: Valohai at {self.settings.api_url} could not be reached "
                        f"after {_tries(attempt + 1)} ({type(e).__name__}); check the connection's host",
                        reason=type(e).__name__,
                    ) from e
                attempt += 1
                delay = retry_delay(attempt, base=self.backoff, cap=self.backoff_max)
                self.log.warning(
                    "%s %s: %s; retry %d in %.2fs", method, path, type(e).__name__, attempt, delay
                )
                _count_retry("connection")
                time.sleep(delay)
                continue
            if resp.status_code in RETRY_STATUSES and attempt < max_retries:
                attempt += 1
                delay = retry_delay(
                    attempt,
                    base=self.backoff,
                    cap=self.backoff_max,
                    retry_after=resp.headers.get("Retry-After"),
                )
                self.log.warning(
                    "%s %s: HTTP %d; retry %d in %.2fs", method, path, resp.status_code, attempt, delay
                )
                _count_retry(resp.status_code)
                time.sleep(delay)
                continue
            return self._parse(method, path, resp.status_code, resp.content, what)

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        what: str = "",
    ) -> Any:
        """Async twin of :meth:`request` (httpx, shared client per event loop)."""
        import httpx

        settings = await self.asettings()
        client, in_flight = await self._aclient()
        url = self._url(settings.api_url, path)
        attempt = 0
        while True:
            try:
                async with in_flight:
                    resp = await client.request(method, url, params=params, json=json)
            except httpx.TransportError as e:
                if attempt >= self.retries:
                    raise ValohaiConnectionError(
                        f"{method} {path}: Valohai at {settings.api_url} could not be reached after "
                        f"{_tries(attempt + 1)} ({type(e).__name__}); check the connection's host",
                        reason=type(e).__name__,
                    ) from e
                attempt += 1
                delay = retry_delay(attempt, base=self.backoff, cap=self.backoff_max)
                self.log.warning(
                    "%s %s: %s; retry %d in %.2fs", method, path, type(e).__name__, attempt, delay
                )
                _count_retry("connection")
                await asyncio.sleep(delay)
                continue
            if resp.status_code in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                delay = retry_delay(
                    attempt,
                    base=self.backoff,
                    cap=self.backoff_max,
                    retry_after=resp.headers.get("Retry-After"),
                )
                self.log.warning(
                    "%s %s: HTTP %d; retry %d in %.2fs", method, path, resp.status_code, attempt, delay
                )
                _count_retry(resp.status_code)
                await asyncio.sleep(delay)
                continue
            return self._parse(method, path, resp.status_code, resp.content, what)

    def _parse(self, method: str, path: str, status: int, content: bytes, what: str) -> Any:
        import json as _json

        try:
            body = _json.loads(content) if content else None
        except ValueError:
            body = content.decode("utf-8", "replace")
        if status < 400:
            return body
        from airflow_mlplatform.masking import redact_text

        # an error body may echo what was sent (the token, a parameter): masked before it is raised
        detail = redact_text(api_error_detail(body), self._settings.token if self._settings else None)
        where = f"{method} {path}" + (f" ({what})" if what else "")
        if status in (401, 403):
            raise ValohaiAuthError(
                f"{where}: HTTP {status} {_sentence(detail)} The API token of connection "
                f"{self.valohai_conn_id!r} is wrong, expired, or has no access to this project: put a "
                "valid token in its password field",
                status_code=status,
                detail=detail,
            )
        if status == 404:
            raise ValohaiNotFoundError(
                f"{where}: HTTP 404, not found{': ' + what if what else ''}. Check the name or id "
                "(and that the token's user can see it)",
                status_code=status,
            )
        if status == 400:
            raise ValohaiRequestError(
                f"{where}: HTTP 400, Valohai rejected the request: {detail}", status_code=400
            )
        raise ValohaiAPIError(f"{where}: HTTP {status} {detail}", status_code=status)

    # --- projects -------------------------------------------------------------
    def resolve_project(self, project: str | None) -> str:
        """A project's id from its id or ``owner/name`` (one filtered request per name, cached).

        :param project: id or name; None uses the connection's default project.
        :raises ConfigurationError: when no project is given anywhere.
        :raises ValohaiNotFoundError: when no project has that name.
        """
        project = project or self.settings.project
        if not project:
            raise ConfigurationError(
                "no Valohai project: pass project= to the operator or set 'project' in the extra "
                f"field of connection {self.valohai_conn_id!r}"
            )
        if is_project_id(project):
            return project
        key = (self.settings.api_url, project)
        with _PROJECT_LOCK:
            if key in _PROJECT_CACHE:
                return _PROJECT_CACHE[key]
        page = self.request(
            "GET", "projects/", params={"name": project, "limit": 10}, what=f"project {project!r}"
        )
        matches = [p for p in page.get("results", []) if p.get("name") == project or p.get("id") == project]
        if not matches:
            raise ValohaiNotFoundError(
                f"no Valohai project named {project!r} is visible to the token of connection "
                f"{self.valohai_conn_id!r}; check the name (owner/name) or pass the project id"
            )
        with _PROJECT_LOCK:
            _PROJECT_CACHE[key] = str(matches[0]["id"])
        return _PROJECT_CACHE[key]

    def fetch_repository(self, project_id: str) -> Any:
        """Make newly pushed commits known to Valohai (``POST projects/{id}/fetch/``).

        :param project_id: the project's id.
        """
        return self.request("POST", f"projects/{project_id}/fetch/", what="refresh repository")

    # --- executions -------------------------------------------------------------
    def create_execution(self, payload: Mapping[str, Any], *, find_tags: list[str] | None = None) -> Any:
        """Submit an execution. After a dropped connection it first looks for an execution with
        ``find_tags`` (the POST may have gone through) before submitting again.

        :param payload: from :func:`valohai_payloads.execution_payload`.
        :param find_tags: tags that identify this submission.
        """
        attempt = 0
        while True:
            try:
                return self.request(
                    "POST",
                    "executions/",
                    json=dict(payload),
                    what=f"step {payload.get('step')!r}",
                    retry_dropped=False,
                )
            except ValohaiConnectionError:
                if attempt >= self.retries:
                    raise
                attempt += 1
                time.sleep(retry_delay(attempt, base=self.backoff, cap=self.backoff_max))
                if find_tags:
                    found = self.find_executions(str(payload["project"]), find_tags)
                    if found:
                        return found[0]

    def get_execution(self, execution_id: str) -> Any:
        """An execution object by id (or ``project_id:counter``).

        :param execution_id: the execution.
        """
        return self.request(
            "GET", f"executions/{quote(execution_id, safe=':')}/", what=f"execution {execution_id}"
        )

    async def aget_execution(self, execution_id: str) -> Any:
        """Async :meth:`get_execution`."""
        return await self.arequest(
            "GET", f"executions/{quote(execution_id, safe=':')}/", what=f"execution {execution_id}"
        )

    def stop_execution(self, execution_id: str) -> None:
        """Ask Valohai to stop an execution; a finished or unknown one is not an error.

        :param execution_id: the execution.
        """
        try:
            self.request("POST", f"executions/{quote(execution_id, safe=':')}/stop/", what="stop")
        except ValohaiNotFoundError:
            self.log.info("execution %s not found; nothing to stop", execution_id)

    async def astop_execution(self, execution_id: str) -> None:
        """Async :meth:`stop_execution`."""
        try:
            await self.arequest("POST", f"executions/{quote(execution_id, safe=':')}/stop/", what="stop")
        except ValohaiNotFoundError:
            self.log.info("execution %s not found; nothing to stop", execution_id)

    def find_executions(
        self, project_id: str, tags: list[str], *, in_progress_only: bool = False
    ) -> list[Any]:
        """Executions of a project carrying every one of ``tags``, newest first.

        :param project_id: the project's id.
        :param tags: tags that must all be present.
        :param in_progress_only: only executions that have not finished.
        """
        params: dict[str, Any] = {
            "project": project_id,
            "tags": ",".join(tags),
            "ordering": "-counter",
            "limit": 50,
        }
        if in_progress_only:  # repeated status= parameters, as valohai-cli's `execution list --status` sends
            params["status"] = list(IN_PROGRESS)
        page = self.request("GET", "executions/", params=params, what="find executions by tag")
        wanted = set(tags)
        found = [e for e in page.get("results", []) if wanted <= set(e.get("tags") or [])]
        if in_progress_only:
            found = [e for e in found if e.get("status") in IN_PROGRESS]
        return sorted(found, key=lambda e: -int(e.get("counter") or 0))

    def wait_for_execution(
        self,
        execution_id: str,
        *,
        poll_interval: float = 5.0,
        max_poll_interval: float = 90.0,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        status_log_interval: float = STATUS_LOG_INTERVAL,
    ) -> Any:
        """Poll until the execution finishes (backing off from ``poll_interval`` to ``max_poll_interval``).

        Logs the status at INFO when it changes and every ``status_log_interval`` seconds otherwise.

        :param execution_id: the execution.
        :param poll_interval: first wait, seconds.
        :param max_poll_interval: longest wait, seconds.
        :param timeout: give up after this many seconds (None: never); raises TimeoutError.
        :param sleep: the sleep function.
        :param status_log_interval: longest time without a status line, seconds.
        :return: the finished execution object.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        progress = StatusLog(
            execution_id=execution_id, interval=status_log_interval, started=time.monotonic()
        )
        for interval in poll_intervals(poll_interval, max_poll_interval):
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"execution {execution_id} did not finish within {timeout}s")
                interval = min(interval, left)
            sleep(interval)
            execution = self.get_execution(execution_id)
            line = progress.line(execution, time.monotonic())
            if line:
                self.log.info(line)
            if execution.get("status") in FINISHED:
                return execution
        raise AssertionError("unreachable")  # pragma: no cover

    # --- results ---------------------------------------------------------------
    def list_outputs(self, execution_id: str) -> list[Any]:
        """Every output datum of an execution (follows pagination).

        :param execution_id: the execution's id.
        """
        datums: list[Any] = []
        offset = 0
        while True:
            page = self.request(
                "GET",
                "data/",
                params={"output_execution": execution_id, "limit": 500, "offset": offset},
                what="outputs",
            )
            results = page.get("results", [])
            datums.extend(results)
            if not page.get("next") or not results:
                return datums
            offset += len(results)

    def get_metadata(self, execution_id: str) -> list[dict[str, Any]]:
        """The metrics series (one row per JSON line the execution printed).

        :param execution_id: the execution's id.
        """
        body = self.request("GET", f"executions/{execution_id}/metadata/", what="metadata")
        rows = body.get("series", body.get("results", [])) if isinstance(body, dict) else body
        return [r for r in rows or [] if isinstance(r, dict)]

    def get_log_tail(self, execution_id: str, lines: int = 20) -> list[str]:
        """The last ``lines`` log lines (stdout and stderr) of an execution; [] if unavailable.

        :param execution_id: the execution's id.
        :param lines: how many lines.
        """
        try:
            body = self.request(
                "GET", f"executions/{execution_id}/events/", params={"limit": max(lines * 2, 50)}
            )
        except Exception as e:  # the log is a courtesy in an error message
            self.log.warning("could not read the log of execution %s: %s", execution_id, e)
            return []
        messages = [
            str(ev.get("message", "")).rstrip("\n")
            for ev in (body or {}).get("events", [])
            if ev.get("stream") in ("stdout", "stderr")
        ]
        text = "\n".join(messages).splitlines()
        return text[-lines:]

    def download_url(self, datum_id: str) -> str:
        """A signed URL from which a datum can be downloaded (no token needed there).

        :param datum_id: the datum's id (with or without ``datum://``).
        """
        datum_id = datum_id.removeprefix("datum://")
        return str(self.request("GET", f"data/{datum_id}/download/", what=f"datum {datum_id}")["url"])
