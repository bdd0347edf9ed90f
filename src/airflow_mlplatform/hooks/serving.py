"""Talk to a served model with the open inference protocol (v2): the deployment's smoke test.

``POST {url}/v2/models/{name}/infer`` with a v2 request body; a good answer is HTTP 200 with a
non-empty ``outputs`` list. :func:`smoke_test` sends the same request a few times and gives
the figures a canary gate compares (``latency_ms``, ``errors``). With ``serving_conn_id`` (an
Airflow HTTP connection) its host replaces the URL's (an ingress in front of the cluster) and
its password is sent as a Bearer token; the token never reaches a log, XCom or the record.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.exceptions import ConfigurationError


@dataclass(frozen=True)
class SmokeResult:
    """What a smoke test saw.

    :param url: the base URL it sent to.
    :param requests: how many requests were sent.
    :param errors: how many did not get a good answer.
    :param latency_ms: the median time of the good answers (ms; None: none was good).
    :param message: the first failure, e.g. ``HTTP 500: ...`` ("" when all were good).
    :param outputs: the first good answer's ``outputs`` (names and shapes only).
    """

    url: str
    requests: int
    errors: int
    latency_ms: float | None
    message: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def metrics(self) -> dict[str, float]:
        """The figures a canary gate reads (``latency_ms``, ``errors``, ``error_rate``)."""
        out: dict[str, float] = {
            "errors": float(self.errors),
            "error_rate": self.errors / max(self.requests, 1),
        }
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out


class InferenceClient:
    """A client of one served model.

    :param url: the model server's base URL (an InferenceService's ``status.url`` or a tag's URL).
    :param model: the model's name in the protocol (the InferenceService's name).
    :param serving_conn_id: an HTTP connection: host and Bearer token (password), or None.
    :param timeout: seconds per request.
    """

    def __init__(
        self, *, url: str, model: str, serving_conn_id: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.serving_conn_id = serving_conn_id
        self.timeout = timeout
        self._headers: dict[str, str] = {"Content-Type": "application/json"}
        self._host_header: str | None = None
        if serving_conn_id:
            self._use_connection(serving_conn_id)

    def _use_connection(self, conn_id: str) -> None:
        from urllib.parse import urlsplit

        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        if conn.password:
            self._headers["Authorization"] = f"Bearer {conn.password}"
        if conn.host:
            # the ingress: requests go there, with the InferenceService's host name as Host
            self._host_header = urlsplit(self.url).netloc or None
            scheme = "https" if "https" in (conn.conn_type, conn.schema) else "http"
            host = conn.host if "://" in conn.host else f"{scheme}://{conn.host}"
            self.url = host.rstrip("/") + (f":{conn.port}" if conn.port else "")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"connection {conn_id!r}: its host must be an http(s) URL, got {conn.host!r}"
            )

    def infer(self, body: Mapping[str, Any]) -> tuple[int, Any, float, Mapping[str, str]]:
        """One inference request: ``(HTTP status, JSON answer or text, seconds, headers)``.

        :param body: the v2 request (``{"inputs": [...]}``).
        """
        import requests

        headers = dict(self._headers)
        if self._host_header:
            headers["Host"] = self._host_header
        started = time.perf_counter()
        response = requests.post(
            f"{self.url}/v2/models/{self.model}/infer", json=dict(body), headers=headers, timeout=self.timeout
        )
        elapsed = time.perf_counter() - started
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return response.status_code, answer, elapsed, response.headers


def _failure(status: int, answer: Any) -> str:
    """Why an answer is not a good v2 answer ("" when it is)."""
    if status != 200:
        text = answer.get("error") if isinstance(answer, Mapping) else answer
        return f"HTTP {status}: {str(text)[:300]}"
    if (
        not isinstance(answer, Mapping)
        or not isinstance(answer.get("outputs"), list)
        or not answer["outputs"]
    ):
        return f"HTTP 200 but not an inference answer (no outputs): {str(answer)[:300]}"
    return ""


def smoke_test(client: InferenceClient, request: Mapping[str, Any], *, count: int = 3) -> SmokeResult:
    """Send ``request`` ``count`` times; a connection error counts as a failed request.

    :param client: the model's client.
    :param request: the v2 request body.
    :param count: how many times.
    """
    import requests

    latencies: list[float] = []
    errors, message = 0, ""
    outputs: list[dict[str, Any]] = []
    for _ in range(max(1, count)):
        try:
            status, answer, seconds, _headers = client.infer(request)
        except requests.RequestException as e:
            errors += 1
            message = message or f"{type(e).__name__}: {e}"
            continue
        why = _failure(status, answer)
        if why:
            errors += 1
            message = message or why
            continue
        latencies.append(seconds * 1000.0)
        if not outputs:
            outputs = [
                {k: o.get(k) for k in ("name", "shape", "datatype")}
                for o in answer["outputs"]
                if isinstance(o, Mapping)
            ]
    return SmokeResult(
        url=client.url,
        requests=max(1, count),
        errors=errors,
        latency_ms=round(statistics.median(latencies), 3) if latencies else None,
        message=message,
        outputs=outputs,
    )
