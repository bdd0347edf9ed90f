"""The plugin's FastAPI app (mounted by the api-server at ``/mlplatform``): the designer's JSON
API under ``/api`` (the Experiments view's under ``/api/experiments``), the output viewer under ``/outputs``, the built front end under ``/static``
and the standalone (iframe) designer page under ``/designer/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from airflow_mlplatform.exceptions import (
    DesignerConflictError,
    DesignerError,
    DesignerNotFoundError,
    DesignerPathError,
    DesignerReadOnlyError,
)
from airflow_mlplatform.plugin import settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
_STATUS = (
    (DesignerNotFoundError, 404),
    (DesignerReadOnlyError, 403),
    (DesignerConflictError, 409),
    (DesignerPathError, 400),
)


def _error_status(exc: DesignerError) -> int:
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 400


async def _designer_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DesignerError)
    return JSONResponse({"detail": str(exc)}, status_code=_error_status(exc))


class _BodyLimit:
    """ASGI middleware: JSON bodies only (for requests with a body) and at most ``limit`` bytes."""

    def __init__(self, app: Any, limit: int = settings.MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            await _reply(send, 415, "request bodies must be JSON (Content-Type: application/json)")
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _reply(send, 413, f"request body larger than {self.limit} bytes")
            return
        seen = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, f"request body larger than {self.limit} bytes")


class _TooLarge(Exception):
    pass


async def _reply(send: Any, code: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_app() -> FastAPI:
    """A new plugin app with every router."""
    from airflow_mlplatform.plugin import designer_api, experiments, me, outputs

    app = FastAPI(
        title="airflow-mlplatform",
        description="Workflow designer API and output viewer of airflow-mlplatform",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_exception_handler(DesignerError, _designer_error)
    app.include_router(me.router, prefix="/api")
    app.include_router(designer_api.router, prefix="/api/designer")
    app.include_router(experiments.router, prefix="/api/experiments")
    app.include_router(outputs.router, prefix="/outputs")

    @app.get("/static/{path:path}", include_in_schema=False)
    def static(path: str) -> Response:
        """The built front end (no authentication: it holds no data)."""
        from airflow_mlplatform.plugin.paths import confine

        target = confine(STATIC_DIR, path)
        if not target.is_file():
            raise DesignerNotFoundError(f"no static file {path!r} (is the front end built? `make ui`)")
        return FileResponse(
            target, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        )

    @app.get("/designer/", include_in_schema=False)
    @app.get("/designer", include_in_schema=False)
    def standalone() -> Response:
        """The standalone designer page (the ``external_views`` iframe mode)."""
        index = STATIC_DIR / "designer-standalone" / "index.html"
        if not index.is_file():
            return JSONResponse(
                {"detail": "the designer front end is not built: run `make ui` (or `make setup`)"},
                status_code=404,
            )
        return FileResponse(index, media_type="text/html")

    app.add_middleware(_BodyLimit)
    return app
