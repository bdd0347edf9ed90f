"""The value contract in real DAG runs: NaN/inf parameters, glued record lines, NaN metrics, a
secret parameter masked in the stored record, an oversized value failing with a failed record."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from nbtools import write_notebook

SECRET = "hunter2-very-secret-password"


def _record_file(xcom_record: dict) -> dict:
    return json.loads(Path(xcom_record["outputs"]["record"]).read_text())


def test_non_finite_glued_and_secret_values_in_a_notebook_run(run_dag, dags_folder, monkeypatch):
    from airflow.sdk.log import mask_secret

    monkeypatch.setenv("AIRFLOW_CONN_HARDEN_SECRET", json.dumps({"conn_type": "generic", "password": SECRET}))
    mask_secret(SECRET)  # what the task runner does when a template reads conn.x.password
    nbdir = dags_folder / "harden_nbs"
    write_notebook(
        nbdir / "nan.ipynb",
        [
            ("parameters", "lr = 0.1\nbig = 0.0\ncred = ''"),
            "import math\nfrom airflow_mlplatform.runtime import record\n"
            "print('epoch 1/3 ...', end='')\nrecord('acc', 0.9)\n"
            "record('lr_is_nan', math.isnan(lr))\nrecord('big_is_inf', math.isinf(big))\n"
            "record('cred_len', len(cred))\nprint('{\"loss\": NaN, \"step\": 1}')",
        ],
    )
    write_notebook(
        nbdir / "big.ipynb",
        [
            "import json\nprint('::mlplatform::record ' + json.dumps({'name': 'blob', 'value': 'x' * 2_000_000}))"
        ],
    )
    src = textwrap.dedent(
        """
        import pendulum
        from airflow.sdk import DAG, Param
        from airflow_mlplatform.operators.notebook import NotebookOperator

        with DAG("harden_values", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
                 params={"big": Param(float("inf"))}) as dag:
            NotebookOperator(task_id="nan", notebook="harden_nbs/nan.ipynb",
                             parameters={"lr": float("nan"), "cred": "{{ conn.harden_secret.password }}"})
            NotebookOperator(task_id="big", notebook="harden_nbs/big.ipynb")
        """
    )
    result = run_dag(src, "harden_values")
    states = result.task_states()
    assert states["nan"] == "success", states
    assert result.xcom("nan") == {"acc": 0.9, "lr_is_nan": True, "big_is_inf": True, "cred_len": len(SECRET)}
    assert result.xcom("nan", "metrics") == {"loss": None, "step": 1}
    xcom_record = result.xcom("nan", "execution_record")
    stored = _record_file(xcom_record)
    for record in (xcom_record, stored):
        assert record["status"] == "success"
        assert record["parameters"]["lr"] is None and record["parameters"]["big"] is None
        assert record["parameters"]["cred"] == "***"
        assert record["metrics"]["series"] == [{"loss": None, "step": 1}]
    text = Path(xcom_record["outputs"]["record"]).read_text()
    assert SECRET not in text and SECRET not in json.dumps(xcom_record)

    assert states["big"] == "failed"
    failed = result.xcom("big", "execution_record")
    assert failed["status"] == "failed" and failed["values"] == {}
    assert "over the limit of 1048576" in failed["error"] and "output_dir()" in failed["error"]
    assert _record_file(failed)["status"] == "failed"
    assert os.path.getsize(failed["outputs"]["record"]) < 100_000
