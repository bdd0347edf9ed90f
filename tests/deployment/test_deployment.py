"""The provider in a real Airflow deployment: PostgreSQL, LocalExecutor, api-server, scheduler,
dag-processor and triggerer as separate processes (stack.py), driven through the REST API.

``make test-deployment`` runs this tier alone; ``make test`` (CI) includes it.
"""

from __future__ import annotations

import json
import re
import time

import psutil
import pytest
import requests

pytestmark = [pytest.mark.deployment, pytest.mark.slow]


def test_quickstart_and_workflow_dags_succeed(deployment):
    runs = {
        dag_id: deployment.trigger(dag_id)
        for dag_id in ("quickstart_ml_pipeline", "quickstart_ml_pipeline_workflow")
    }
    for dag_id, run_id in runs.items():
        state = deployment.wait_for_run(dag_id, run_id)
        assert state == "success", (
            dag_id,
            deployment.task_states(dag_id, run_id),
            deployment.log_tail("scheduler"),
        )
    run_id = runs["quickstart_ml_pipeline"]
    states = deployment.task_states("quickstart_ml_pipeline", run_id)
    assert states == {
        **{t: "success" for t in ("prepare", "train", "evaluate", "register", "promote")},
        "deploy": "skipped",  # no Kubernetes connection in this deployment: skipped, saying so
    }
    assert "No Kubernetes connection 'kubernetes_default' is configured: skipping the deployment" in (
        deployment.task_log("quickstart_ml_pipeline", run_id, "deploy")
    )
    log = deployment.task_log("quickstart_ml_pipeline", run_id, "evaluate")
    assert "accuracy" in log

    # the "Output notebook" extra link, as the UI gets it, opens the rendered notebook
    links = deployment.api(
        "GET", f"/api/v2/dags/quickstart_ml_pipeline/dagRuns/{run_id}/taskInstances/evaluate/links"
    )
    path = links["extra_links"]["Output notebook"]
    assert path.startswith("/mlplatform/outputs/quickstart_ml_pipeline/"), links  # same-origin
    url = deployment.url + path
    page = requests.get(url, headers={"Authorization": f"Bearer {deployment.token()}"}, timeout=120)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:500]
    assert "accuracy" in page.text
    assert requests.get(url, timeout=120).status_code == 401  # anonymous


def test_marking_a_running_notebook_failed_stops_its_kernel(deployment, tmp_path):
    pid_file = tmp_path / "kernel.pid"
    run_id = deployment.trigger("deploy_kill", {"pid_file": str(pid_file)})
    deadline = time.monotonic() + 180
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pid_file.exists(), deployment.task_states("deploy_kill", run_id)
    kernel = psutil.Process(int(pid_file.read_text()))
    assert deployment.task_instance("deploy_kill", run_id, "sleep")["state"] == "running"

    deployment.api(
        "PATCH",
        f"/api/v2/dags/deploy_kill/dagRuns/{run_id}/taskInstances/sleep",
        json={"new_state": "failed"},
    )
    marked = time.monotonic()
    gone = False
    while time.monotonic() - marked < 10:
        if not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE:
            gone = True
            break
        time.sleep(0.2)
    assert gone, f"kernel {kernel.pid} still running 10 s after the task was marked failed"
    assert deployment.wait_for_run("deploy_kill", run_id, timeout=60) == "failed"

    deadline = time.monotonic() + 60  # the killed task writes its record as it stops
    while not (records := list(deployment.outputs.glob("deploy_kill/*/sleep/try-1/execution_record.json"))):
        assert time.monotonic() < deadline, list(deployment.outputs.rglob("*"))
        time.sleep(0.5)
    record = json.loads(records[0].read_text())
    assert record["status"] == "killed"
    assert "stopped" in record["error"]


def test_deferrable_valohai_job_waits_in_the_real_triggerer(deployment, valohai_server):
    run_id = deployment.trigger("deploy_valohai")
    seen = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ti = deployment.task_instance("deploy_valohai", run_id, "train")
        seen.add(ti["state"])
        if ti["state"] in ("success", "failed", "upstream_failed"):
            break
        time.sleep(0.5)
    assert ti["state"] == "success", (seen, deployment.log_tail("triggerer"))
    assert "deferred" in seen
    log = deployment.task_log("deploy_valohai", run_id, "train")
    # the triggerer's status lines (INFO) are what the UI shows while the task is deferred
    assert re.search(r"Valohai execution #\d+ \(\S+\) is (queued|started); waiting for", log), log[-3000:]
    assert "is complete (was started); waiting for" in log
    xcom = deployment.api(
        "GET", f"/api/v2/dags/deploy_valohai/dagRuns/{run_id}/taskInstances/train/xcomEntries/metrics"
    )
    assert xcom["key"] == "metrics"
