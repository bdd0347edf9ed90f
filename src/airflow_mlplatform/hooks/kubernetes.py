"""The provider's Kubernetes hook: pods and custom objects as plain dicts, watches, retries.

``MLPlatformKubernetesHook`` extends the cncf provider's ``KubernetesHook`` (same connection type,
same connection handling: in_cluster, kube_config_path, kube_config, cluster_context...);
``MLPlatformAsyncKubernetesHook`` extends its ``AsyncKubernetesHook`` (kubernetes_asyncio) for
triggers. Both speak to any resource through :class:`Resource` (``PODS`` or a custom resource):

    hook = MLPlatformKubernetesHook(kubernetes_conn_id="kubernetes_default")
    obj = hook.create_object(PODS, "ml", manifest)
    done = hook.wait_for_object(PODS, "ml", name, lambda o: o["status"].get("phase") == "Succeeded",
                                timeout=3600, resource_version=obj["metadata"]["resourceVersion"])

Objects travel as the API's JSON (camelCase dicts), never as client models. Every call retries
429 (honouring Retry-After), 500/502/503/504 and dropped connections with bounded exponential
backoff, and fails at once with a clear error naming the object on 400/401/403/404/409/422. A 404 on
delete is success; a 404 for a whole resource type (a CRD that is not installed) raises
:class:`~airflow_mlplatform.exceptions.KubernetesResourceTypeNotFoundError`. Waits use a watch that
resumes from the last resourceVersion after a dropped connection and relists after 410 Gone.

The cncf provider's hook module is heavy (it imports kubernetes and kubernetes_asyncio), so the two
classes are built on first access of their names (PEP 562); importing this module is cheap.
"""

from __future__ import annotations

import json
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_mlplatform import __version__
from airflow_mlplatform.exceptions import (
    KubernetesApiError,
    KubernetesConflictError,
    KubernetesNotFoundError,
    KubernetesResourceTypeNotFoundError,
    KubernetesTimeoutError,
)

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import (
        AsyncKubernetesHook,
        KubernetesHook,
    )

USER_AGENT = f"airflow-mlplatform/{__version__}"
#: event loop -> connection id -> [shared async API client, number of hooks using it]
_SHARED_CLIENTS: weakref.WeakKeyDictionary[Any, dict[Any, list[Any]]] = weakref.WeakKeyDictionary()
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Also MLPlatformKubernetesHook and MLPlatformAsyncKubernetesHook, built on first access.
__all__ = ["PODS", "Resource", "RetryPolicy", "SeenLines", "split_timestamp"]


