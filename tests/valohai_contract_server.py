"""A Valohai REST API contract server on 127.0.0.1, for tests and benchmarks.

It answers the endpoints listed in ``shared/valohai-api.md`` with the documented shapes,
runs a small state machine per execution (created -> queued -> started ->
complete | error | crashed, or stopped after ``POST .../stop/``) on a clock that can be
sped up or advanced by hand, injects faults (429 with Retry-After, 503, dropped
connections) and keeps a log of every request.

In a test::

    with ContractServer(speed=20) as server:
        server.configure_step("train", outputs={"model.pkl": b"..."}, metadata=[{"loss": 0.1}])
        server.inject("429", count=2, retry_after=0.1)
        ... hook against server.url with token server.token ...
        server.requests  # [RequestRecord(method, path, query, status, time), ...]

As a process (benchmarks): ``python tests/valohai_contract_server.py --port 0 --speed 100``
prints ``URL <url>`` and serves until killed; ``POST /_control/configure`` (JSON with
``speed``, ``durations``, ``steps``), ``GET /_control/requests`` and
``POST /_control/reset`` drive it from outside.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FINAL = ("complete", "error", "crashed", "stopped")
PROJECT_ID = "017f5c6d-0000-4000-8000-000000000001"
PROJECT_NAME = "my-org/my-project"
DEFAULT_DURATIONS = {"created": 1.0, "queued": 2.0, "started": 5.0}


@dataclass
class RequestRecord:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    time: float
    body: Any = None
    agent: str = ""


@dataclass
class StepConfig:
    """How executions of one step behave."""

    outcome: str = "complete"
    outputs: dict[str, bytes] = field(default_factory=lambda: {"output.txt": b"ok\n"})
    metadata: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=lambda: ["starting", "working", "done"])
    durations: dict[str, float] | None = None


class ContractServer:
    """The server; a context manager that serves on a background thread.

    :param token: the API token it accepts.
    :param speed: simulated seconds per real second.
    :param durations: simulated seconds spent in created, queued and started.
    :param port: 0 picks a free port.
    """

    def __init__(
        self,
        *,
        token: str = "s3cr3t-token-for-tests",
        speed: float = 1.0,
        durations: dict[str, float] | None = None,
        port: int = 0,
    ) -> None:
        self.token = token
        self.speed = speed
        self.durations = dict(DEFAULT_DURATIONS, **(durations or {}))
        self.lock = threading.RLock()
        self.requests: list[RequestRecord] = []
        self.faults: list[dict[str, Any]] = []
        #: error bodies echo what was sent (the Authorization header, the request body), as some
        #: servers and proxies do: the client must mask them before raising
        self.echo_errors = False
        self.steps: dict[str, StepConfig] = {}
        self.projects = {PROJECT_ID: {"id": PROJECT_ID, "name": PROJECT_NAME}}
        self.project_steps: set[str] | None = None
        self.executions: dict[str, dict[str, Any]] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self._counter = 0
        self._t0 = time.monotonic()
        self._offset = 0.0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------
    def start(self) -> ContractServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ContractServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control ----------------------------------------------------------
    def now(self) -> float:
        """The simulated clock, in seconds."""
        return (time.monotonic() - self._t0) * self.speed + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward.

        :param seconds: simulated seconds.
        """
        with self.lock:
            self._offset += seconds

    def configure_step(self, name: str, **kwargs: Any) -> None:
        """Set how executions of step ``name`` behave (see StepConfig).

        :param name: the step name.
        """
        with self.lock:
            self.steps[name] = StepConfig(**kwargs)

    def inject(
        self, kind: str, *, count: int = 1, retry_after: float | None = None, path: str = "", method: str = ""
    ) -> None:
        """Make the next ``count`` matching requests fail.

        :param kind: ``"429"``, ``"503"`` or ``"drop"`` (close the connection without answering).
        :param count: how many requests get the fault.
        :param retry_after: the Retry-After header of a 429, seconds.
        :param path: only requests whose path contains this.
        :param method: only requests of this method.
        """
        with self.lock:
            self.faults.append(
                {"kind": kind, "count": count, "retry_after": retry_after, "path": path, "method": method}
            )

    def api_requests(self, method: str | None = None, path: str = "") -> list[RequestRecord]:
        """Logged API requests (control and file paths excluded), optionally filtered."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path.startswith("/api/") and (method is None or r.method == method) and path in r.path
            ]

    def reset_log(self) -> None:
        with self.lock:
            self.requests.clear()

    # --- state machine ----------------------------------------------------
    def step_config(self, step: str) -> StepConfig:
        return self.steps.get(step) or StepConfig()

    def status_of(self, ex: dict[str, Any]) -> str:
        """Compute (and freeze once final) the status of an execution."""
        if ex["_status"] in FINAL:
            return str(ex["_status"])
        now = self.now()
        if ex.get("_stop_at") is not None:
            self._finish(ex, "stopped", now)
            return "stopped"
        durations = dict(self.durations, **(self.step_config(ex["step"]).durations or {}))
        elapsed = now - ex["_created"]
        edge = 0.0
        for status in ("created", "queued", "started"):
            edge += durations[status]
            if elapsed < edge:
                ex["_status"] = status
                return status
        self._finish(ex, self.step_config(ex["step"]).outcome, ex["_created"] + edge)
        return str(ex["_status"])

    def _finish(self, ex: dict[str, Any], status: str, at: float) -> None:
        cfg = self.step_config(ex["step"])
        ex["_status"] = status
        ex["_ended"] = at
        lines = list(cfg.log)
        for row in cfg.metadata:
            lines.append(json.dumps(row))
        if status == "error":
            lines += ["Traceback (most recent call last):", "ValueError: the training data is empty"]
        ex["_log"] = lines
        ex["_metadata"] = list(cfg.metadata) if status != "stopped" else []
        if status != "complete":
            return
        for name, content in cfg.outputs.items():
            datum_id = str(uuid.uuid4())
            self.files[datum_id] = content
            self.data[datum_id] = {
                "id": datum_id,
                "name": name,
                "size": len(content),
                "uri": f"s3://valohai-bucket/data/{ex['id']}/{name}",
                "ctime": _iso(at),
                "output_execution": {"id": ex["id"], "counter": ex["counter"]},
            }
            ex["_outputs"].append(datum_id)

    def render(self, ex: dict[str, Any]) -> dict[str, Any]:
        status = self.status_of(ex)
        end = ex.get("_ended") if status in FINAL else self.now()
        summary: dict[str, Any] = {}
        for row in ex.get("_metadata", []):
            summary.update(row)
        return {
            "id": ex["id"],
            "counter": ex["counter"],
            "status": status,
            "step": ex["step"],
            "title": ex["title"],
            "project": {"id": ex["project"], "name": self.projects[ex["project"]]["name"]},
            "commit": {"identifier": ex["commit"], "ref": ex["commit"]},
            "parameters": ex["parameters"],
            "inputs": ex["inputs"],
            "environment": {"id": "env-1", "name": ex["environment"] or "aws-eu-west-1-t3-large"},
            "image": ex["image"],
            "tags": ex["tags"],
            "time_limit": ex["time_limit"],
            "outputs": [self.data[d] for d in ex["_outputs"]],
            "duration": round((end or 0.0) - ex["_created"], 3),
            "ctime": _iso(ex["_created"]),
            "cumulative_metadata": summary,
            "url": f"{self.url}/api/v0/executions/{ex['id']}/",
            "urls": {
                "display": f"{self.url}/p/{PROJECT_NAME}/execution/{ex['id']}/",
                "stop": f"{self.url}/api/v0/executions/{ex['id']}/stop/",
            },
        }

    # --- request handling ---------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        """Answer one API request: (status code, JSON body)."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v0"] or len(parts) < 3:
            return 404, {"detail": "Not found."}
        res, rest = parts[2], parts[3:]
        q = {k: v[-1] for k, v in query.items()}
        if res == "projects":
            return self._projects(method, rest, q)
        if res == "environments" and method == "GET":
            return 200, _page([{"id": "env-1", "slug": "aws-eu-west-1-t3-large"}], q)
        if res == "executions":
            statuses = {s for v in query.get("status", []) for s in v.split(",") if s}
            return self._executions(method, rest, q, body, statuses)
        if res == "data":
            return self._data(method, rest, q)
        return 404, {"detail": "Not found."}

    def _projects(self, method: str, rest: list[str], q: dict[str, str]) -> tuple[int, Any]:
        if not rest and method == "GET":
            items = [p for p in self.projects.values() if not q.get("name") or p["name"] == q["name"]]
            return 200, _page(items, q)
        project = self.projects.get(rest[0]) if rest else None
        if project is None:
            return 404, {"detail": "Not found."}
        if len(rest) == 1 and method == "GET":
            return 200, project
        if rest[1:] == ["fetch"] and method == "POST":
            return 200, {"commits": []}
        if rest[1:] == ["commits"] and method == "GET":
            return 200, _page([{"identifier": "0123abcd", "ref": "main"}], q)
        return 404, {"detail": "Not found."}

    def _find(self, ident: str) -> dict[str, Any] | None:
        if ident in self.executions:
            return self.executions[ident]
        if ":" in ident:
            project, _, counter = ident.rpartition(":")
            for ex in self.executions.values():
                if ex["project"] == project and str(ex["counter"]) == counter:
                    return ex
        return None

    def _executions(
        self, method: str, rest: list[str], q: dict[str, str], body: Any, statuses: set[str]
    ) -> tuple[int, Any]:
        if not rest and method == "POST":
            return self._create(body if isinstance(body, dict) else {})
        if not rest and method == "GET":
            items = list(self.executions.values())
            if q.get("project"):
                items = [e for e in items if e["project"] == q["project"]]
            for tag in (q.get("tags") or "").split(","):
                if tag:
                    items = [e for e in items if tag in e["tags"]]
            rendered = [self.render(e) for e in sorted(items, key=lambda e: -e["counter"])]
            if statuses:
                rendered = [e for e in rendered if e["status"] in statuses]
            return 200, _page(rendered, q)
        ex = self._find(rest[0])
        if ex is None:
            return 404, {"detail": "Not found."}
        sub = rest[1:]
        if not sub and method == "GET":
            return 200, self.render(ex)
        if sub == ["stop"] and method == "POST":
            if self.status_of(ex) not in FINAL:
                ex["_stop_at"] = self.now()
            return 200, {"message": "Stop signal sent"}
        if sub == ["events"] and method == "GET":
            self.status_of(ex)
            lines = ex.get("_log", [])
            limit = int(q.get("limit") or 100)
            events = [{"stream": "stdout", "message": m + "\n", "time": _iso(0)} for m in lines]
            return 200, {"events": events[-limit:], "total": len(events), "truncated": len(events) > limit}
        if sub == ["metadata"] and method == "GET":
            self.status_of(ex)
            return 200, {"series": ex.get("_metadata", [])}
        return 404, {"detail": "Not found."}

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        errors: dict[str, list[str]] = {}
        for key in ("project", "commit", "step"):
            if not body.get(key):
                errors[key] = ["This field is required."]
        if body.get("project") and body["project"] not in self.projects:
            errors["project"] = [f'Invalid pk "{body["project"]}" - object does not exist.']
        if self.project_steps is not None and body.get("step") and body["step"] not in self.project_steps:
            errors["step"] = [f"Step {body['step']!r} not found in the configuration of this commit."]
        inputs = body.get("inputs") or {}
        for name, urls in inputs.items():
            for url in urls if isinstance(urls, list) else [urls]:
                if str(url).startswith("datum://") and str(url)[len("datum://") :] not in self.data:
                    errors.setdefault("inputs", []).append(f"{name}: datum {url} does not exist")
        if errors:
            return 400, errors
        self._counter += 1
        ex_id = str(uuid.uuid4())
        ex = {
            "id": ex_id,
            "counter": self._counter,
            "project": body["project"],
            "commit": body["commit"],
            "step": body["step"],
            "title": body.get("title") or "",
            "inputs": {k: v if isinstance(v, list) else [v] for k, v in inputs.items()},
            "parameters": body.get("parameters") or {},
            "environment": body.get("environment"),
            "environment_variables": body.get("environment_variables") or {},
            "image": body.get("image"),
            "tags": list(body.get("tags") or []),
            "time_limit": body.get("time_limit"),
            "_created": self.now(),
            "_status": "created",
            "_outputs": [],
        }
        self.executions[ex_id] = ex
        return 201, self.render(ex)

    def _data(self, method: str, rest: list[str], q: dict[str, str]) -> tuple[int, Any]:
        if not rest and method == "GET":
            items = list(self.data.values())
            if q.get("output_execution"):
                items = [d for d in items if d["output_execution"]["id"] == q["output_execution"]]
            return 200, _page(items, q)
        datum = self.data.get(rest[0])
        if datum is None:
            return 404, {"detail": "Not found."}
        if len(rest) == 1 and method == "GET":
            return 200, datum
        if rest[1:] == ["download"] and method == "GET":
            return 200, {"url": f"{self.url}/_files/{datum['id']}?signature=abc"}
        return 404, {"detail": "Not found."}

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """The /_control/ endpoints for a server in another process."""
        if path == "/_control/configure" and method == "POST":
            body = body or {}
            if "speed" in body:
                base = self.now()
                self._t0, self._offset, self.speed = time.monotonic(), base, float(body["speed"])
            self.durations.update(body.get("durations") or {})
            for name, cfg in (body.get("steps") or {}).items():
                cfg = dict(cfg)
                if "outputs" in cfg:
                    cfg["outputs"] = {k: v.encode() for k, v in cfg["outputs"].items()}
                self.steps[name] = StepConfig(**cfg)
            return 200, {"ok": True}
        if path == "/_control/requests" and method == "GET":
            return 200, [
                {"method": r.method, "path": r.path, "status": r.status, "time": r.time}
                for r in self.requests
                if r.path.startswith("/api/")
            ]
        if path == "/_control/reset" and method == "POST":
            self.requests.clear()
            return 200, {"ok": True}
        return 404, {"detail": "Not found."}


