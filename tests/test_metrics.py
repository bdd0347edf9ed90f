"""Metrics through Airflow's Stats, received for real by a StatsD listener on 127.0.0.1 (UDP).

A quickstart-like notebook DAG (a parameterized notebook, and one whose cell raises) and the pod
example DAG run under ``dag.test()`` (the pod job on the Kubernetes test bed, its create answered
429 once) with Airflow's StatsD settings on.
"""

from __future__ import annotations

import json
import re

import pytest

from airflow_mlplatform import metrics
from repo_paths import REPO
from statsd_listener import statsd_listener

PROFILES = """
profiles:
  cpu-small:
    backend: kubernetes
    image: python:3.11-slim
    requests: {cpu: 100m, memory: 128Mi}
    labels: {tenant: tests}
"""
NOTEBOOK_DAG = """
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_mlplatform.operators.notebook import NotebookOperator

HERE = Path(__file__).parent
with DAG("metrics_notebooks", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    NotebookOperator(task_id="ok", notebook=str(HERE / "metrics_ok.ipynb"), parameters={"n": 3})
    NotebookOperator(task_id="fails", notebook=str(HERE / "metrics_fails.ipynb"))
"""
#: Every tag key a metric of ours may carry: never a parameter, a value or a secret.
TAG_KEYS = {"kind", "profile", "tenant", "outcome", "kernel", "api", "status", "reason"}


def _ours(listener) -> list:
    from statsd_listener import Line

    return [Line.parse(t) for t in listener.raw if t.startswith("airflow.mlplatform.")]


def test_the_quickstart_and_a_pod_job_send_their_metrics_to_statsd(
    run_dag, dags_folder, k8s_clean, tmp_path, monkeypatch
):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(profiles))
    from nbtools import write_notebook

    write_notebook(
        dags_folder / "metrics_ok.ipynb",
        [("parameters", "n = 1"), "import scrapbook as sb\nsb.glue('sq', n * n)"],
    )
    write_notebook(dags_folder / "metrics_fails.ipynb", ["x = 1", "raise ValueError('no')", "y = 2"])
    with statsd_listener() as statsd:
        result = run_dag(NOTEBOOK_DAG, "metrics_notebooks", name="metrics_notebooks.py")
        assert result.task_states() == {"ok": "success", "fails": "failed"}
        k8s_clean.inject(429, count=1, retry_after=0, match=lambda r: r.method == "POST")
        result = run_dag(REPO / "example_dags" / "example_pod_job.py", "example_pod_job")
        assert result.state == "success", result.task_states()
        assert statsd.wait_for("mlplatform.job.runs", kind="Pod", outcome="success")

    # the notebooks: two tries in the worker, one failed by its cell; their cells
    runs = statsd.lines("mlplatform.job.runs", kind="worker", outcome="success", profile="none")
    assert len(runs) == 1 and runs[0].type == "c" and runs[0].value == 1
    failed = statsd.lines("mlplatform.job.failures", kind="worker", outcome="failed")
    assert len(failed) == 1 and len(statsd.lines("mlplatform.job.runs", kind="worker", outcome="failed")) == 1
    assert len(statsd.lines("mlplatform.job.duration", kind="worker")) == 2
    cells = sorted(c.value for c in statsd.lines("mlplatform.notebook.cells_executed", kernel="python3"))
    assert cells == [2, 3]  # parameters + injected + glue; two cells up to the one that raised
    assert [c.value for c in statsd.lines("mlplatform.notebook.cells_failed", kernel="python3")] == [1]
    # the pods: two tries (one deferred), their start latency, tagged with profile and tenant
    pod = {"kind": "Pod", "profile": "cpu-small", "tenant": "tests"}
    assert len(statsd.lines("mlplatform.job.runs", outcome="success", **pod)) == 2
    latency = statsd.lines("mlplatform.job.start_latency", **pod)
    assert len(latency) == 2 and all(x.type == "ms" and x.value >= 0 for x in latency)
    assert len(statsd.lines("mlplatform.job.started", kind="Pod", tenant="tests")) == 2
    assert statsd.lines("mlplatform.trigger.watches", kind="Pod")  # the deferred try's wait
    assert statsd.lines("mlplatform.api.retries", api="kubernetes", status="429")
    assert not statsd.lines("mlplatform.job.failures", kind="Pod")
    # every name is in the documented table; no tag carries anything but these
    ours = _ours(statsd)
    assert {x.name.removeprefix("airflow.") for x in ours} <= set(metrics.METRICS)
    assert set().union(*(x.tags for x in ours)) <= TAG_KEYS
    assert not any("0.5" in t or "decay" in t for t in statsd.raw)  # the pod job's parameters
    # the records of the same runs say what they used (read back through the date index)
    from airflow_mlplatform import record_store

    used = {
        (s.record["task"]["dag_id"], s.record["task"]["task_id"]): s.record
        for s in record_store.iter_summaries()
    }
    for task in ("train", "check"):  # sync, then deferred (the trigger's times)
        pod_usage = used[("example_pod_job", task)]["usage"]
        assert (pod_usage["kind"], pod_usage["tenant"], pod_usage["profile"]) == ("Pod", "tests", "cpu-small")
        assert pod_usage["totals"]["cpu"] == 0.1 and pod_usage["namespace"] == "default"
        assert pod_usage["pending_s"] >= 0 and pod_usage["running_s"] > 0, pod_usage
        assert pod_usage["billable_s"] == pod_usage["running_s"] and pod_usage["status"] == "success"
    notebook = used[("metrics_notebooks", "ok")]["usage"]
    assert (notebook["kind"], notebook["backend"], notebook["totals"]["cpu"]) == ("worker", "local", 1.0)
    assert notebook["billable_s"] == notebook["duration_s"] > 0
    assert used[("metrics_notebooks", "fails")]["usage"]["failed"] is True


def test_a_broken_metrics_backend_never_fails_a_job(monkeypatch):
    def broken():
        raise RuntimeError("no backend")

    monkeypatch.setattr(metrics, "_stats", broken)
    monkeypatch.setattr(metrics, "_broken", False)
    metrics.incr("mlplatform.job.runs", tags={"kind": "Pod"})  # logged once, not raised
    assert metrics._broken is True


@pytest.mark.parametrize(
    ("value", "expected"), [("research team", "research_team"), (None, "none"), ("a,b=c", "a_b_c")]
)
def test_tag_values_are_statsd_safe(value, expected):
    assert metrics.clean_tags({"tenant": value}) == {"tenant": expected}


def test_docs_table_and_grafana_dashboard_use_exactly_the_metric_names():
    text = (REPO / "docs" / "monitoring.md").read_text()
    documented = set(re.findall(r"^\| `(mlplatform\.[a-z_.]+)` \|", text, re.M))
    assert documented == set(metrics.METRICS)
    dashboard = json.loads((REPO / "docs" / "grafana-mlplatform-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(re.findall(r"airflow_(mlplatform_[a-z_]+)", " ".join(exprs)))
    exported = {n.replace(".", "_") for n in metrics.METRICS}
    assert used <= exported and {"mlplatform_job_start_latency", "mlplatform_api_retries"} <= used