@dataclass(frozen=True)
class Resource:
    """A resource type: ``Resource("", "v1", "pods", "Pod")`` or ``Resource("kubeflow.org", "v1", "tfjobs", "TFJob")``.

    :param group: API group ("" for the core group).
    :param version: API version.
    :param plural: plural resource name.
    :param kind: the kind, for messages.
    """

    group: str
    version: str
    plural: str
    kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        """The REST path of the collection, an object or its subresource."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if sub:
            base += f"/{sub}"
        return base

    def describe(self, namespace: str | None, name: str | None = None) -> str:
        what = self.kind or self.plural
        where = f" in namespace {namespace!r}" if namespace else ""
        return f"{what} {name!r}{where}" if name else f"{self.plural}.{self.api_version}{where}"


PODS = Resource("", "v1", "pods", "Pod")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``attempts`` tries in all, exponential backoff with jitter, capped.

    :param attempts: total tries of one request (>= 1).
    :param base: first backoff in seconds.
    :param cap: longest single wait in seconds (Retry-After included).
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        backoff = min(self.cap, self.base * (2 ** (attempt - 1)))
        return backoff * (0.5 + random.random() / 2)


def _count_retry(api: str, last: str) -> None:
    """Count one retried call (``mlplatform.api.retries``); ``last``: ``HTTP 429 ...`` or a connection error."""
    from airflow_mlplatform import metrics

    metrics.api_retry(api, last.split()[1] if last.startswith("HTTP ") else "connection")


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _body(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {"message": str(text)[:500]}
    return data if isinstance(data, dict) else {}


def translate(
    status: int, body: Any, what: str, verb: str, *, type_may_be_missing: bool = True
) -> KubernetesApiError:
    """The provider error for an API answer that will not get better by retrying.

    :param status: HTTP status.
    :param body: the response body (a Kubernetes Status, usually).
    :param what: the object or collection, for the message.
    :param verb: what we tried (``create``, ``get``...).
    :param type_may_be_missing: a 404 without details may mean that the resource type is not
        served (a CRD not installed); False for subresources such as a pod's log, whose 404
        says only that the pod, its container or its log is not there.
    """
    data = _body(body)
    reason = data.get("reason") or ""
    message = data.get("message") or ""
    text = f"cannot {verb} {what}: HTTP {status} {reason}: {message}".rstrip(": ")
    if status == 404:
        if (data.get("details") or {}).get("name") or not type_may_be_missing:
            return KubernetesNotFoundError(text, status=status, reason=reason)
        return KubernetesResourceTypeNotFoundError(
            f"cannot {verb} {what}: the cluster does not serve this resource type (HTTP 404); "
            "is its CustomResourceDefinition installed, and the API group/version right?",
            status=status,
            reason=reason,
        )
    if status == 409:
        return KubernetesConflictError(text, status=status, reason=reason)
    if status in (401, 403):
        return KubernetesApiError(
            f"{text}. Check the Kubernetes connection's credentials and RBAC (the service account "
            f"needs '{verb}' on this resource)",
            status=status,
            reason=reason,
        )
    return KubernetesApiError(text, status=status, reason=reason)


# ---- log lines (a pod log read with timestamps=true) -------------------------------------------
def split_timestamp(line: str) -> tuple[str, str]:
    """``("2026-...Z", "text")`` from a log line requested with ``timestamps=true``."""
    head, sep, rest = line.partition(" ")
    if sep and head[:4].isdigit() and head.endswith("Z"):
        return head, rest
    return "", line


class SeenLines:
    """Which lines of a log were already handed on, so a re-read can skip them.

    After :meth:`resume` the server sends the output again from the start; lines up to the last
    one seen (by timestamp, and count within the same timestamp) are skipped.
    """

    def __init__(self) -> None:
        self.last_ts = ""
        self.same_ts = 0
        self._skip: tuple[str, int] | None = None

    def resume(self) -> None:
        """The stream was cut: skip what was already seen when it starts again."""
        self._skip = (self.last_ts, self.same_ts)

    def accept(self, raw: str) -> str | None:
        """The line's text (timestamp and newline removed), or None if it was seen already."""
        ts, text = split_timestamp(raw.rstrip("\n"))
        if self._skip is not None and ts:
            skip_ts, skip_n = self._skip
            if ts < skip_ts:
                return None
            if ts == skip_ts and skip_n > 0:
                self._skip = (skip_ts, skip_n - 1)
                return None
            self._skip = None
        if ts:
            self.same_ts = self.same_ts + 1 if ts == self.last_ts else 1
            self.last_ts = ts
        return text