def connection_json(
    server: ContractServer, *, project: str | None = PROJECT_NAME, token: str | None = None
) -> str:
    """``AIRFLOW_CONN_VALOHAI_DEFAULT`` (JSON form) pointing at ``server``.

    :param server: the contract server.
    :param project: the connection's default project.
    :param token: the token (default: the one the server accepts).
    """
    extra = {"project": project} if project else {}
    return json.dumps(
        {"conn_type": "valohai", "host": server.url, "password": token or server.token, "extra": extra}
    )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_700_000_000 + t)) + "Z"


def _page(items: list[Any], q: dict[str, str]) -> dict[str, Any]:
    limit = int(q.get("limit") or 100)
    offset = int(q.get("offset") or 0)
    chunk = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {
        "count": len(items),
        "next": f"?limit={limit}&offset={offset + limit}" if more else None,
        "previous": None,
        "results": chunk,
    }


def _handler_for(server: ContractServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            query = parse_qs(split.query)
            with server.lock:
                fault = None
                for f in server.faults:
                    if (
                        f["count"] > 0
                        and f["path"] in split.path
                        and f["method"] in ("", method)
                        and split.path.startswith("/api/")
                    ):
                        f["count"] -= 1
                        fault = f
                        break
                status, payload, headers = self._answer(method, split.path, query, body, fault)
                server.requests.append(
                    RequestRecord(
                        method,
                        split.path,
                        query,
                        status,
                        time.monotonic(),
                        body,
                        self.headers.get("User-Agent") or "",
                    )
                )
            if status == -1:  # dropped connection
                self.close_connection = True
                self.connection.close()
                return
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type",
                "application/json" if not isinstance(payload, bytes) else "application/octet-stream",
            )
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _answer(
            self, method: str, path: str, query: dict[str, list[str]], body: Any, fault: dict[str, Any] | None
        ) -> tuple[int, Any, dict[str, str]]:
            if fault is not None:
                if fault["kind"] == "drop":
                    return -1, None, {}
                if fault["kind"] == "429":
                    headers = {}
                    if fault["retry_after"] is not None:
                        headers["Retry-After"] = str(fault["retry_after"])
                    return 429, {"detail": "Request was throttled."}, headers
                if server.echo_errors:
                    return int(fault["kind"]), {"detail": f"Service unavailable for request {body!r}"}, {}
                return int(fault["kind"]), {"detail": "Service unavailable."}, {}
            if path.startswith("/_control/"):
                status, payload = server.control(method, path, body)
                return status, payload, {}
            if path.startswith("/_files/"):
                content = server.files.get(path[len("/_files/") :])
                return (200, content, {}) if content is not None else (404, {"detail": "Not found."}, {})
            auth = self.headers.get("Authorization") or ""
            if auth != f"Token {server.token}":
                return (
                    401,
                    {"detail": f"Invalid token: {auth}" if server.echo_errors else "Invalid token."},
                    {},
                )
            status, payload = server.handle(method, path, query, body)
            return status, payload, {}

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--token", default="s3cr3t-token-for-tests")
    args = parser.parse_args()
    server = ContractServer(token=args.token, speed=args.speed, port=args.port)
    print(f"URL {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()


if __name__ == "__main__":
    main()
