"""Notebooks and R jobs in pods, by compute profile: real Airflow, the Kubernetes emulator,
and the fake kubelet that runs each pod's command as a local process."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from airflow_mlplatform.specs import pod as podspec
from nbtools import write_notebook

PROFILES = """
profiles:
  cpu-small:
    backend: kubernetes
    image: ghcr.io/example/ml-runtime:1
    requests: {cpu: 100m, memory: 256Mi}
    labels: {tenant: tests}
"""


@pytest.fixture
def profiles(tmp_path, monkeypatch, k8s_clean):
    path = tmp_path / "profiles.yaml"
    path.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(path))
    return path


def dag_pods(k8s, dag_id):
    key = podspec.label_key("dag_id")
    return [p for p in k8s.pods() if p["metadata"]["labels"].get(key) == dag_id]


@pytest.mark.parametrize("deferrable", [False, True])
def test_notebook_in_a_pod_follows_the_same_contract(profiles, k8s_clean, run_dag, dags_folder, deferrable):
    dag_id = f"nb_pod_{'deferred' if deferrable else 'sync'}"
    write_notebook(
        dags_folder / "pod_nbs" / "scale.ipynb",
        [
            ("parameters", "factor = 1\nname = ''"),
            "import json, os\nfrom airflow_mlplatform.runtime import output_dir, output_uri, record\n"
            "(output_dir() / 'result.txt').write_text(name * factor)\n"
            "print(json.dumps({'step': 1, 'loss': 0.5}))\n"
            "record('scaled', 21 * factor)\nrecord('file', output_uri('result.txt'))\n"
            "record('in_pod', os.environ.get('MLPLATFORM_JOB_SPEC') is not None)",
        ],
    )
    src = textwrap.dedent(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.notebook import NotebookOperator

        with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
                 params={{"name": "ab"}}) as dag:
            NotebookOperator(task_id="scale", notebook="pod_nbs/scale.ipynb", parameters={{"factor": 2}},
                             compute="cpu-small", deferrable={deferrable})
        """
    )
    result = run_dag(src, dag_id)
    assert result.task_states() == {"scale": "success"}
    values = result.xcom("scale")
    assert values["scaled"] == 42 and values["in_pod"] is True
    assert Path(values["file"]).read_text() == "abab"
    assert result.xcom("scale", "scaled") == 42
    assert result.xcom("scale", "metrics") == {"step": 1, "loss": 0.5}
    record = result.xcom("scale", "execution_record")
    assert record["where"]["backend"] == "kubernetes" and record["where"]["pod"]
    assert record["environment"]["image"] == "ghcr.io/example/ml-runtime:1"
    assert record["parameters"] == {"name": "ab", "factor": 2}
    assert record["metrics"]["series"] == [{"step": 1, "loss": 0.5}]  # each row once
    notebook = Path(record["outputs"]["notebook"])
    assert notebook.is_file() and "abab" not in notebook.read_text()  # executed copy, kept
    assert "scaled" in notebook.read_text()
    assert dag_pods(k8s_clean, dag_id) == []


def test_failures_and_bad_input_in_pod_mode(profiles, k8s_clean, run_dag, dags_folder):
    mark = k8s_clean.mark()
    write_notebook(dags_folder / "pod_nbs" / "boom.ipynb", ["raise ValueError('bad batch 17')"])
    (dags_folder / "pod_nbs" / "broken.ipynb").write_text("{not a notebook")
    src = textwrap.dedent(
        """
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.notebook import NotebookOperator

        with DAG("nb_pod_failures", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            NotebookOperator(task_id="boom", notebook="pod_nbs/boom.ipynb", compute="cpu-small")
            NotebookOperator(task_id="broken", notebook="pod_nbs/broken.ipynb", compute="cpu-small")
        """
    )
    result = run_dag(src, "nb_pod_failures")
    assert result.task_states() == {"boom": "failed", "broken": "failed"}
    record = result.xcom("boom", "execution_record")
    assert record["status"] == "failed"
    assert "bad batch 17" in Path(record["outputs"]["notebook"]).read_text()
    with pytest.raises(KeyError):  # invalid notebook: refused before any pod was created
        result.xcom("broken", "execution_record")
    created = [
        r for r in k8s_clean.requests_since(mark) if r.method == "POST" and str(r.url).endswith("/pods")
    ]
    assert len(created) == 1
    assert dag_pods(k8s_clean, "nb_pod_failures") == []


