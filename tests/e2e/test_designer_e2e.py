"""The workflow designer end to end, in headless chromium against a real ``airflow api-server``:
log in through Airflow's login page, open the designer from Airflow's navigation, build a
workflow from catalog notebooks by dragging and wiring, see live validation on the node, save;
then the saved file validates with the CLI, the loader builds it and its DAG runs with dag.test().
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from e2e.airflow_server import AirflowServer
from e2e.browser import REPO, artifacts_dir, chromium, drag_to, login

pytestmark = pytest.mark.slow

DAG_ID = "designer_e2e_pipeline"
# generous: the api-server builds the plugin app on its first request, and CI machines are shared
TIMEOUT_MS = 90_000
NOTEBOOKS = ("prepare", "train", "evaluate")
# where each dropped notebook lands, relative to the canvas's top-left corner
DROP_AT = {"prepare": (170, 90), "train": (500, 330), "evaluate": (800, 90)}


def _shot(page, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"designer-{name}.png"))


def _select_node(page, step: str) -> None:
    page.locator(f"[data-testid=node-{step}] .mlp-node__header").click()
    page.wait_for_function(
        "id => document.querySelector('[data-testid=step-id]')?.value === id", arg=step, timeout=10_000
    )


def _wire(page, source: str, target: str) -> None:
    """Drag from a port (``out-STEP-NAME`` / ``param-NAME``) to an input port (``in-STEP-NAME``)."""
    drag_to(
        page,
        page.locator(f"[data-testid={source}] .react-flow__handle"),
        page.locator(f"[data-testid={target}] .react-flow__handle"),
    )


def _wait_validated(page, *, valid: bool) -> None:
    status = page.locator("[data-testid=validation-status]")
    if valid:
        status.filter(has_text=re.compile(r"^valid$")).wait_for()
    else:
        status.filter(has_text=re.compile(r"problem")).wait_for()


def build_in_browser(server: AirflowServer) -> float:
    """The designer session: returns its seconds."""
    started = time.monotonic()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            login(page, server.url, "admin", server.passwords["admin"])

            # Airflow's navigation has the designer; the host page renders our react_apps bundle
            page.get_by_role("link", name="Workflow designer").click()
            page.wait_for_url(re.compile(r"/plugin/workflow-designer"))
            page.locator("[data-testid=toolbar]").wait_for()
            page.locator("[data-testid='catalog-notebooks/train.ipynb']").wait_for()

            # drag three notebooks from the catalog onto the canvas: steps with file and parameters set
            canvas = page.locator("[data-testid=canvas]")
            box = canvas.bounding_box()
            assert box
            for name in NOTEBOOKS:
                x, y = DROP_AT[name]
                page.drag_and_drop(
                    f"[data-testid='catalog-notebooks/{name}.ipynb']",
                    "[data-testid=canvas]",
                    target_position={"x": x, "y": y},
                )
                page.locator(f"[data-testid=node-{name}]").wait_for()
            assert page.locator(
                "[data-testid=in-train-C]"
            ).is_visible()  # pre-filled from the parameters cell
            assert page.locator("[data-testid=in-evaluate-model_path]").is_visible()

            # their outputs come from the notebooks' record() calls: ports to wire from
            page.locator("[data-testid=out-train-model_path]").wait_for()
            page.locator("[data-testid=out-prepare-test_path]").wait_for()
            _select_node(page, "train")
            assert page.locator("[data-testid=field-outputs]").input_value() == "accuracy, model_path"

            # a global parameter C (number, 0.5)
            page.locator("[data-testid=tab-params]").click()
            page.locator("[data-testid=add-param]").click()
            row = page.locator("[data-testid^=global-param-]").last
            row.get_by_label("Parameter name").fill("C")
            row.get_by_label("Parameter name").press("Enter")
            row = page.locator("[data-testid=global-param-C]")
            row.get_by_label("Parameter type").select_option("number")
            row.get_by_label("Default").fill("0.5")
            row.get_by_label("Description").fill("Inverse regularisation strength")
            page.locator("[data-testid=param-C]").wait_for()
            page.locator("[data-testid=fit]").click()
            page.wait_for_timeout(400)

            # wire: train.model_path -> evaluate.model_path, prepare's paths, params.C -> train.C
            _wire(page, "out-train-model_path", "in-evaluate-model_path")
            page.locator("[data-testid=param-ref-evaluate-model_path]").or_(
                page.locator(".react-flow__edge")
            ).first.wait_for()
            _select_node(page, "evaluate")
            assert (
                page.locator("[data-testid=param-ref-evaluate-model_path]").inner_text()
                == "← train.model_path"
            )
            # undo / redo the wire with the keyboard
            page.locator("[data-testid=canvas] .react-flow__pane").click(position={"x": 5, "y": 5})
            page.keyboard.press("Control+z")
            _select_node(page, "evaluate")
            assert page.locator("[data-testid=param-ref-evaluate-model_path]").count() == 0
            page.locator("[data-testid=canvas] .react-flow__pane").click(position={"x": 5, "y": 5})
            page.keyboard.press("Control+Shift+z")
            _select_node(page, "evaluate")
            page.locator("[data-testid=param-ref-evaluate-model_path]").wait_for()

            _wire(page, "out-prepare-test_path", "in-evaluate-test_path")
            _wire(page, "out-prepare-train_path", "in-train-train_path")
            _wire(page, "param-C", "in-train-C")
            _select_node(page, "train")
            page.locator("[data-testid=param-ref-train-C]").wait_for()
            assert (
                page.locator("[data-testid=param-ref-train-train_path]").inner_text()
                == "← prepare.train_path"
            )

            # the DAG id
            page.locator("[data-testid=canvas] .react-flow__pane").click(position={"x": 5, "y": 5})
            page.locator("[data-testid=doc-id]").fill(DAG_ID)
            _wait_validated(page, valid=True)
            _shot(page, "wired")

            # clear a required field: the server's validator marks the node and the field; fix it
            _select_node(page, "train")
            notebook = page.locator("[data-testid=field-notebook]")
            path = notebook.input_value()
            assert path.endswith("notebooks/train.ipynb")
            notebook.fill("")
            _wait_validated(page, valid=False)
            page.locator("[data-testid=node-errors-train]").wait_for()
            message = page.locator("[data-testid=field-notebook-error]").first.inner_text()
            assert "notebook" in message
            assert page.locator("[data-testid=save]").is_disabled()
            _shot(page, "error")
            notebook.fill(path)
            _wait_validated(page, valid=True)
            assert page.locator("[data-testid=node-errors-train]").count() == 0

            # preview the YAML and the Python side by side
            page.locator("[data-testid=preview-toggle]").click()
            page.locator("[data-testid=preview-python]").filter(has_text="NotebookOperator").wait_for(
                timeout=30_000
            )
            assert (
                "${{ steps.train.outputs.model_path }}"
                in page.locator("[data-testid=preview-yaml]").inner_text()
            )
            page.locator("[data-testid=auto-layout]").click()
            page.wait_for_timeout(500)
            _select_node(page, "train")
            _shot(page, "preview")
            page.locator("[data-testid=preview-toggle]").click()

            # save (a new file), then the DAG's links
            page.locator("[data-testid=save]").click()
            page.locator("[data-testid=save-name]").fill(f"{DAG_ID}.yaml")
            page.locator("[data-testid=save-confirm]").click()
            page.locator("[data-testid=notice]").filter(has_text="Saved").wait_for()
            page.locator("[data-testid=run-links]").wait_for()
            assert DAG_ID in (page.locator("[data-testid=grid-link]").get_attribute("href") or "")
            _shot(page, "saved")
        except Exception:
            _shot(page, "failure")
            raise
        assert not errors, errors
    return time.monotonic() - started


def test_build_wire_validate_save_and_run(designer_server: AirflowServer, designer_folder: Path, run_dag):
    browser_seconds = build_in_browser(designer_server)
    saved = designer_folder / "workflows" / f"{DAG_ID}.yaml"
    document = yaml.safe_load(saved.read_text())
    steps = {s["id"]: s for s in document["steps"]}
    assert steps["evaluate"]["parameters"]["model_path"] == "${{ steps.train.outputs.model_path }}"
    assert steps["evaluate"]["parameters"]["test_path"] == "${{ steps.prepare.outputs.test_path }}"
    assert steps["train"]["parameters"]["C"] == "${{ params.C }}"
    assert document["params"]["C"]["default"] == 0.5
    assert set(document["layout"]) == set(NOTEBOOKS)

    cli = subprocess.run(
        [str(Path(sys.executable).parent / "mlplatform"), "workflow", "validate", str(saved)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # the project's own loader, next to the designer's workflows folder
    loader = (REPO / "example_dags" / "workflows_loader.py").read_text()
    result = run_dag(loader, DAG_ID, name="designer_e2e/loader.py", run_conf={"C": 0.5})
    assert result.task_states() == {"prepare": "success", "train": "success", "evaluate": "success"}
    train = result.xcom("train")
    assert result.xcom("evaluate", "execution_record")["parameters"]["model_path"] == train["model_path"]
    assert result.xcom("train", "execution_record")["parameters"]["C"] == 0.5
    print(f"designer e2e: browser part {browser_seconds:.1f} s")


def test_viewer_is_read_only_and_iframe_page_renders(designer_server: AirflowServer):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, designer_server.url, "viewer", designer_server.passwords["viewer"])
        page.goto(f"{designer_server.url}/plugin/workflow-designer")
        page.get_by_text("may read but not edit DAGs").wait_for()
        assert page.locator("[data-testid=save]").count() == 0

        # the external_views page (own React) on the same API
        page.goto(f"{designer_server.url}/mlplatform/designer/")
        page.locator("[data-testid=toolbar]").wait_for()
        page.locator("[data-testid=tab-steps]").click()
        for step_type in ("notebook", "r", "bash", "python"):
            page.locator(f"[data-testid=palette-{step_type}]").wait_for()
        _shot(page, "iframe-page")
        assert not errors, errors
