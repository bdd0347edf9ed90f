"""NotebookOperator in real DAG runs (dag.test()), with real papermill and kernels."""

from __future__ import annotations

import json
import signal
import textwrap
from pathlib import Path

import psutil
import pytest

from memory_fs import memory_filesystem  # noqa: F401
from nbtools import write_notebook

DAG_HEADER = """
import datetime
import pendulum
from airflow.sdk import DAG, Param
from airflow_mlplatform.operators.notebook import NotebookOperator
"""


def test_values_flow_between_notebooks_with_types_params_and_jinja(run_dag, dags_folder):
    nbdir = dags_folder / "contract_nbs"
    write_notebook(
        nbdir / "produce.ipynb",
        [
            ("parameters", "greeting = 'default'\nscale = 1\nlocal_only = None"),
            "from airflow_mlplatform.runtime import record\n"
            "record('count', 3 * scale)\nrecord('ratio', 0.5)\nrecord('ok', True)\nrecord('nothing', None)\n"
            "record('labels', ['a', 'b'])\nrecord('config', {'depth': 2, 'greeting': greeting})\n"
            'record(\'local_only\', local_only)\nprint(\'{"step": 1, "loss": 0.7}\')\nprint(\'{"step": 2, "loss": 0.4}\')',
        ],
    )
    write_notebook(
        nbdir / "consume.ipynb",
        [
            (
                "parameters",
                "count = 0\nratio = 0.0\nok = False\nnothing = 1\nlabels = []\nconfig = {}\nrun = ''",
            ),
            "from airflow_mlplatform.runtime import record\n"
            "record('received', {'count': count, 'ratio': ratio, 'ok': ok, 'nothing': nothing, "
            "'labels': labels, 'config': config})\n"
            "record('types', [type(v).__name__ for v in (count, ratio, ok, nothing, labels, config)])\n"
            "record('run', run)",
        ],
    )
    src = DAG_HEADER + textwrap.dedent(
        """
        with DAG("nb_contract", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
                 params={"greeting": Param("hello global"), "scale": Param(1)}) as dag:
            produce = NotebookOperator(task_id="produce", notebook="contract_nbs/produce.ipynb",
                                       parameters={"scale": 2, "local_only": "{{ params.greeting | upper }}"})
            consume = NotebookOperator(
                task_id="consume", notebook="contract_nbs/consume.ipynb", include_dag_params=False,
                parameters={k: produce.output[k] for k in ("count", "ratio", "ok", "nothing", "labels", "config")}
                | {"run": "{{ run_id }}"},
            )
        """
    )
    result = run_dag(src, "nb_contract")
    assert result.task_states() == {"produce": "success", "consume": "success"}
    produced = result.xcom("produce")
    assert produced == {
        "count": 6,  # local scale=2 wins over global scale=1
        "ratio": 0.5,
        "ok": True,
        "nothing": None,
        "labels": ["a", "b"],
        "config": {"depth": 2, "greeting": "hello global"},
        "local_only": "HELLO GLOBAL",  # Jinja rendered
    }
    assert result.xcom_keys("produce") >= {*produced, "return_value", "metrics", "execution_record"}
    assert result.xcom("produce", "metrics") == {"step": 2, "loss": 0.4}
    record = result.xcom("produce", "execution_record")
    assert record["metrics"]["series"] == [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.4}]
    assert record["parameters"] == {"greeting": "hello global", "scale": 2, "local_only": "HELLO GLOBAL"}
    assert record["environment"]["kernel"] == "python3"
    assert record["environment"]["language_info"]["name"] == "python"
    assert len(record["code"]["sha256"]) == 64 and len(record["environment"]["packages_sha256"]) == 64

    consumed = result.xcom("consume")
    assert consumed["received"] == {k: produced[k] for k in consumed["received"]}
    assert consumed["types"] == ["int", "float", "bool", "NoneType", "list", "dict"]
    assert consumed["run"] == result.dag_run.run_id
    # the extra link points at this try's output notebook
    from airflow_mlplatform.links import main_output_uri

    link = main_output_uri(result.xcom("consume", "execution_record"))
    assert link.startswith("file://") and link.endswith("/consume/try-1/consume.ipynb")
    assert Path(link[len("file://") :]).is_file()


