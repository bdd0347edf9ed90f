"""A Kubernetes API server emulator on 127.0.0.1, built on kmock's KubernetesEmulator.

kmock gives the HTTP server, request parsing, the request log and API discovery. This subclass
adds what a real API server does and kmock does not: uid, resourceVersion, creationTimestamp and
``status`` on create; ``metadata.generation`` (+1 on a spec change); optimistic concurrency (a write
carrying a stale ``metadata.resourceVersion`` is a 409 Conflict); label and field selectors; a status
subresource; JSON merge patches (``null`` removes a key); watches that resume from a resourceVersion
and answer 410 Gone once it is compacted; and, for fault tests, injected errors (bursts of 429 with
Retry-After, 503...), dropped watches and 410s mid-stream.

Controllers (the fake kubelet, or a fake TFJob/DaskJob operator) plug in without touching this
file::

    class MyController:
        resources = ("kubeflow.org/v1/tfjobs",)         # event filter
        subresources = {}                               # e.g. {("v1/pods", "log"): handler}

        async def on_event(self, emulator, event_type, obj):   # ADDED/MODIFIED/DELETED, a copy
            await emulator.set_status("kubeflow.org/v1/tfjobs", ns, name, {...})

    bed.emulator.add_controller(MyController())          # or Emulator(controllers=[...])

``on_event`` runs in the emulator's event loop as its own task; controllers change objects with
:meth:`Emulator.set_status`, :meth:`Emulator.patch_object`, :meth:`Emulator.add_object` (e.g. a
TFJob's worker pods, which the fake kubelet then runs) and :meth:`Emulator.remove_object` (no HTTP,
so they never show in the request log) and may serve subresources (``handler(emulator, request) -> aiohttp response``).
Use :class:`EmulatorThread` to run it in a background thread for synchronous code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import re
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp.web
import kmock

KUBELET_USER_AGENT = "fake-kubelet"


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Kind:
    """A declared resource type."""

    kind: str
    namespaced: bool = True
    status_subresource: bool = True


@dataclass
class Fault:
    """An injected error answered instead of the real response, ``count`` times."""

    status: int
    count: int = 1
    retry_after: float | None = None
    match: Callable[[Any], bool] | None = None
    hits: int = 0


@dataclass
class _Watch:
    resource: str
    namespace: str | None
    selector: list[tuple[str, str, set[str]]]
    name: str | None
    drop: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False


BUILTIN_KINDS = {
    "v1/pods": Kind("Pod"),
    "v1/events": Kind("Event", status_subresource=False),
    "v1/configmaps": Kind("ConfigMap", status_subresource=False),
    "v1/secrets": Kind("Secret", status_subresource=False),
}


def resource_key(resource: Any) -> str:
    """``v1/pods`` or ``kubeflow.org/v1/tfjobs`` from a kmock resource."""
    return "/".join(p for p in (resource.group, resource.version, resource.plural) if p)


def parse_selector(text: str | None) -> list[tuple[str, str, set[str]]]:
    """Parse a label selector: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``."""
    if not text:
        return []
    terms = re.findall(r"[^,(]+(?:\([^)]*\))?", text)
    out: list[tuple[str, str, set[str]]] = []
    for raw in terms:
        term = raw.strip()
        if not term:
            continue
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            out.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}))
        elif "!=" in term:
            k, v = term.split("!=", 1)
            out.append((k.strip(), "!=", {v.strip()}))
        elif "=" in term:
            k, v = re.split(r"==?", term, maxsplit=1)
            out.append((k.strip(), "=", {v.strip()}))
        elif term.startswith("!"):
            out.append((term[1:].strip(), "!", set()))
        else:
            out.append((term, "exists", set()))
    return out


def selector_matches(selector: list[tuple[str, str, set[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in selector:
        has = key in labels
        value = labels.get(key)
        if (
            (op in ("=", "in") and value not in values)
            or (op in ("!=", "notin") and has and value in values)
            or (op == "exists" and not has)
            or (op == "!" and has)
        ):
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (None deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def next_generation(old: dict[str, Any], new: dict[str, Any], kind: Kind) -> int:
    """``metadata.generation`` after a write of the object (not of its status subresource).

    As the API server: +1 when the spec changed (with no status subresource, anything but metadata);
    status and metadata-only changes (labels, annotations) keep it.
    """
    generation = int((old.get("metadata") or {}).get("generation") or 1)
    if kind.status_subresource:
        changed = old.get("spec") != new.get("spec")
    else:
        changed = {k: v for k, v in old.items() if k != "metadata"} != {
            k: v for k, v in new.items() if k != "metadata"
        }
    return generation + 1 if changed else generation


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details or {},
    }


class Emulator(kmock.KubernetesEmulator):
    """The emulator. Declare custom resource types with :meth:`declare` before using them.

    :param controllers: objects with ``resources``, ``on_event`` (and optional ``subresources``).
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.kinds: dict[str, Kind] = {}
        self.store: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.rv = 0
        self.compacted_rv = 0
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.faults: list[Fault] = []
        self.controllers: list[Any] = []
        self.subresource_handlers: dict[tuple[str, str], Callable[..., Awaitable[Any]]] = {}
        self.watches: list[_Watch] = []
        #: While True, watches are accepted and then silent (see ``_watch``).
        self.mute_watches = False
        self._changed: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        for key, kind in BUILTIN_KINDS.items():
            self.declare(key, kind.kind, status_subresource=kind.status_subresource)

    # ---- set-up -------------------------------------------------------------------------------
    def declare(
        self, key: str, kind: str, *, namespaced: bool = True, status_subresource: bool = True
    ) -> None:
        """Declare a resource type, e.g. ``declare("kubeflow.org/v1/tfjobs", "TFJob")``."""
        self.kinds[key] = Kind(kind, namespaced, status_subresource)
        self.resources[key] = {}

    def undeclare(self, key: str) -> None:
        """Forget a resource type (as if its CRD were not installed)."""
        self.kinds.pop(key, None)
        with contextlib.suppress(KeyError):
            del self.resources[key]

    def add_controller(self, controller: Any) -> None:
        """Register a controller (see the module docstring)."""
        self.controllers.append(controller)
        for (res, sub), handler in getattr(controller, "subresources", {}).items():
            self.subresource_handlers[(res, sub)] = handler

    def inject(
        self,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        match: Callable[[Any], bool] | None = None,
    ) -> Fault:
        """Answer the next ``count`` matching API requests with ``status`` (and Retry-After)."""
        fault = Fault(status, count, retry_after, match)
        self.faults.append(fault)
        return fault

    # ---- request log --------------------------------------------------------------------------
    @property
    def api_requests(self) -> list[Any]:
        """Every request that reached the server (kmock's log)."""
        return list(self._requests)

    def count_by_user_agent(self) -> Counter[str]:
        return Counter(r.headers.get("User-Agent", "") for r in self._requests)

    def requests_matching(self, *, user_agent: str | None = None, since: int = 0) -> list[Any]:
        """Requests from index ``since`` on, optionally from one User-Agent (prefix match)."""
        return [
            r
            for r in self._requests[since:]
            if user_agent is None or r.headers.get("User-Agent", "").startswith(user_agent)
        ]

    # ---- object access for controllers and tests (run in the loop) -----------------------------
    def objects(self, key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.store.items()
            if k == key and (namespace is None or ns == namespace)
        ]

    def get_object(self, key: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        obj = self.store.get((key, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def set_status(self, key: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into an object's status (what a controller or kubelet does)."""
        obj = self.store.get((key, namespace, name))
        if obj is None:
            return
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        await self._emit(key, "MODIFIED", obj)

    async def patch_object(self, key: str, namespace: str | None, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch an object as a PATCH would (a spec change bumps its generation), without HTTP."""
        obj = self.store.get((key, namespace, name))
        if obj is None:
            return
        new = merge_patch(obj, patch)
        new.setdefault("metadata", {})["generation"] = next_generation(obj, new, self.kinds[key])
        obj.clear()
        obj.update(new)
        await self._emit(key, "MODIFIED", obj)

    async def add_object(self, key: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object as the API would (uid, resourceVersion, status...), without HTTP.

        For controllers, e.g. a fake TFJob operator creating the job's pods (the kubelet then
        runs them). Raises KeyError if the object exists.
        """
        body = copy.deepcopy(body)
        meta = body.setdefault("metadata", {})
        if (key, namespace, meta.get("name")) in self.store:
            raise KeyError(f"{key} {namespace}/{meta.get('name')} already exists")
        response = await self._create(key, self.kinds[key], namespace, body)
        if response.status != 201:
            raise ValueError(response.text)
        return copy.deepcopy(self.store[(key, namespace, meta["name"])])

    async def remove_object(self, key: str, namespace: str | None, name: str) -> bool:
        """Delete an object without HTTP (False if it was not there)."""
        if (key, namespace, name) not in self.store:
            return False
        await self._delete(key, self.kinds[key], namespace, name)
        return True

    async def expire(self, *, close_watches: bool = True) -> None:
        """Compact history: resuming a watch from an older resourceVersion answers 410 Gone.

        :param close_watches: also send open watches an ERROR 410 event and end them.
        """
        self.compacted_rv = self.rv
        self.rv += 1
        self.history.clear()
        if close_watches:
            for w in self.watches:
                w.gone = True
                w.drop.set()

    async def drop_watches(self) -> int:
        """Cut every open watch connection (as a load balancer or API server restart would)."""
        for w in self.watches:
            w.drop.set()
        return len(self.watches)

    # ---- internals ----------------------------------------------------------------------------
    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _emit(self, key: str, event_type: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        snapshot = copy.deepcopy(obj)
        self.history.append((self.rv, key, {"type": event_type, "object": snapshot}))
        if len(self.history) > 5000:
            self.compacted_rv = self.history[1000][0]
            del self.history[:1000]
        cond = self._cond()
        async with cond:
            cond.notify_all()
        for controller in self.controllers:
            if key in getattr(controller, "resources", ()):
                task = asyncio.create_task(controller.on_event(self, event_type, copy.deepcopy(snapshot)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _error(self, code: int, reason: str, message: str, details: dict | None = None, headers=None):
        return aiohttp.web.json_response(
            status_body(code, reason, message, details), status=code, headers=headers
        )

    def _take_fault(self, request: Any) -> Fault | None:
        for fault in self.faults:
            if fault.hits < fault.count and (fault.match is None or fault.match(request)):
                fault.hits += 1
                return fault
        return None

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        if request.resource is None or not request.resource.plural:
            return await super()._handle(request)  # discovery: /api, /apis, /version
        fault = self._take_fault(request)
        if fault is not None:
            headers = (
                {"Retry-After": str(math.ceil(fault.retry_after))} if fault.retry_after is not None else None
            )
            reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
            return self._error(
                fault.status, reasons.get(fault.status, "Injected"), "injected fault", headers=headers
            )
        key = resource_key(request.resource)
        kind = self.kinds.get(key)
        if kind is None:
            return self._error(404, "NotFound", "the server could not find the requested resource")
        ns = request.namespace
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        sub = request.subresource
        params = request.params
        if sub and sub != "status":
            handler = self.subresource_handlers.get((key, sub))
            if handler is None:
                return self._error(404, "NotFound", f"subresource {sub} is not served")
            return await handler(self, request)
        if method == "GET" and str(params.get("watch", "")).lower() in ("true", "1"):
            return await self._watch(request, key, ns)
        if request.name is None:
            if method == "GET":
                return self._list(key, ns, params)
            if method == "POST":
                return await self._create(key, kind, ns, request.data)
            if method == "DELETE":
                sel = parse_selector(params.get("labelSelector"))
                for (k, ons, name), obj in list(self.store.items()):
                    labels = obj["metadata"].get("labels") or {}
                    if k == key and (ns is None or ons == ns) and selector_matches(sel, labels):
                        await self._delete(key, kind, ons, name)
                return aiohttp.web.json_response({"kind": "Status", "status": "Success"})
            return self._error(405, "MethodNotAllowed", f"{method} not allowed on a collection")
        obj = self.store.get((key, ns, request.name))
        if obj is None:
            return self._not_found(kind, key, request.name, method)
        if method == "GET":
            return aiohttp.web.json_response(obj)
        if method in ("PATCH", "PUT"):
            body = request.data
            if isinstance(body, list):
                return self._error(415, "UnsupportedMediaType", "JSON patch is not emulated; use merge patch")
            if not isinstance(body, dict):
                return self._error(400, "BadRequest", "the body must be a JSON object")
            wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
            if wanted_rv is not None and str(wanted_rv) != obj["metadata"].get("resourceVersion"):
                return self._conflict(key, request.name)
            if sub == "status":
                new = dict(obj)
                new["status"] = (
                    merge_patch(obj.get("status") or {}, body.get("status") or {})
                    if method == "PATCH"
                    else body.get("status")
                )
            else:
                new = merge_patch(obj, body) if method == "PATCH" else copy.deepcopy(body)
                if kind.status_subresource:
                    new["status"] = obj.get("status")
                for f in ("uid", "creationTimestamp", "name", "namespace"):
                    new.setdefault("metadata", {})[f] = obj["metadata"].get(f)
                new["metadata"]["generation"] = next_generation(obj, new, kind)
            obj.clear()
            obj.update(new)
            await self._emit(key, "MODIFIED", obj)
            return aiohttp.web.json_response(obj)
        if method == "DELETE":
            gone = await self._delete(key, kind, ns, request.name)
            return aiohttp.web.json_response(gone)
        return self._error(405, "MethodNotAllowed", f"{method} not allowed")

    def _conflict(self, key: str, name: str):
        """409 Conflict of a write whose metadata.resourceVersion is not the stored one."""
        plural = key.rsplit("/", 1)[-1]
        group = key.split("/")[0] if key.count("/") == 2 else ""
        return self._error(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {plural}{"." + group if group else ""} "{name}": the object '
            "has been modified; please apply your changes to the latest version and try again",
            {"name": name, "group": group, "kind": plural},
        )

    def _not_found(self, kind: Kind, key: str, name: str, method: str):
        plural = key.rsplit("/", 1)[-1]
        group = key.split("/")[0] if key.count("/") == 2 else ""
        return self._error(
            404,
            "NotFound",
            f'{plural}{"." + group if group else ""} "{name}" not found',
            {"name": name, "group": group, "kind": plural},
        )

    def _list(self, key: str, ns: str | None, params: dict[str, str]):
        sel = parse_selector(params.get("labelSelector"))
        fields = dict(
            term.split("=", 1) for term in (params.get("fieldSelector") or "").split(",") if "=" in term
        )
        items = []
        for (k, ons, name), obj in sorted(self.store.items(), key=lambda kv: kv[0][2]):
            if k != key or (ns is not None and ons != ns):
                continue
            if not selector_matches(sel, obj["metadata"].get("labels") or {}):
                continue
            if "metadata.name" in fields and fields["metadata.name"] != name:
                continue
            items.append(obj)
        kind = self.kinds[key].kind
        return aiohttp.web.json_response(
            {
                "apiVersion": key.rsplit("/", 1)[0],
                "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(self.rv)},
                "items": items,
            }
        )

    async def _create(self, key: str, kind: Kind, ns: str | None, body: Any):
        if not isinstance(body, dict):
            return self._error(400, "BadRequest", "the body must be a JSON object")
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["name"] = name
        if not name:
            return self._error(422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value")
        if ns is not None:
            meta["namespace"] = ns
        if (key, ns, name) in self.store:
            return self._error(
                409,
                "AlreadyExists",
                f'{key.rsplit("/", 1)[-1]} "{name}" already exists',
                {"name": name, "kind": key.rsplit("/", 1)[-1]},
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        if kind.status_subresource:
            body["status"] = {"phase": "Pending"} if kind.kind == "Pod" else {}
        body.setdefault("apiVersion", key.rsplit("/", 1)[0])
        body.setdefault("kind", kind.kind)
        self.store[(key, ns, name)] = body
        await self._emit(key, "ADDED", body)
        return aiohttp.web.json_response(body, status=201)

    async def _delete(self, key: str, kind: Kind, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.store.pop((key, ns, name))
        obj["metadata"]["deletionTimestamp"] = now_iso()
        await self._emit(key, "DELETED", obj)
        return obj

    async def _watch(self, request: Any, key: str, ns: str | None) -> aiohttp.web.StreamResponse:
        params = request.params
        since_text = params.get("resourceVersion") or ""
        since = int(since_text) if since_text.isdigit() and since_text != "0" else None
        fields = dict(
            term.split("=", 1) for term in (params.get("fieldSelector") or "").split(",") if "=" in term
        )
        w = _Watch(
            key, ns, parse_selector(params.get("labelSelector")), request.name or fields.get("metadata.name")
        )
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        resp = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request._raw_request)
        if self.mute_watches:
            # A watch that is accepted and then says nothing, not even at its timeoutSeconds (a
            # stuck proxy, a lost event): the client must notice the object by other means.
            transport = request._raw_request.transport
            while self.mute_watches and transport is not None and not transport.is_closing():
                await asyncio.sleep(0.2)
            return resp

        async def send(event: dict[str, Any]) -> None:
            await resp.write(json.dumps(event).encode() + b"\n")

        if since is not None and since < self.compacted_rv:
            await send(
                {
                    "type": "ERROR",
                    "object": status_body(
                        410, "Expired", f"too old resource version: {since} ({self.compacted_rv})"
                    ),
                }
            )
            await resp.write_eof()
            return resp
        if since is None:
            for (k, ons, name), obj in list(self.store.items()):
                if self._watch_matches(w, k, ons, name, obj):
                    await send({"type": "ADDED", "object": obj})
            cursor = self.rv
        else:
            cursor = since
        self.watches.append(w)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        transport = request._raw_request.transport
        try:
            while True:
                for rv, k, event in list(self.history):
                    if rv > cursor:
                        cursor = rv
                        obj = event["object"]
                        meta = obj["metadata"]
                        if self._watch_matches(w, k, meta.get("namespace"), meta["name"], obj):
                            await send(event)
                if w.drop.is_set():
                    if w.gone:
                        await send(
                            {
                                "type": "ERROR",
                                "object": status_body(410, "Expired", "too old resource version"),
                            }
                        )
                        await resp.write_eof()
                    elif transport is not None:
                        transport.abort()  # a cut connection, not a clean end
                    return resp
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    await resp.write_eof()
                    return resp
                cond = self._cond()
                async with cond:
                    waiter = asyncio.ensure_future(cond.wait())
                    dropper = asyncio.ensure_future(w.drop.wait())
                    try:
                        # A bounded wait: an event emitted between the scan and the wait is
                        # picked up at the next scan at the latest.
                        await asyncio.wait(
                            {waiter, dropper},
                            timeout=min(remaining, 0.5) if remaining is not None else 0.5,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        dropper.cancel()
                        if not waiter.done():
                            waiter.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await waiter
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        finally:
            self.watches.remove(w)

    def _watch_matches(self, w: _Watch, key: str, ns: str | None, name: str, obj: dict[str, Any]) -> bool:
        return (
            key == w.resource
            and (w.namespace is None or ns == w.namespace)
            and (w.name is None or name == w.name)
            and selector_matches(w.selector, obj["metadata"].get("labels") or {})
        )


class EmulatorThread:
    """Runs an :class:`Emulator` on 127.0.0.1 in a background thread with its own event loop.

    :param controllers: controllers to add before the server starts.
    """

    def __init__(self, controllers: Iterable[Any] = ()) -> None:
        self.controllers = list(controllers)
        self.loop = asyncio.new_event_loop()
        self.emulator: Emulator | None = None
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="k8s-emulator", daemon=True)

    def start(self) -> EmulatorThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError("the emulator did not start") from self._error
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as e:  # pragma: no cover - reported by start()
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        emulator = Emulator()
        for c in self.controllers:
            emulator.add_controller(c)
        async with emulator, kmock.Server(emulator, user_agent=KUBELET_USER_AGENT) as srv:
            self.emulator = emulator
            self.url = str(srv.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            for c in self.controllers:
                close = getattr(c, "aclose", None)
                if close is not None:
                    await close()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        """Run ``fn(*args)`` in the emulator's loop (awaited if it is a coroutine) and return it."""

        async def runner() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout)

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