@pytest.mark.r
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is installed by make setup / .ci/run")
def test_r_script_and_report_in_pods(profiles, k8s_clean, run_dag, dags_folder):
    rdir = dags_folder / "pod_r"
    rdir.mkdir(exist_ok=True)
    (rdir / "fit.R").write_text(
        'source(Sys.getenv("MLPLATFORM_R_RUNTIME"))\nrecord("total", sum(unlist(params$xs)))\nlog_metrics(n = length(params$xs))\n'
    )
    (rdir / "report.Rmd").write_text(
        "---\ntitle: r\noutput: html_document\nparams:\n  total: 0\n---\n\n"
        "```{r}\nsource(Sys.getenv('MLPLATFORM_R_RUNTIME'))\nrecord('doubled', params$total * 2)\n```\n"
    )
    src = textwrap.dedent(
        """
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.rstudio import RStudioJobOperator

        with DAG("r_pods", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            fit = RStudioJobOperator(task_id="fit", script="pod_r/fit.R", parameters={"xs": [1, 2, 3.5]},
                                     compute="cpu-small")
            RStudioJobOperator(task_id="report", script="pod_r/report.Rmd", compute="cpu-small",
                               parameters={"total": fit.output["total"]}, deferrable=True)
        """
    )
    result = run_dag(src, "r_pods")
    assert result.task_states() == {"fit": "success", "report": "success"}
    assert result.xcom("fit") == {"total": 6.5}
    assert result.xcom("fit", "metrics") == {"n": 3}
    assert result.xcom("report") == {"doubled": 13}
    record = result.xcom("report", "execution_record")
    assert record["where"]["backend"] == "kubernetes"
    assert Path(record["outputs"]["report"]).is_file()
    assert dag_pods(k8s_clean, "r_pods") == []


def test_r_pod_with_object_storage_outputs_is_refused_before_any_pod(
    profiles, k8s_clean, run_dag, dags_folder, monkeypatch
):
    (dags_folder / "pod_r").mkdir(exist_ok=True)
    (dags_folder / "pod_r" / "noop.R").write_text("1\n")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__OUTPUT_BASE", "s3://bucket/mlplatform")
    mark = k8s_clean.mark()
    src = textwrap.dedent(
        """
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.rstudio import RStudioJobOperator

        with DAG("r_pod_s3", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            RStudioJobOperator(task_id="noop", script="pod_r/noop.R", compute="cpu-small")
        """
    )
    result = run_dag(src, "r_pod_s3")
    assert result.task_states() == {"noop": "failed"}
    assert not [r for r in k8s_clean.requests_since(mark) if r.method == "POST"]


def test_a_notebook_pod_task_that_is_killed_records_status_killed(profiles, k8s_clean, run_dag, dags_folder):
    import signal

    # the cell, in the pod, does what a user marking the task failed causes: SIGTERM to the
    # task process (here the test process, which dag.test() runs the task in)
    write_notebook(
        dags_folder / "pod_nbs" / "marked_failed.ipynb",
        [
            ("parameters", "worker_pid = 0"),
            "import os, signal, time\nos.kill(worker_pid, signal.SIGTERM)\ntime.sleep(120)",
        ],
    )
    src = textwrap.dedent(
        """
        import os
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.notebook import NotebookOperator

        with DAG("nb_pod_killed", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            NotebookOperator(task_id="killed", notebook="pod_nbs/marked_failed.ipynb",
                             parameters={"worker_pid": os.getpid()}, compute="cpu-small", deferrable=False)
        """
    )
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: pytest.fail("SIGTERM reached the test process"))
    try:
        result = run_dag(src, "nb_pod_killed")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.task_states() == {"killed": "failed"}
    record = result.xcom("killed", "execution_record")
    assert record["status"] == "killed"
    assert record["error"].startswith("stopped: the task was killed: Airflow asked it to stop (SIGTERM")
    assert dag_pods(k8s_clean, "nb_pod_killed") == []
