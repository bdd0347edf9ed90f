"""The provider's Airflow plugin: the workflow designer, the output viewer and the Experiments
view (a tab on each task's page) in Airflow's UI.

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
EXPERIMENTS_NAME = "Experiments"
EXPERIMENTS_ROUTE = "experiments"


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


def experiments_app() -> dict[str, Any]:
    """The Experiments view: a tab on each task's page (the task's runs compared)."""
    return {
        "name": EXPERIMENTS_NAME,
        "bundle_url": f"{settings.base_url()}{URL_PREFIX}/static/experiments.js",
        "destination": "task",
        "url_route": EXPERIMENTS_ROUTE,
    }


def react_apps() -> list[dict[str, Any]]:
    """The ``react_apps`` entries: the Experiments view, and the designer (``designer_mode =
    react``); the bundle URLs are absolute."""
    if settings.designer_mode() != "react":
        return [experiments_app()]
    return [
        {
            "name": NAME,
            "bundle_url": f"{settings.base_url()}{URL_PREFIX}/static/designer.js",
            "destination": "nav",
            "url_route": URL_ROUTE,
            "category": CATEGORY,
        },
        experiments_app(),
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
    """Workflow designer (JSON API + front end), output viewer and Experiments view, at ``/mlplatform``."""

    name = "mlplatform"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "mlplatform"}]
    react_apps = react_apps()
    external_views = external_views()
