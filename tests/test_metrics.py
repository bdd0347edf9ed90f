"""Metrics through Airflow's Stats, received for real by a StatsD listener on 127.0.0.1 (UDP).

The quickstart notebook pipeline and the pod example DAG run under ``dag.test()`` (the pod job on
the Kubernetes test bed, its create answered 429 once) with Airflow's StatsD settings on.
"""

from __future__ import annotations

import json
import re
import shutil

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
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)
    with statsd_listener() as statsd:
        result = run_dag(REPO / "example_dags" / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline")
        assert result.state == "success", result.task_states()
        k8s_clean.inject(429, count=1, retry_after=0, match=lambda r: r.method == "POST")
        result = run_dag(REPO / "example_dags" / "example_pod_job.py", "example_pod_job")
        assert result.state == "success", result.task_states()
        assert statsd.wait_for("mlplatform.job.runs", kind="Pod", outcome="success")

    # the notebooks: three tries in the worker, their cells
    runs = statsd.lines("mlplatform.job.runs", kind="worker", outcome="success", profile="none")
    assert len(runs) == 3 and all(r.type == "c" and r.value == 1 for r in runs)
    assert len(statsd.lines("mlplatform.job.duration", kind="worker", outcome="success")) == 3
    cells = statsd.lines("mlplatform.notebook.cells_executed", kernel="python3")
    assert len(cells) == 3 and all(c.value >= 2 for c in cells)
    assert not statsd.lines("mlplatform.notebook.cells_failed")
    # the pods: two tries (one deferred), their start latency, tagged with profile and tenant
    pod = {"kind": "Pod", "profile": "cpu-small", "tenant": "tests"}
    assert len(statsd.lines("mlplatform.job.runs", outcome="success", **pod)) == 2
    latency = statsd.lines("mlplatform.job.start_latency", **pod)
    assert len(latency) == 2 and all(x.type == "ms" and x.value >= 0 for x in latency)
    assert len(statsd.lines("mlplatform.job.started", kind="Pod", tenant="tests")) == 2
    assert statsd.lines("mlplatform.trigger.watches", kind="Pod")  # the deferred try's wait
    assert statsd.lines("mlplatform.api.retries", api="kubernetes", status="429")
    assert not statsd.lines("mlplatform.job.failures")
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
    notebook = used[("quickstart_ml_pipeline", "train")]["usage"]
    assert (notebook["kind"], notebook["backend"], notebook["totals"]["cpu"]) == ("worker", "local", 1.0)
    assert notebook["billable_s"] == notebook["duration_s"] > 0 and notebook["worker"]


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
