"""Job files shipped to pods: on the Kubernetes test bed (emulator + fake kubelet that runs the
pod's command as a local process), the notebook is removed from the worker's path once its pod
exists, before the pod's process starts, so only a shipped copy can run."""

from __future__ import annotations

import shutil
import textwrap
import threading
import time

import pytest

from airflow_mlplatform.exceptions import ConfigurationError
from airflow_mlplatform.job_files import ShipPlan, check_mode
from airflow_mlplatform.specs import pod as podspec
from nbtools import write_notebook

PROFILES = """
profiles:
  cpu-small:
    backend: kubernetes
    image: ghcr.io/example/ml-runtime:1
"""

NOTEBOOK = [
    ("parameters", "original = ''"),
    "import os\nfrom airflow_mlplatform.runtime import record\n"
    "record('original_exists', os.path.exists(original))\nrecord('cwd', os.getcwd())",
]


def test_ship_modes_are_checked_and_targets_are_pure(tmp_path):
    with pytest.raises(ConfigurationError, match="ship='zip' is not a way"):
        check_mode("zip")
    plan = ShipPlan(source="/dags/nbs/train.ipynb", location="s3://bucket/out/d/r/t/try-1", mode="file")
    assert plan.target == "s3://bucket/out/d/r/t/try-1/_job/train.ipynb"
    image = ShipPlan(source="/dags/nbs/train.ipynb", location="s3://b/o", mode="image")
    assert image.target == "/dags/nbs/train.ipynb" and image.files() == []


def test_notebooks_run_from_the_shipped_copy_when_the_image_lacks_them(
    tmp_path, monkeypatch, k8s_clean, run_dag, dags_folder, capsys
):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(profiles))
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__SHIP_MAX_BYTES", str(64 * 1024))
    monkeypatch.setattr(k8s_clean.kubelet, "start_delay", 1.0)  # time to remove the worker's copy
    base = dags_folder / "ship_nbs"
    shutil.rmtree(base, ignore_errors=True)
    folders = {task: base / task for task in ("shipfile", "shipfolder", "image", "toolarge")}
    for folder in folders.values():
        write_notebook(folder / "job.ipynb", NOTEBOOK)
    write_notebook(  # ship="folder": the notebook imports a module that sits beside it
        folders["shipfolder"] / "job.ipynb",
        [*NOTEBOOK, "import helper\nrecord('helped', helper.VALUE)"],
    )
    (folders["shipfolder"] / "helper.py").write_text("VALUE = 42\n")
    (folders["toolarge"] / "data.bin").write_bytes(b"x" * 100_000)

    removed: dict[str, float] = {}
    stop = threading.Event()

    def remove_when_the_pod_exists() -> None:  # the pod's image does not have the notebook
        key = podspec.label_key("task_id")
        while not stop.is_set():
            for pod in k8s_clean.pods():
                task = pod["metadata"]["labels"].get(key)
                if task in folders and task not in removed:
                    shutil.rmtree(folders[task])
                    removed[task] = time.monotonic()
            time.sleep(0.02)

    watcher = threading.Thread(target=remove_when_the_pod_exists, daemon=True)
    watcher.start()
    tasks = "\n".join(
        f'    NotebookOperator(task_id="{task}", notebook="ship_nbs/{task}/job.ipynb", compute="cpu-small",'
        f' ship="{mode}", parameters={{"original": "{folders[task] / "job.ipynb"}"}})'
        for task, mode in (
            ("shipfile", "file"),
            ("shipfolder", "folder"),
            ("image", "image"),
            ("toolarge", "folder"),
        )
    )
    src = (
        textwrap.dedent(
            """
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.notebook import NotebookOperator

        with DAG("ship_job_files", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        """
        )
        + tasks
    )
    try:
        result = run_dag(src, "ship_job_files")
    finally:
        stop.set()
        watcher.join(5)
    assert result.task_states() == {
        "shipfile": "success",
        "shipfolder": "success",
        "image": "failed",
        "toolarge": "failed",
    }
    for task in ("shipfile", "shipfolder"):
        values = result.xcom(task)
        assert values["original_exists"] is False  # the worker's copy was gone when the pod ran
        assert values["cwd"].endswith("/_job")
        record = result.xcom(task, "execution_record")
        assert record["code"]["shipped"] == ("file" if task == "shipfile" else "folder")
        assert record["code"]["sha256"]
    assert result.xcom("shipfolder", "helped") == 42
    assert set(removed) == {"shipfile", "shipfolder", "image"}  # no pod for the refused folder
    # the baked-in mode still reads the image's path: bad input (exit 2), the notebook is not there
    assert "failed (exit code 2)" in result.xcom("image", "execution_record")["error"]
    out = capsys.readouterr().out
    assert "ship='folder' would copy more than 65536 bytes" in out
    with pytest.raises(KeyError):  # refused before any pod was created
        result.xcom("toolarge", "execution_record")
