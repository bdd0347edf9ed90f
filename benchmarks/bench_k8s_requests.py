"""Kubernetes API requests per job lifecycle: ours vs the upstream KubernetesPodOperator.

Each job is the same pod (the worker's Python sleeping ``--seconds``), run for real with
``dag.test()`` against the test bed (API emulator + fake kubelet, tests/kube/serve.py, in its
own process, whose kubelet makes no API requests). Every request the server receives during
the run is counted. Ours is also run with a ``--short`` job to show the count does not grow
with the job's duration. With ``--kinds spark`` the same job is a SparkApplication
(SparkApplicationOperator; the fake Spark operator's driver is a real spark-submit; the
upstream SparkKubernetesOperator polls every 10 s). Target: at most 8 requests for ours.

    .venv/bin/python benchmarks/bench_k8s_requests.py [--seconds 60] [--short 10] [--skip-upstream]
        [--kinds pod,spark]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = Path(tempfile.mkdtemp(prefix="bench-k8s-req-home-"))
(HOME / "dags").mkdir()
os.environ["AIRFLOW_HOME"] = str(HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__MLPLATFORM__OUTPUT_BASE"] = str(HOME / "outputs")
PROFILES = HOME / "profiles.yaml"
PROFILES.write_text(
    "profiles:\n  cpu-small: {backend: kubernetes, image: python:3.11-slim, namespace: default}\n"
    "  spark-k8s: {backend: kubernetes, image: spark:3.5.5-python3, namespace: default}\n"
)
SPARK_JOB = HOME / "sleep_job.py"
SPARK_JOB.write_text(
    "import sys, time\nprint('working', flush=True)\ntime.sleep(int(sys.argv[1]))\n"
    'print(\'::mlplatform::record {"name": "slept", "value": \' + sys.argv[1] + \'}\', flush=True)\n'
)
os.environ["AIRFLOW__MLPLATFORM__COMPUTE_PROFILES"] = str(PROFILES)

OURS = """
import sys
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.pod import MLPlatformPodOperator

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    MLPlatformPodOperator(
        task_id="job",
        command=[sys.executable, "-c", "import time; print('working', flush=True); time.sleep({seconds})"],
        compute="cpu-small",
        deferrable={deferrable},
    )
"""

SPARK = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.spark import SparkApplicationOperator

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    SparkApplicationOperator(
        task_id="job",
        application="local://{job}",
        arguments=["{seconds}"],
        compute="spark-k8s",
        deferrable={deferrable},
    )
"""

UPSTREAM = """
import sys
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    KubernetesPodOperator(
        task_id="job",
        name="upstream-job",
        namespace="default",
        image="python:3.11-slim",
        cmds=[sys.executable, "-c", "import time; print('working', flush=True); time.sleep({seconds})"],
        get_logs={get_logs},
        deferrable={deferrable},
        poll_interval=2,
        on_finish_action="delete_pod",
        kubernetes_conn_id="kubernetes_default",
    )
"""


def start_bed() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "kube" / "serve.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def total(proc: subprocess.Popen) -> int:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("stats\n")
    proc.stdin.flush()
    return int(json.loads(proc.stdout.readline())["total"])


def run(proc: subprocess.Popen, source: str, dag_id: str) -> tuple[int, str, float]:
    import importlib.util

    path = HOME / "dags" / f"{dag_id}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(dag_id, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = total(proc)
    t0 = time.monotonic()
    dag_run = module.dag.test()
    elapsed = time.monotonic() - t0
    return total(proc) - before, str(dag_run.state), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--skip-upstream", action="store_true")
    parser.add_argument("--kinds", default="pod,spark", help="pod, spark or both")
    args = parser.parse_args()
    kinds = set(args.kinds.split(","))
    proc, info = start_bed()
    os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": info["kubeconfig"], "namespace": "default"}}
    )
    from airflow.utils.db import initdb

    initdb()
    cases = []
    if "pod" in kinds:
        cases += [
            ("ours, sync", OURS, {"deferrable": False}, args.short),
            ("ours, sync", OURS, {"deferrable": False}, args.seconds),
            ("ours, deferrable", OURS, {"deferrable": True}, args.short),
            ("ours, deferrable", OURS, {"deferrable": True}, args.seconds),
        ]
    if "spark" in kinds:
        cases += [
            ("ours SparkApplication, sync", SPARK, {"deferrable": False}, args.short),
            ("ours SparkApplication, sync", SPARK, {"deferrable": False}, args.seconds),
            ("ours SparkApplication, deferrable", SPARK, {"deferrable": True}, args.short),
            ("ours SparkApplication, deferrable", SPARK, {"deferrable": True}, args.seconds),
        ]
    if not args.skip_upstream and "pod" in kinds:
        cases += [
            (
                "upstream KPO, sync, get_logs=False",
                UPSTREAM,
                {"deferrable": False, "get_logs": False},
                args.seconds,
            ),
            (
                "upstream KPO, sync, get_logs=True",
                UPSTREAM,
                {"deferrable": False, "get_logs": True},
                args.seconds,
            ),
            (
                "upstream KPO, deferrable (poll 2 s)",
                UPSTREAM,
                {"deferrable": True, "get_logs": False},
                args.seconds,
            ),
        ]
    rows = []
    try:
        for i, (label, template, kwargs, seconds) in enumerate(cases):
            dag_id = f"bench_req_{i}"
            n, state, elapsed = run(
                proc, template.format(dag_id=dag_id, seconds=seconds, job=SPARK_JOB, **kwargs), dag_id
            )
            rows.append((label, seconds, n, state, elapsed))
            print(
                f"{label:<40} job {seconds:>3} s: {n:>4} API requests  ({state}, {elapsed:.0f} s)", flush=True
            )
    finally:
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(30)
    print()
    print("| operator | job length | API requests per lifecycle | run state |")
    print("| --- | --- | --- | --- |")
    for label, seconds, n, state, _ in rows:
        print(f"| {label} | {seconds} s | {n} | {state} |")


if __name__ == "__main__":
    main()
