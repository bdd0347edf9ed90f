"""The Experiments view end to end, in headless chromium against a real ``airflow api-server``:
from a task's page in Airflow's UI, the Experiments tab shows the task's runs (table, scatter
plots, series), "only what differs" drops equal columns, and a row's link opens its try's page
in the output viewer."""

from __future__ import annotations

import os
import re
import textwrap

from e2e.airflow_server import AirflowServer
from e2e.browser import artifacts_dir, chromium, login
from stored_records import write

DAG_ID = "experiments_e2e"
TIMEOUT_MS = 90_000
DAG = textwrap.dedent(
    f"""
    import pendulum
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        EmptyOperator(task_id="train")
    """
)


def test_experiments_tab_of_a_task(designer_server: AirflowServer, run_dag):
    assert run_dag(DAG, DAG_ID).state == "success"  # the DAG is in the metadata DB: its task page exists
    base = os.environ["AIRFLOW__MLPLATFORM__OUTPUT_BASE"]  # the api-server's too
    for i, c in enumerate([0.1, 1.0, 10.0]):
        write(base, dag=DAG_ID, run=f"manual__e2e{i}", task="train", hour=i, parameters={"C": c, "seed": 7},
              metric_rows=[{"step": s, "accuracy": 0.7 + 0.05 * s + 0.01 * i} for s in range(4)])  # fmt: skip
    url = designer_server.url
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            login(page, url, "viewer", designer_server.passwords["viewer"])
            page.goto(f"{url}/dags/{DAG_ID}/tasks/train")
            page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/tasks/train"))
            # the task page's tab (exact: the DAG's own link "experiments_e2e" matches loosely)
            page.get_by_role("link", name="Experiments", exact=True).or_(
                page.get_by_role("tab", name="Experiments", exact=True)
            ).first.click()
            page.wait_for_url(re.compile(r"/tasks/train/plugin/experiments"))
            table = page.locator("[data-testid=experiments-table]")
            table.wait_for()
            assert page.locator("[data-testid^=experiments-row-]").count() == 3
            headers = table.locator("th").all_inner_texts()
            assert {"run", "param:C", "param:seed", "metric:accuracy"} <= set(headers)
            assert page.locator("[data-testid=scatter-C-accuracy] circle").count() == 3
            assert page.locator("[data-testid=series-accuracy] polyline").count() == 3
            page.screenshot(path=str(artifacts_dir() / "experiments-task-tab.png"), full_page=True)

            page.locator("[data-testid=experiments-diff]").check()
            page.wait_for_function(
                "() => { const th = [...document.querySelectorAll('[data-testid=experiments-table] th')]"
                ".map(t => t.textContent); return th.includes('param:C') && !th.includes('param:seed'); }"
            )
            assert "param:C" in table.locator("th").all_inner_texts()

            link = page.locator("[data-testid=experiments-link-2]")
            assert link.inner_text() == "manual__e2e2"
            link.click()
            page.wait_for_url(re.compile(rf"/mlplatform/outputs/{DAG_ID}/manual__e2e2/train/1$"))
            assert "execution_record.json" in page.content()
            assert not errors, errors
        except Exception as e:
            page.screenshot(path=str(artifacts_dir() / "experiments-failure.png"), full_page=True)
            tabs = page.get_by_role("tab").all_inner_texts() + page.get_by_role("link").all_inner_texts()
            raise AssertionError(f"at {page.url}; tabs and links: {tabs}; page errors: {errors}") from e
