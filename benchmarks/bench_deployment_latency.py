"""A notebook task in a real deployment vs dag.test() vs the papermill CLI, same notebook, one run.

- Queue-to-first-cell: from the moment the scheduler queues the task (the task instance's
  ``queued_when``, from the REST API) to the moment the notebook's first cell runs (the cell
  writes ``time.time()`` to a file). In ``dag.test()`` there is no scheduler queue: the task's
  ``start_date`` is the start of the interval there.
- Task duration: the task instance's ``duration`` (start to end, as Airflow records it) in the
  real deployment, against the wall time of ``papermill in.ipynb out.ipynb`` on the same
  notebook. Target: ratio at most 1.2.

The deployment is tests/deployment/stack.py: private PostgreSQL, api-server, scheduler,
dag-processor and triggerer as separate processes, LocalExecutor.

    .venv/bin/python benchmarks/bench_deployment_latency.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.notebook import NotebookOperator

with DAG(dag_id="bench_latency", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    NotebookOperator(task_id="nb", notebook="bench_nbs/latency.ipynb",
                     parameters={"stamp_file": "{{ params.stamp_file }}"}, params={"stamp_file": ""})
"""

DAG_TEST = r"""
import json, sys, time
from pathlib import Path
from airflow.utils.db import initdb
initdb()
from airflow_mlplatform.testing import run_dag_file
result = run_dag_file(Path(sys.argv[1]), Path(sys.argv[1]) / "bench_latency.py", "bench_latency",
                      run_conf={"stamp_file": sys.argv[2]})
ti = result.dag_run.get_task_instances()[0]
print(json.dumps({"state": ti.state, "start": ti.start_date.timestamp(), "duration": ti.duration}))
"""


def write_notebook(dags: Path) -> Path:
    from nbtools import write_notebook as write

    return write(
        dags / "bench_nbs" / "latency.ipynb",
        [
            ("parameters", 'stamp_file = ""'),
            "import time\nopen(stamp_file, 'w').write(repr(time.time()))",
            "total = sum(i * i for i in range(100_000))\nprint(total)",
        ],
    )


def stamp(path: Path) -> float:
    return float(path.read_text())


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from deployment.stack import Deployment

    root = Path(tempfile.mkdtemp(prefix="bench-deployment-"))
    work = root / "work"
    work.mkdir()
    dep = Deployment(root / "deployment")
    dep.dags.mkdir(parents=True)
    (dep.dags / "bench_latency.py").write_text(DAG)
    notebook = write_notebook(dep.dags)
    real_latency, real_duration, cli_wall = [], [], []
    try:
        t0 = time.monotonic()
        dep.start(copy_examples=False)
        print(f"deployment started in {time.monotonic() - t0:.1f} s (PostgreSQL, migrate, 4 components)")
        for i in range(args.runs):
            stamp_file = work / f"real-{i}.txt"
            run_id = dep.trigger("bench_latency", {"stamp_file": str(stamp_file)})
            state = dep.wait_for_run("bench_latency", run_id, timeout=600)
            ti = dep.task_instance("bench_latency", run_id, "nb")
            if state != "success":
                raise SystemExit(f"run {run_id} ended {state}: {dep.log_tail('scheduler')}")
            real_latency.append(stamp(stamp_file) - ts(ti["queued_when"]))
            real_duration.append(float(ti["duration"]))
            out = work / f"cli-{i}.ipynb"  # the baseline, interleaved with the real runs
            started = time.monotonic()
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "papermill"),
                    str(notebook),
                    str(out),
                    "-p",
                    "stamp_file",
                    str(work / f"cli-{i}.txt"),
                    "--log-level",
                    "WARNING",
                ],
                check=True,
                capture_output=True,
            )
            cli_wall.append(time.monotonic() - started)
    finally:
        dep.stop()
    med = statistics.median
    print(f"notebook task, {args.runs} runs in the real deployment (LocalExecutor, PostgreSQL):")
    print(
        f"  queued -> first cell: median {med(real_latency):.2f} s  (runs: {', '.join(f'{x:.2f}' for x in real_latency)})"
    )
    print(
        f"  task duration: median {med(real_duration):.2f} s; papermill CLI wall: median {med(cli_wall):.2f} s"
    )
    ratio = med(real_duration) / med(cli_wall)
    print(
        f"  real deployment task / papermill CLI = {ratio:.2f}; target <= 1.2: {'OK' if ratio <= 1.2 else 'OVER'}"
    )

    home = root / "dagtest"
    dags = home / "dags"
    shutil.copytree(dep.dags, dags)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__MLPLATFORM__OUTPUT_BASE=str(home / "outputs"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    stamp_file = work / "dagtest.txt"
    proc = subprocess.run(
        [sys.executable, "-c", DAG_TEST, str(dags), str(stamp_file)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    dagtest = json.loads(proc.stdout.strip().splitlines()[-1])
    dagtest_latency = stamp(stamp_file) - dagtest["start"]
    shutil.rmtree(root, ignore_errors=True)

    print(
        f"dag.test(), same notebook, same run: task start -> first cell {dagtest_latency:.2f} s (no scheduler queue)"
    )
    print(
        f"  dag.test() task duration {dagtest['duration']:.2f} s = {dagtest['duration'] / med(cli_wall):.2f} x papermill CLI"
    )


if __name__ == "__main__":
    main()
