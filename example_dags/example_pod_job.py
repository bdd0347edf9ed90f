"""Run a Python snippet in a pod picked by compute profile; its recorded values flow downstream.

Uses the profile ``cpu-small`` of the configured profiles file (``[mlplatform] compute_profiles``)
when it defines one, else the one in ``compute_profiles.yaml`` next to this file (logged), so the
example imports in a fresh deployment. Running it needs a Kubernetes connection
``kubernetes_default``.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_mlplatform.compute import ComputeProfile, get_profile, load_profiles
from airflow_mlplatform.operators.pod import MLPlatformPodOperator

EXAMPLE_PROFILES = Path(__file__).with_name("compute_profiles.yaml")


def example_profile(name: str) -> str | ComputeProfile:
    """``name`` when the configured profiles file defines it, else that profile from EXAMPLE_PROFILES."""
    if name in load_profiles() or not EXAMPLE_PROFILES.exists():
        return name  # an unknown name still fails with the error that says where to define it
    logging.getLogger(__name__).info(
        "example_pod_job: profile %r is not in [mlplatform] compute_profiles; using %s",
        name,
        EXAMPLE_PROFILES,
    )
    return get_profile(name, path=str(EXAMPLE_PROFILES))


CPU_SMALL = example_profile("cpu-small")

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
        compute=CPU_SMALL,
        parameters={"decay": 0.5},
    )
    check = MLPlatformPodOperator(
        task_id="check",
        command=[PYTHON, "-u", "-c", CHECK],
        compute=CPU_SMALL,
        compute_overrides={"limits": {"memory": "256Mi"}},
        parameters={"loss": train.output["final_loss"], "threshold": 0.2},
        deferrable=True,
    )
    train >> check
