"""Kubernetes API requests per job lifecycle, every kind: ours vs the upstream KubernetesPodOperator.

Each job is the worker's Python sleeping ``--seconds``, as a pod, as a TFJob (one Worker) and as
a DaskJob (its runner pod, next to a one-worker Dask cluster), run for real with ``dag.test()``
against the test bed (API emulator + fake kubelet + fake training and Dask operators,
tests/kube/serve.py --kinds, in its own process; the fakes make no API requests). Every request
the server receives during the run is counted. Each is also run with a ``--short`` job to show
the count does not grow with the job's duration. With ``--kinds`` including ``spark`` the job is
also a SparkApplication (SparkApplicationOperator; the fake Spark operator's driver is a real
spark-submit; the upstream SparkKubernetesOperator polls every 10 s). Target: at most 8 requests
for ours, every kind.

    .venv/bin/python benchmarks/bench_k8s_requests.py [--seconds 60] [--short 10] [--skip-upstream]
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
    "  dask: {backend: kubernetes, image: ghcr.io/dask/dask:2026.8.0-py3.11, namespace: default}\n"
    "  spark-k8s: {backend: kubernetes, image: spark:3.5.5-python3, namespace: default}\n"
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

TFJOB = """
import sys
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.tfjob import TFJobOperator

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    TFJobOperator(
        task_id="job",
        command=[sys.executable, "-c", "import time; print('working', flush=True); time.sleep({seconds})"],
        image="tensorflow/tensorflow:2.16.1",
        replicas={{"Worker": 1}},
        namespace="default",
        deferrable={deferrable},
    )
"""

DASKJOB = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.rapids import RapidsDaskOperator

with DAG("{dag_id}", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    RapidsDaskOperator(
        task_id="job",
        script="{script}",
        cluster="kubernetes",
        compute="dask",
        n_workers=1,
        parameters={{"seconds": {seconds}}},
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
SPARK_JOB = HOME / "spark_sleep_job.py"
SPARK_JOB.write_text(
    "import sys, time\nprint('working', flush=True)\ntime.sleep(int(sys.argv[1]))\n"
    'print(\'::mlplatform::record {"name": "slept", "value": \' + sys.argv[1] + \'}\', flush=True)\n'
)
SCRIPT = HOME / "sleep_job.py"
SCRIPT.write_text(
    "import json, os, time\n"
    "print('working', flush=True)\n"
    "time.sleep(json.loads(os.environ['MLPLATFORM_PARAMETERS'])['seconds'])\n"
)

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
        [sys.executable, str(REPO / "tests" / "kube" / "serve.py"), "--kinds"],
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
    parser.add_argument("--kinds", default="pod,TFJob,DaskJob,spark", help="comma-separated kinds to run")
    args = parser.parse_args()
    kinds = set(args.kinds.split(","))
    proc, info = start_bed()
    os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": info["kubeconfig"], "namespace": "default"}}
    )
    from airflow.utils.db import initdb

    initdb()
    cases = []
    for kind, template in (("pod", OURS), ("TFJob", TFJOB), ("DaskJob", DASKJOB), ("spark", SPARK)):
        if kind not in kinds:
            continue
        for deferrable in (False, True):
            mode = "deferrable" if deferrable else "sync"
            for seconds in (args.short, args.seconds):
                cases.append((f"ours, {kind}, {mode}", template, {"deferrable": deferrable}, seconds))
    if not args.skip_upstream:
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
            source = template.format(dag_id=dag_id, seconds=seconds, script=SCRIPT, job=SPARK_JOB, **kwargs)
            n, state, elapsed = run(proc, source, dag_id)
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
