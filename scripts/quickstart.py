"""Run the quickstart ML pipeline end to end on the embedded default (SQLite, all local).

    make quickstart            # or: .venv/bin/python scripts/quickstart.py [--C 0.5]

Prints where the output notebooks and execution records went.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _configure() -> Path:
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "example_dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__MLPLATFORM__OUTPUT_BASE", str(home / "mlplatform" / "outputs"))
    # kernels must find this environment's Python first
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--C", type=float, default=None, help="inverse regularisation strength (DAG param C)")
    parser.add_argument(
        "--workflow",
        action="store_true",
        help="run the same pipeline built from example_dags/workflows/quickstart_ml_pipeline.yaml",
    )
    args = parser.parse_args(argv)
    home = _configure()

    from airflow.utils.db import initdb

    initdb()  # creates or upgrades the SQLite DB under AIRFLOW_HOME; cheap when it exists

    from airflow_mlplatform.testing import DagResult, load_dag

    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if args.workflow:
        dag = load_dag(folder / "workflows_loader.py", "quickstart_ml_pipeline_workflow")
    else:
        dag = load_dag(folder / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline")
    conf = {"C": args.C} if args.C is not None else None
    result = DagResult(dag_run=dag.test(run_conf=conf), dag_id=dag.dag_id)

    print(f"\n=== {dag.dag_id}: {result.state} ===")
    print(f"AIRFLOW_HOME: {home}")
    for task_id, state in result.task_states().items():
        print(f"\n[{task_id}] {state}")
        try:
            record = result.xcom(task_id, "execution_record")
        except KeyError:
            continue
        print(f"  output notebook:  {record['outputs'].get('notebook')}")
        print(f"  execution record: {record['outputs'].get('record')}")
        print(f"  recorded values:  {json.dumps(record['values'])}")
        if record["metrics"]["summary"]:
            print(f"  metrics:          {json.dumps(record['metrics']['summary'])}")
    return 0 if result.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