def _labels_query(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
    query = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


def _object_rv(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class _WaitState:
    """What a wait knows: the last resourceVersion and object seen."""

    def __init__(self, resource_version: str | None) -> None:
        self.rv = resource_version
        self.obj: dict[str, Any] | None = None


def _handle_event(event: dict[str, Any], state: _WaitState, what: str) -> tuple[str, dict[str, Any] | None]:
    """Update ``state`` from one watch event: returns ``("gone"|"object"|"skip", obj)``."""
    etype = event.get("type")
    obj = event.get("object") or {}
    if etype == "ERROR":
        if obj.get("code") == 410:
            return "gone", None
        raise translate(int(obj.get("code") or 500), obj, what, "watch")
    rv = _object_rv(obj)
    if rv:
        state.rv = rv
    if etype == "BOOKMARK":
        return "skip", None
    if etype == "DELETED":
        raise KubernetesNotFoundError(f"{what} was deleted while waiting for it", status=404)
    state.obj = obj
    return "object", obj


def _wait_timeout(
    what: str, timeout: float, elapsed: float, resource: Resource, namespace: str, name: str
) -> KubernetesTimeoutError:
    """The error of a wait that ran out: says how long it really waited (a watch can overrun)."""
    waited = (
        f"within {timeout:.0f} s" if elapsed < timeout + 1 else f"in {elapsed:.0f} s (limit {timeout:.0f} s)"
    )
    return KubernetesTimeoutError(
        f"{what} did not reach the awaited state {waited}; check its events "
        f"(kubectl describe -n {namespace} {resource.plural}/{name})"
    )


def _attempt_seconds(remaining: float, longest: float) -> int:
    """The server-side timeout of one watch attempt: short enough to look again (a GET) soon."""
    return max(1, min(int(remaining) + 1, int(longest)))


class _SyncOps:
    """Synchronous operations; mixed into a subclass of the cncf KubernetesHook."""

    retry_policy: RetryPolicy = RetryPolicy()
    #: Longest single watch attempt (s); after an attempt that saw no event, one GET looks at the
    #: object, so a watch that stays silent (a lost event, a stuck proxy) costs this long at most.
    watch_attempt_seconds: float = 60.0
    api_client: Any

    def _client(self) -> Any:
        client = self.api_client
        client.user_agent = USER_AGENT
        return client

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        verb: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        stream: bool = False,
        timeout: Any = None,
        ok_404: bool = False,
        type_may_be_missing: bool = True,
    ) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        policy = self.retry_policy
        last = ""
        for attempt in range(1, policy.attempts + 1):
            retry_after = None
            try:
                return self._client().call_api(
                    path,
                    method,
                    query_params=query or [],
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                    response_types_map={200: "object", 201: "object", 202: "object"},
                    _return_http_data_only=True,
                    _preload_content=not stream,
                    _request_timeout=timeout if timeout is not None else 60,
                )
            except ApiException as e:
                if e.status == 404 and ok_404:
                    return None
                if e.status not in RETRY_STATUSES:
                    raise translate(
                        e.status, e.body, what, verb, type_may_be_missing=type_may_be_missing
                    ) from e
                retry_after = _retry_after(e.headers)
                last = f"HTTP {e.status} {e.reason}"
            except (HTTPError, OSError) as e:
                last = f"connection error: {e}"
            if attempt < policy.attempts:
                _count_retry("kubernetes", last)
                time.sleep(policy.delay(attempt, retry_after))
        raise KubernetesApiError(
            f"cannot {verb} {what}: gave up after {policy.attempts} attempts ({last}); check that the "
            "API server is reachable and not overloaded"
        )

    # ---- objects ------------------------------------------------------------------------------
    def create_object(self, resource: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object and return it as the server stored it.

        :param resource: the resource type.
        :param namespace: the namespace.
        :param body: the manifest.
        """
        name = (body.get("metadata") or {}).get("name")
        what = resource.describe(namespace, name)
        created = self._call("POST", resource.path(namespace), what=what, verb="create", body=body)
        if not isinstance(created, dict) and name:
            # Some client versions answered None for a successful create: read it back.
            created = self.get_object(resource, namespace, name)
        return created

    def create_or_adopt(
        self, resource: Resource, namespace: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create an object, or adopt the one of the same name; returns ``(object, adopted)``.

        Our names are per task try, so a 409 means the object is ours: typically a retried
        POST whose first attempt went through and whose answer was lost.

        :param resource: the resource type.
        :param namespace: the namespace.
        :param body: the manifest (with ``metadata.name``).
        """
        try:
            return self.create_object(resource, namespace, body), False
        except KubernetesConflictError:
            name = body["metadata"]["name"]
            logging.getLogger(__name__).info(
                "%s exists already; adopting it", resource.describe(namespace, name)
            )
            return self.get_object(resource, namespace, name), True

    def get_object(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        """Read one object; raises KubernetesNotFoundError if it does not exist."""
        return self._call(
            "GET", resource.path(namespace, name), what=resource.describe(namespace, name), verb="get"
        )

    def list_objects(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        """List objects; returns the List (``items`` and ``metadata.resourceVersion``)."""
        return self._call(
            "GET",
            resource.path(namespace),
            what=resource.describe(namespace),
            verb="list",
            query=_labels_query(label_selector, field_selector),
        )

    def patch_object(
        self, resource: Resource, namespace: str, name: str, patch: dict[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        """JSON-merge-patch an object (or its status subresource with ``status=True``)."""
        return self._call(
            "PATCH",
            resource.path(namespace, name, "status" if status else None),
            what=resource.describe(namespace, name),
            verb="patch",
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete_object(
        self, resource: Resource, namespace: str, name: str, *, grace_period_seconds: int | None = None
    ) -> bool:
        """Delete an object; True if it was there, False if it was already gone (404 is success)."""
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        found = self._call(
            "DELETE",
            resource.path(namespace, name),
            what=resource.describe(namespace, name),
            verb="delete",
            body=body,
            ok_404=True,
        )
        return found is not None

    def watch_objects(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        name: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> Iterator[dict[str, Any]]:
        """Watch events (``{"type", "object"}`` dicts) until the server ends the stream.

        A dropped connection raises (urllib3's ProtocolError); :meth:`wait_for_object` resumes.
        """
        from kubernetes.watch.watch import iter_resp_lines

        query: list[tuple[str, Any]] = [("watch", "true"), ("allowWatchBookmarks", "true")]
        query += _labels_query(label_selector, f"metadata.name={name}" if name else None)
        query.append(("timeoutSeconds", int(timeout_seconds)))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        resp = self._call(
            "GET",
            resource.path(namespace),
            what=resource.describe(namespace, name),
            verb="watch",
            query=query,
            stream=True,
            timeout=(30, timeout_seconds + 5),
        )
        try:
            for line in iter_resp_lines(resp):
                if line.strip():
                    yield json.loads(line)
        finally:
            resp.release_conn()

    def wait_for_object(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        resource_version: str | None = None,
        initial: dict[str, Any] | None = None,
        max_reconnects: int = 20,
    ) -> dict[str, Any]:
        """Wait through a watch until ``predicate(object)`` holds; return that object.

        :param resource: the resource type.
        :param namespace: the namespace.
        :param name: the object's name.
        :param predicate: the condition, on the object dict.
        :param timeout: deadline in seconds.
        :param resource_version: start watching after this version (no initial list then).
        :param initial: the object as last seen at ``resource_version``.
        :param max_reconnects: dropped connections tolerated in a row before giving up.
        :raises KubernetesTimeoutError: past the deadline (the message says what to check).
        :raises KubernetesNotFoundError: the object was deleted.
        """
        from urllib3.exceptions import HTTPError, ReadTimeoutError

        what = resource.describe(namespace, name)
        started = time.monotonic()
        deadline = started + timeout
        state = _WaitState(resource_version)
        if initial is not None and predicate(initial):
            return initial
        drops = 0
        while True:
            if state.rv is None:  # (re)list: after a 410 Gone, or without a starting version
                listing = self.list_objects(resource, namespace, field_selector=f"metadata.name={name}")
                items = listing.get("items") or []
                if not items:
                    raise KubernetesNotFoundError(f"{what} does not exist (any more)", status=404)
                state.rv = (listing.get("metadata") or {}).get("resourceVersion") or _object_rv(items[0])
                if predicate(items[0]):
                    return items[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _wait_timeout(what, timeout, time.monotonic() - started, resource, namespace, name)
            events = 0
            try:
                for event in self.watch_objects(
                    resource,
                    namespace,
                    name=name,
                    resource_version=state.rv,
                    timeout_seconds=_attempt_seconds(remaining, self.watch_attempt_seconds),
                ):
                    events += 1
                    kind, obj = _handle_event(event, state, what)
                    if kind == "gone":
                        state.rv = None
                        break
                    if kind == "object" and obj is not None and predicate(obj):
                        return obj
                    drops = 0
            except (HTTPError, OSError) as e:
                silent = events == 0 and isinstance(e, (ReadTimeoutError, TimeoutError))
                if not silent:
                    drops += 1
                    if drops > max_reconnects:
                        raise KubernetesApiError(
                            f"cannot watch {what}: the connection dropped {drops} times in a row ({e})"
                        ) from e
                    time.sleep(self.retry_policy.delay(drops, None))
            if events == 0 and state.rv is not None:
                # A silent attempt: look once (a cheap GET) instead of trusting the watch.
                obj = self.get_object(resource, namespace, name)
                state.rv = _object_rv(obj) or state.rv
                if predicate(obj):
                    return obj

    # ---- pods ---------------------------------------------------------------------------------
    def stream_pod_log(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        follow: bool = True,
        timestamps: bool = True,
        on_response: Callable[[Any], Any] | None = None,
    ) -> Iterator[bytes]:
        """The container's output as raw lines (with an RFC 3339 timestamp first when asked).

        :param on_response: called with the open HTTP response (another thread may ``shutdown()``
            it to end a followed stream, e.g. at a deadline).
        """
        query: list[tuple[str, Any]] = [("follow", "true" if follow else "false")]
        if timestamps:
            query.append(("timestamps", "true"))
        if container:
            query.append(("container", container))
        resp = self._call(
            "GET",
            PODS.path(namespace, name, "log"),
            what=PODS.describe(namespace, name),
            verb="read the log of",
            query=query,
            stream=True,
            timeout=(30, None) if follow else 120,
            type_may_be_missing=False,
        )
        if on_response is not None:
            on_response(resp)
        try:
            from kubernetes.watch.watch import iter_resp_lines

            for line in iter_resp_lines(resp):
                yield (line + "\n").encode() if isinstance(line, str) else line
        finally:
            resp.release_conn()


class _AsyncOps:
    """Asynchronous operations (kubernetes_asyncio); mixed into a subclass of AsyncKubernetesHook."""

    retry_policy: RetryPolicy = RetryPolicy()
    #: Longest single watch attempt (s); see the sync hook's attribute of the same name.
    watch_attempt_seconds: float = 60.0
    client_configuration: Any
    _mlp_client: Any = None
    _mlp_key: Any = None

    async def _aclient(self) -> Any:
        """The API client, shared by every hook of the same connection in this event loop.

        200 triggers in one triggerer then hold one connection pool and one SSL context (building
        an SSL context loads the CA store: tens of ms that would block the loop once per trigger).
        Connections with exec-plugin auth (short-lived tokens) get a client of their own.
        """
        if self._mlp_client is not None:
            return self._mlp_client
        import asyncio

        from airflow.providers.cncf.kubernetes.kube_client import _TimeoutAsyncK8sApiClient

        loop = asyncio.get_running_loop()
        per_loop = _SHARED_CLIENTS.setdefault(loop, {})
        conn_id = getattr(self, "conn_id", None)
        entry = per_loop.get(conn_id)
        if entry is None:
            await self._load_config()  # type: ignore[attr-defined]
            entry = per_loop.get(conn_id)  # another hook may have made one meanwhile
        if entry is None:
            client = _TimeoutAsyncK8sApiClient(configuration=self.client_configuration)
            client.user_agent = USER_AGENT
            if getattr(self, "_is_exec_auth", False):
                self._mlp_client, self._mlp_key = client, None
                return client
            entry = per_loop[conn_id] = [client, 0]
        entry[1] += 1
        self._mlp_client, self._mlp_key = entry[0], (loop, conn_id)
        return entry[0]

    async def close(self) -> None:
        """Release the HTTP session (call when done, e.g. in a trigger's ``finally``)."""
        client, key = self._mlp_client, self._mlp_key
        self._mlp_client, self._mlp_key = None, None
        if client is None:
            return
        if key is None:
            await client.close()
            return
        per_loop = _SHARED_CLIENTS.get(key[0]) or {}
        entry = per_loop.get(key[1])
        if entry is not None and entry[0] is client:
            entry[1] -= 1
            if entry[1] > 0:
                return
            per_loop.pop(key[1], None)
        await client.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        verb: str,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str | None = None,
        stream: bool = False,
        timeout: Any = None,
        ok_404: bool = False,
        type_may_be_missing: bool = True,
    ) -> Any:
        import asyncio

        import aiohttp
        from kubernetes_asyncio.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        policy = self.retry_policy
        last = ""
        for attempt in range(1, policy.attempts + 1):
            retry_after = None
            try:
                client = await self._aclient()
                result = await client.call_api(
                    path,
                    method,
                    query_params=query or [],
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                    response_types_map={200: "object", 201: "object", 202: "object"},
                    _return_http_data_only=True,
                    _preload_content=not stream,
                    _request_timeout=timeout if timeout is not None else 60,
                )
                if stream and not 200 <= result.status <= 299:
                    status, text, hdrs = result.status, await result.text(), result.headers
                    result.release()
                    raise ApiException(status=status, reason=text[:200]) from _StreamError(text, hdrs)
                return result
            except ApiException as e:
                body_text: Any = e.body
                headers_in: Any = e.headers
                if isinstance(e.__cause__, _StreamError):
                    body_text, headers_in = e.__cause__.text, e.__cause__.headers
                if e.status == 404 and ok_404:
                    return None
                if e.status not in RETRY_STATUSES:
                    raise translate(
                        e.status, body_text, what, verb, type_may_be_missing=type_may_be_missing
                    ) from e
                retry_after = _retry_after(headers_in)
                last = f"HTTP {e.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                last = f"connection error: {e!r}"
            if attempt < policy.attempts:
                _count_retry("kubernetes", last)
                await asyncio.sleep(policy.delay(attempt, retry_after))
        raise KubernetesApiError(
            f"cannot {verb} {what}: gave up after {policy.attempts} attempts ({last}); check that the "
            "API server is reachable and not overloaded"
        )

    async def create_object(self, resource: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = (body.get("metadata") or {}).get("name")
        created = await self._call(
            "POST",
            resource.path(namespace),
            what=resource.describe(namespace, name),
            verb="create",
            body=body,
        )
        if not isinstance(created, dict) and name:
            created = await self.get_object(resource, namespace, name)
        return created

    async def get_object(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        return await self._call(
            "GET", resource.path(namespace, name), what=resource.describe(namespace, name), verb="get"
        )

    async def list_objects(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        return await self._call(
            "GET",
            resource.path(namespace),
            what=resource.describe(namespace),
            verb="list",
            query=_labels_query(label_selector, field_selector),
        )

    async def patch_object(
        self, resource: Resource, namespace: str, name: str, patch: dict[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        return await self._call(
            "PATCH",
            resource.path(namespace, name, "status" if status else None),
            what=resource.describe(namespace, name),
            verb="patch",
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def delete_object(
        self, resource: Resource, namespace: str, name: str, *, grace_period_seconds: int | None = None
    ) -> bool:
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        found = await self._call(
            "DELETE",
            resource.path(namespace, name),
            what=resource.describe(namespace, name),
            verb="delete",
            body=body,
            ok_404=True,
        )
        return found is not None

    async def watch_objects(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        name: str | None = None,
        label_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        import aiohttp

        query: list[tuple[str, Any]] = [("watch", "true"), ("allowWatchBookmarks", "true")]
        query += _labels_query(label_selector, f"metadata.name={name}" if name else None)
        query.append(("timeoutSeconds", int(timeout_seconds)))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        resp = await self._call(
            "GET",
            resource.path(namespace),
            what=resource.describe(namespace, name),
            verb="watch",
            query=query,
            stream=True,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_seconds + 5),
        )
        try:
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)
        finally:
            resp.release()

    async def wait_for_object(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        resource_version: str | None = None,
        initial: dict[str, Any] | None = None,
        max_reconnects: int = 20,
    ) -> dict[str, Any]:
        """Async twin of the sync hook's ``wait_for_object`` (same arguments and errors)."""
        import asyncio

        import aiohttp

        what = resource.describe(namespace, name)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        state = _WaitState(resource_version)
        if initial is not None and predicate(initial):
            return initial
        drops = 0
        while True:
            if state.rv is None:
                listing = await self.list_objects(resource, namespace, field_selector=f"metadata.name={name}")
                items = listing.get("items") or []
                if not items:
                    raise KubernetesNotFoundError(f"{what} does not exist (any more)", status=404)
                state.rv = (listing.get("metadata") or {}).get("resourceVersion") or _object_rv(items[0])
                if predicate(items[0]):
                    return items[0]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _wait_timeout(what, timeout, loop.time() - started, resource, namespace, name)
            events = 0
            try:
                async for event in self.watch_objects(
                    resource,
                    namespace,
                    name=name,
                    resource_version=state.rv,
                    timeout_seconds=_attempt_seconds(remaining, self.watch_attempt_seconds),
                ):
                    events += 1
                    kind, obj = _handle_event(event, state, what)
                    if kind == "gone":
                        state.rv = None
                        break
                    if kind == "object" and obj is not None and predicate(obj):
                        return obj
                    drops = 0
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
                silent = events == 0 and isinstance(e, asyncio.TimeoutError)
                if not silent:
                    drops += 1
                    if drops > max_reconnects:
                        raise KubernetesApiError(
                            f"cannot watch {what}: the connection dropped {drops} times in a row ({e!r})"
                        ) from e
                    await asyncio.sleep(self.retry_policy.delay(drops, None))
            if events == 0 and state.rv is not None:
                obj = await self.get_object(resource, namespace, name)
                state.rv = _object_rv(obj) or state.rv
                if predicate(obj):
                    return obj

    async def stream_pod_log(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        follow: bool = True,
        timestamps: bool = True,
    ) -> AsyncIterator[bytes]:
        """The container's output as raw lines, followed until it ends (async twin of the sync one)."""
        import aiohttp

        query: list[tuple[str, Any]] = [("follow", "true" if follow else "false")]
        if timestamps:
            query.append(("timestamps", "true"))
        if container:
            query.append(("container", container))
        resp = await self._call(
            "GET",
            PODS.path(namespace, name, "log"),
            what=PODS.describe(namespace, name),
            verb="read the log of",
            query=query,
            stream=True,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None if follow else 120),
            type_may_be_missing=False,
        )
        try:
            pending = b""
            async for chunk in resp.content.iter_chunked(1 << 16):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line + b"\n"
            if pending:
                yield pending
        finally:
            resp.release()

    async def read_pod_log(
        self, name: str, namespace: str, *, container: str | None = None, timestamps: bool = True
    ) -> bytes:
        """The container's whole output so far (one request, no follow)."""
        query: list[tuple[str, Any]] = [("timestamps", "true" if timestamps else "false")]
        if container:
            query.append(("container", container))
        resp = await self._call(
            "GET",
            PODS.path(namespace, name, "log"),
            what=PODS.describe(namespace, name),
            verb="read the log of",
            query=query,
            stream=True,
            timeout=120,
            type_may_be_missing=False,
        )
        try:
            return await resp.read()
        finally:
            resp.release()


class _StreamError(Exception):
    def __init__(self, text: str, headers: Any) -> None:
        super().__init__(text)
        self.text = text
        self.headers = headers


def _build_sync() -> type[KubernetesHook]:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    class MLPlatformKubernetesHook(_SyncOps, KubernetesHook):
        """The cncf KubernetesHook plus generic objects, watches and retries (see the module doc).

        :param kubernetes_conn_id: the Kubernetes connection (cncf provider's connection type).
        :param retry_policy: bounded retries of each request.
        """

        hook_name = "ML Platform Kubernetes"

        def __init__(self, *args: Any, retry_policy: RetryPolicy | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if retry_policy is not None:
                self.retry_policy = retry_policy

        def default_namespace(self) -> str:
            """The connection's namespace, else ``default``."""
            return self.get_namespace() or "default"

    MLPlatformKubernetesHook.__module__ = __name__
    return MLPlatformKubernetesHook


def _build_async() -> type[AsyncKubernetesHook]:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

    class MLPlatformAsyncKubernetesHook(_AsyncOps, AsyncKubernetesHook):
        """The cncf AsyncKubernetesHook plus generic objects, watches and retries (for triggers).

        :param kubernetes_conn_id: the Kubernetes connection.
        :param retry_policy: bounded retries of each request.
        """

        def __init__(self, *args: Any, retry_policy: RetryPolicy | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if retry_policy is not None:
                self.retry_policy = retry_policy

    MLPlatformAsyncKubernetesHook.__module__ = __name__
    return MLPlatformAsyncKubernetesHook


_BUILDERS = {"MLPlatformKubernetesHook": _build_sync, "MLPlatformAsyncKubernetesHook": _build_async}


def __getattr__(name: str) -> Any:
    builder = _BUILDERS.get(name)
    if builder is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = builder()
    globals()[name] = cls
    return cls


def create_may_have_succeeded(error: Exception) -> bool:
    """Whether a failed create may still have created the object (so cleanup must delete it).

    A 4xx was refused by the API server; a 5xx or a lost connection may have gone through.

    :param error: what the create raised.
    """
    status = getattr(error, "status", None) or 500
    return not 400 <= status < 500
