"""Every example DAG file imports in a fresh deployment: a new AIRFLOW_HOME, no [mlplatform] config.

Run in a child process: Airflow reads its configuration once, at first import, and this test's
process is configured by tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag  # the dags folder on sys.path, as in the dag-processor
from airflow.serialization.serialized_objects import DagSerialization
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
for dag in bag.dags.values():
    DagSerialization.to_dict(dag)  # what the dag-processor stores for the scheduler
print(json.dumps({"errors": {k: v[-500:] for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}))
"""


def test_every_example_dag_imports_in_a_fresh_deployment(tmp_path):
    home = tmp_path / "airflow"
    dags = home / "dags"
    shutil.copytree(REPO / "example_dags", dags)  # what the README tells a new user to do
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLPLATFORM"))}
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags), AIRFLOW__CORE__LOAD_EXAMPLES="False"
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(dags)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    expected = {p.stem for p in (REPO / "example_dags").glob("*.py")} - {"workflows_loader", "workflow_steps"}
    expected |= {f"{p.stem}_workflow" for p in (REPO / "example_dags" / "workflows").glob("*.yaml")}
    assert set(found["dags"]) == expected
    assert "profile 'cpu-small' is not in [mlplatform] compute_profiles; using" in proc.stdout + proc.stderr
