"""The plugin module stays cheap for every Airflow process, and its UI entries follow
``[mlplatform] designer_mode``."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_importing_the_plugin_builds_no_app():
    code = (
        "import sys, airflow.plugins_manager\n"
        "before = set(sys.modules)\n"
        "import airflow_mlplatform.plugin as p, airflow_mlplatform.links\n"
        "heavy = [m for m in ('fastapi', 'starlette', 'nbconvert', 'ruamel', 'papermill', 'nbformat')\n"
        "         if m in sys.modules and m not in before]\n"
        "print(heavy, p.app._app)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[] None"


@pytest.mark.parametrize("mode", ["react", "iframe"])
def test_designer_mode_picks_the_ui_entry(mode, monkeypatch):
    from airflow_mlplatform import plugin

    monkeypatch.setenv("AIRFLOW__MLPLATFORM__DESIGNER_MODE", mode)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example/team-a/")
    react, iframe = plugin.react_apps(), plugin.external_views()
    # the Experiments view is a tab on each task's page in both modes
    experiments = {"name": "Experiments", "destination": "task", "url_route": "experiments",
                   "bundle_url": "https://airflow.example/team-a/mlplatform/static/experiments.js"}  # fmt: skip
    if mode == "react":
        assert iframe == []
        assert react == [{"name": "Workflow designer", "destination": "nav", "url_route": "workflow-designer",
                          "category": "ML platform",
                          "bundle_url": "https://airflow.example/team-a/mlplatform/static/designer.js"},
                         experiments]  # fmt: skip
    else:
        assert react == [experiments]
        assert iframe == [{"name": "Workflow designer", "href": "/team-a/mlplatform/designer/", "destination": "nav",
                           "url_route": "workflow-designer", "category": "ML platform"}]  # fmt: skip


def test_an_unknown_mode_is_a_clear_error(monkeypatch):
    from airflow_mlplatform import plugin
    from airflow_mlplatform.exceptions import ConfigurationError

    monkeypatch.setenv("AIRFLOW__MLPLATFORM__DESIGNER_MODE", "popup")
    with pytest.raises(ConfigurationError, match="designer_mode must be one of react, iframe"):
        plugin.react_apps()