def test_failures_keep_the_notebook_and_name_the_cell(run_dag, dags_folder):
    nbdir = dags_folder / "failing_nbs"
    write_notebook(nbdir / "boom.ipynb", ["x = 1", "raise RuntimeError('model diverged at step 7')"])
    write_notebook(
        nbdir / "reserved.ipynb", ["from airflow_mlplatform.runtime import record\nrecord('metrics', 1)"]
    )
    write_notebook(
        nbdir / "sleepy.ipynb", ["import os, time\nprint('kernel pid', os.getpid())\ntime.sleep(300)"]
    )
    # a user marking the task failed: Airflow sends SIGTERM to the task process (the kernel's parent)
    write_notebook(
        nbdir / "marked_failed.ipynb",
        ["import os, signal, time\nos.kill(os.getppid(), signal.SIGTERM)\ntime.sleep(120)"],
    )
    write_notebook(nbdir / "oom.ipynb", ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    src = DAG_HEADER + textwrap.dedent(
        """
        with DAG("nb_failures", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            NotebookOperator(task_id="boom", notebook="failing_nbs/boom.ipynb")
            NotebookOperator(task_id="reserved", notebook="failing_nbs/reserved.ipynb")
            NotebookOperator(task_id="sleepy", notebook="failing_nbs/sleepy.ipynb",
                             execution_timeout=datetime.timedelta(seconds=8))
            NotebookOperator(task_id="missing", notebook="failing_nbs/nope.ipynb")
            NotebookOperator(task_id="marked_failed", notebook="failing_nbs/marked_failed.ipynb")
            NotebookOperator(task_id="oom", notebook="failing_nbs/oom.ipynb")
        """
    )
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    previous = signal.getsignal(signal.SIGTERM)
    # the task runner installs its own SIGTERM handler (on_kill) while a task runs
    signal.signal(signal.SIGTERM, lambda *_: pytest.fail("SIGTERM reached the test process"))
    try:
        result = run_dag(src, "nb_failures")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.task_states() == {
        "boom": "failed",
        "reserved": "failed",
        "sleepy": "failed",
        "missing": "failed",
        "marked_failed": "failed",
        "oom": "failed",
    }

    record = result.xcom("boom", "execution_record")
    assert record["status"] == "failed"
    assert "model diverged at step 7" in record["error"]
    saved = Path(record["outputs"]["notebook"])
    assert saved.is_file() and "model diverged at step 7" in saved.read_text()

    reserved_nb = Path(result.xcom("reserved", "execution_record")["outputs"]["notebook"]).read_text()
    assert "cannot record a value named 'metrics'" in reserved_nb

    assert record["error"].startswith("cell 2 of ")  # papermill's "Executing Cell 2"

    sleepy = result.xcom("sleepy", "execution_record")
    assert sleepy["status"] == "killed" and sleepy["timings"]["duration_s"] < 120
    assert sleepy["error"] == "stopped: the task ran longer than its execution_timeout (8 s)"
    killed = result.xcom("marked_failed", "execution_record")
    assert killed["status"] == "killed"
    assert killed["error"].startswith("stopped: the task was killed: Airflow asked it to stop (SIGTERM")
    died = result.xcom("oom", "execution_record")
    assert died["status"] == "failed"
    assert died["error"].startswith("the kernel died on its own while running cell 1 of ")
    assert "killed by SIGKILL" in died["error"] and "OOM killer" in died["error"]
    # bad input fails before anything runs: no output folder, no record
    with pytest.raises(KeyError):
        result.xcom("missing", "execution_record")
    # no kernel left behind by the timeout or the failures
    leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
    alive = [
        p for p in leftover if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive


@pytest.mark.usefixtures("memory_filesystem")
def test_output_notebook_and_output_base_accept_object_storage_uris(run_dag, dags_folder, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    write_notebook(
        dags_folder / "remote_nbs" / "hello.ipynb",
        ["from airflow_mlplatform.runtime import record\nrecord('hi', 'there')"],
    )
    src = DAG_HEADER + textwrap.dedent(
        """
        with DAG("nb_remote", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
            NotebookOperator(task_id="to_memory", notebook="remote_nbs/hello.ipynb",
                             output_notebook="memory://reports/{{ ds_nodash }}/hello-out.ipynb")
        """
    )
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__OUTPUT_BASE", "memory://mlplatform-out")
    result = run_dag(src, "nb_remote")
    assert result.task_states() == {"to_memory": "success"}
    record = result.xcom("to_memory", "execution_record")
    assert record["outputs"]["notebook"].startswith("memory://reports/")
    assert record["outputs"]["record"].startswith("memory://mlplatform-out/nb_remote/")
    assert "hello-out" in record["outputs"]["notebook"]
    stored = json.loads(ObjectStoragePath(record["outputs"]["record"]).read_text())
    assert stored["values"] == {"hi": "there"}
    assert json.loads(ObjectStoragePath(record["outputs"]["notebook"]).read_text())["cells"]
