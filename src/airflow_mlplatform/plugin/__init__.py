"""The provider's Airflow plugin: the workflow designer and the output viewer in Airflow's UI.

Registered by the ``airflow.plugins`` entry point. Every Airflow process's plugin manager
imports this module, so it stays cheap: the FastAPI app (fastapi, nbconvert, ruamel.yaml...)
is built only when the api-server sends it its first request.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_mlplatform.config import PLUGIN_PREFIX as URL_PREFIX
from airflow_mlplatform.plugin import settings

NAME = "Workflow designer"
URL_ROUTE = "workflow-designer"
CATEGORY = "ML platform"


class LazyApp:
    """An ASGI app that builds the plugin's FastAPI app on its first request."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The FastAPI app (built now if not yet)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_mlplatform.plugin.app import build_app

                    self._app = build_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


app = LazyApp()


def react_apps() -> list[dict[str, Any]]:
    """The ``react_apps`` entry (``designer_mode = react``); the bundle URL is absolute."""
    if settings.designer_mode() != "react":
        return []
    return [
        {
            "name": NAME,
            "bundle_url": f"{settings.base_url()}{URL_PREFIX}/static/designer.js",
            "destination": "nav",
            "url_route": URL_ROUTE,
            "category": CATEGORY,
        }
    ]


def external_views() -> list[dict[str, Any]]:
    """The ``external_views`` entry (``designer_mode = iframe``): the standalone page."""
    if settings.designer_mode() != "iframe":
        return []
    return [
        {
            "name": NAME,
            "href": f"{settings.base_path()}{URL_PREFIX}/designer/",
            "destination": "nav",
            "url_route": URL_ROUTE,
            "category": CATEGORY,
        }
    ]


class MLPlatformPlugin(AirflowPlugin):
    """Workflow designer (JSON API + front end) and output viewer, at ``/mlplatform``."""

    name = "mlplatform"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "mlplatform"}]
    react_apps = react_apps()
    external_views = external_views()
