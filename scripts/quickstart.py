"""Run the quickstart ML pipeline end to end on the embedded default (SQLite, all local).

    make quickstart            # or: .venv/bin/python scripts/quickstart.py [--C 0.5]

prepare -> train -> evaluate -> register -> promote-if-better; when the champion changed (its
Asset event queued ``quickstart_batch_scoring``), the scoring DAG runs and scores a batch with
the champion. Prints where the output notebooks and execution records went, the promotion
decision and the model version the scoring used.
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
    # the champion's Asset event queues runs of unpaused DAGs only (quickstart_batch_scoring)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
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
    _report(result, home)
    if result.state != "success":
        return 1
    return _score_if_champion_changed(result, folder)


def _queued_by_asset(dag_id: str) -> bool:
    """Whether an asset event queued a run of ``dag_id`` (what the scheduler would start)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count() > 0


def _score_if_champion_changed(result: object, folder: Path) -> int:
    from airflow_mlplatform.testing import DagResult, load_dag

    assert isinstance(result, DagResult)
    if "promote" not in result.task_states():
        return 0
    promote = result.xcom("promote")
    print(f"\n[promote] promoted={promote['promoted']}: {promote['reason']}")
    queued = _queued_by_asset("quickstart_batch_scoring")
    if not promote["promoted"]:
        print("The champion did not change: quickstart_batch_scoring is not triggered.")
        return 0
    print(f"The champion's Asset event queued quickstart_batch_scoring: {queued}")
    scoring = load_dag(folder / "quickstart_batch_scoring.py", "quickstart_batch_scoring")
    scored = DagResult(dag_run=scoring.test(), dag_id=scoring.dag_id)
    _report(scored, Path(os.environ["AIRFLOW_HOME"]))
    if scored.state == "success":
        used = scored.xcom("score", "execution_record").get("models", {}).get("used", [])
        for model in used:
            print(f"  scored with:      {model['name']}@{model['alias']} = version {model['version']}")
    from airflow_mlplatform.hooks.mlflow import MLflowHook

    store = MLflowHook().store
    if store.embedded:
        print(f"\nMLflow UI for the embedded store: mlflow ui --backend-store-uri {store.tracking_uri}")
    return 0 if scored.state == "success" else 1


def _report(result: object, home: Path) -> None:
    from airflow_mlplatform.testing import DagResult

    assert isinstance(result, DagResult)

    print(f"\n=== {result.dag_id}: {result.state} ===")
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


if __name__ == "__main__":
    sys.exit(main())
