"""Model registration overhead and tracking cost, on the embedded MLflow store (SQLite).

- Registration: ``RegisterModelOperator.execute(context)`` (artifact check, lineage tags,
  idempotency lookup, the execution record stored and pushed) vs the bare MLflow client calls
  it makes (create model, search by key, create run, upload, create version, end run), same
  process, same store, interleaved, median of N. Target: ratio at most 1.2.
- Tracking: ``tracking.log_record`` of one task's record with 1000 metric points (run, params,
  batched metrics, the record as an artifact), median of N. Target: at most 0.5 s.

    .venv/bin/python benchmarks/bench_model_registry.py [--runs 15]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HOME = Path(tempfile.mkdtemp(prefix="mlplatform-bench-models-"))
os.environ["AIRFLOW_HOME"] = str(HOME)
os.environ["AIRFLOW__MLPLATFORM__OUTPUT_BASE"] = str(HOME / "outputs")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"


class TI:
    dag_id, task_id, map_index, try_number = "bench_models", "register", -1, 1
    task = type("T", (), {"multiple_outputs": True})()

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.xcoms: dict = {}

    def xcom_push(self, key, value):
        self.xcoms[key] = value

    def xcom_pull(self, **kwargs):
        return None


def bare(client, hook, artifact: Path, i: int) -> None:
    from mlflow.exceptions import MlflowException

    with contextlib.suppress(MlflowException):
        client.create_registered_model("bench-bare")
    client.search_model_versions(f"name = 'bench-bare' and tags.`mlplatform.key` = 'bare{i}'")
    run = client.create_run(hook.experiment_id("bench_models"))
    client.log_artifact(run.info.run_id, str(artifact), artifact_path="model")
    client.create_model_version(
        "bench-bare",
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"mlplatform.key": f"bare{i}"},
    )
    client.set_terminated(run.info.run_id)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    from airflow_mlplatform import tracking
    from airflow_mlplatform.hooks.mlflow import MLflowHook
    from airflow_mlplatform.operators.models import RegisterModelOperator

    artifact = HOME / "model.pkl"
    artifact.write_bytes(os.urandom(200_000))
    hook = MLflowHook()
    client = hook.get_conn()
    op = RegisterModelOperator(task_id="register", model_name="bench-op", artifact=str(artifact))
    # warm both paths once (imports, experiment, registered models, packages hash)
    bare(client, hook, artifact, -1)
    op.execute({"ti": TI("warm"), "params": {}})
    ours, base = [], []
    for i in range(args.runs):
        t0 = time.perf_counter()
        bare(client, hook, artifact, i)
        t1 = time.perf_counter()
        out = op.execute({"ti": TI(f"run{i}"), "params": {}})
        t2 = time.perf_counter()
        assert out["version"] >= 1
        base.append(t1 - t0)
        ours.append(t2 - t1)
    b, o = statistics.median(base), statistics.median(ours)
    print(f"registration, bare MLflow client calls: median {b * 1000:.1f} ms ({args.runs} runs)")
    print(f"registration, RegisterModelOperator:    median {o * 1000:.1f} ms")
    print(f"registration overhead ratio: {o / b:.2f} (target <= 1.2)")

    record_file = HOME / "execution_record.json"
    record = {
        "status": "success",
        "task": {
            "dag_id": "bench_tracking",
            "task_id": "train",
            "run_id": "r",
            "map_index": -1,
            "try_number": 1,
        },
        "code": {"sha256": "ab" * 32},
        "parameters": {f"p{i}": i for i in range(20)},
        "metrics": {"summary": {}, "series": [{"step": i, "loss": 1 / (i + 1)} for i in range(1000)]},
        "outputs": {"record": str(record_file)},
        "where": {"backend": "local"},
    }
    record_file.write_text(json.dumps(record))
    tracking.log_record(hook, record, {})  # warm
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        tracking.log_record(hook, record, {})
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    from mlflow.entities import Metric

    points = [Metric("loss", 1 / (i + 1), 0, i) for i in range(1000)]
    bare_times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        run = client.create_run(hook.experiment_id("bench_tracking"))
        client.log_batch(run.info.run_id, metrics=points)
        client.set_terminated(run.info.run_id)
        bare_times.append(time.perf_counter() - t0)
    print(f"tracking one task with 1000 metric points: median {t:.3f} s (target <= 0.5 s)")
    print(
        f"  MLflow's own create_run + log_batch(1000) + end, same store: median {statistics.median(bare_times):.3f} s"
    )
    print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
