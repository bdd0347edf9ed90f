"""Run a Python snippet in a pod picked by compute profile; its recorded values flow downstream.

Needs a profiles file (``[mlplatform] compute_profiles``) defining ``cpu-small`` with
``backend: kubernetes`` and a Kubernetes connection ``kubernetes_default``.
"""

from __future__ import annotations

import sys
from datetime import datetime

from airflow.sdk import DAG

from airflow_mlplatform.operators.pod import MLPlatformPodOperator

TRAIN = r"""
import json, os
params = json.loads(os.environ["MLPLATFORM_PARAMETERS"])
loss = 1.0
for epoch in range(params["epochs"]):
    loss = loss * params["decay"]
    print(json.dumps({"epoch": epoch, "loss": round(loss, 4)}), flush=True)
print("::mlplatform::record " + json.dumps({"name": "final_loss", "value": round(loss, 4)}), flush=True)
"""

CHECK = r"""
import json, os, sys
params = json.loads(os.environ["MLPLATFORM_PARAMETERS"])
print("final loss from upstream:", params["loss"], flush=True)
sys.exit(0 if params["loss"] < params["threshold"] else 1)
"""

# The image's python in a real cluster; the test bed's fake kubelet runs the worker's interpreter.
PYTHON = sys.executable if "pytest" in sys.modules else "python"

with DAG(
    dag_id="example_pod_job",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={"epochs": 3},
    tags=["mlplatform", "kubernetes"],
) as dag:
    train = MLPlatformPodOperator(
        task_id="train",
        command=[PYTHON, "-u", "-c", TRAIN],
        compute="cpu-small",
        parameters={"decay": 0.5},
    )
    check = MLPlatformPodOperator(
        task_id="check",
        command=[PYTHON, "-u", "-c", CHECK],
        compute="cpu-small",
        compute_overrides={"limits": {"memory": "256Mi"}},
        parameters={"loss": train.output["final_loss"], "threshold": 0.2},
        deferrable=True,
    )
    train >> check
