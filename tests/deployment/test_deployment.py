"""The provider in a real Airflow deployment: PostgreSQL, LocalExecutor, api-server, scheduler,
dag-processor and triggerer as separate processes (stack.py), driven through the REST API.

``make test-deployment`` runs this tier alone; ``make test`` (CI) includes it.
"""

from __future__ import annotations

import json
import time

import psutil
import pytest

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
    assert states == {"prepare": "success", "train": "success", "evaluate": "success"}
    log = deployment.task_log("quickstart_ml_pipeline", run_id, "evaluate")
    assert "accuracy" in log


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

    records = list(deployment.outputs.glob("deploy_kill/*/sleep/try-1/execution_record.json"))
    assert len(records) == 1, list(deployment.outputs.rglob("*"))
    record = json.loads(records[0].read_text())
    print(json.dumps(record, indent=1)[:3000])
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
    assert "is started (was queued); waiting for" in log, log[-3000:]
    assert "is complete (was started)" in log
    xcom = deployment.api(
        "GET", f"/api/v2/dags/deploy_valohai/dagRuns/{run_id}/taskInstances/train/xcomEntries/metrics"
    )
    assert xcom["key"] == "metrics"
