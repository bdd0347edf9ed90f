"""The in-container entry point, run as a real process the way a pod runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from airflow_mlplatform.values import parse_stdout
from nbtools import write_notebook


def test_entry_point_reports_each_value_and_metric_once(tmp_path):
    nb = write_notebook(
        tmp_path / "job.ipynb",
        [
            ("parameters", "k = 1"),
            "import json\nfrom airflow_mlplatform.runtime import record\n"
            "print(json.dumps({'loss': 0.5}))\nrecord('k2', k * 2)",
        ],
    )
    spec = {"notebook": str(nb), "output_location": str(tmp_path / "out"), "parameters": {"k": 21}}
    env = {**os.environ, "MLPLATFORM_JOB_SPEC": json.dumps(spec)}
    out = subprocess.run(
        [sys.executable, "-m", "airflow_mlplatform.runners.notebook_job"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # a pod's log merges both streams
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    parsed = parse_stdout(out.stdout)
    assert parsed.values == {"k2": 42}
    assert parsed.metric_rows == [{"loss": 0.5}]
    assert "Executing Cell 2" in out.stdout  # progress still reaches the log
    assert (tmp_path / "out" / "job.ipynb").is_file()


def test_entry_point_bad_input_exits_2(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{nope")
    spec = {"notebook": str(bad), "output_location": str(tmp_path / "out")}
    out = subprocess.run(
        [sys.executable, "-m", "airflow_mlplatform.runners.notebook_job"],
        env={**os.environ, "MLPLATFORM_JOB_SPEC": json.dumps(spec)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "not a valid Jupyter notebook" in out.stderr
