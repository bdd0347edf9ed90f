"""Scala notebook overhead: NotebookOperator vs the papermill CLI on the same trivial Scala notebook.

Both sides run the same 2-cell Scala notebook on the Apache Toree kernel (the Spark context
included, as the kernel is installed), from a fresh process, interleaved, median of N runs:
- baseline: wall time of ``papermill in.ipynb out.ipynb -p x 2``;
- ours: ``NotebookOperator.execute(context)`` in a fresh interpreter (papermill import included),
  plus the bare interpreter start measured separately (as bench_notebook_overhead.py does).

Also printed: how long the kernel takes to start (a Toree kernel started with jupyter_client
until it answers ``kernel_info``: the JVM, the Scala interpreter and the SparkContext) and the
JVM start alone (``java -version``). Target: ratio at most 1.2.

    .venv/bin/python benchmarks/bench_scala_notebook.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import airflow.sdk
from airflow_mlplatform.operators.notebook import NotebookOperator

class TI:
    dag_id, task_id, run_id, map_index, try_number = "bench", "nb", "manual__bench", -1, 1
    task = type("T", (), {"multiple_outputs": True})()
    def __init__(self): self.xcoms = {}
    def xcom_push(self, key, value): self.xcoms[key] = value

op = NotebookOperator(task_id="nb", notebook=sys.argv[1], parameters={"x": 2}, kernel_name="apache_toree_scala",
                      start_timeout=300)
t0 = time.perf_counter()
ret = op.execute({"ti": TI(), "params": {}})
t1 = time.perf_counter()
assert ret == {"y": 4}, ret
print("BENCH " + json.dumps({"execute": t1 - t0}))
"""


def trivial_notebook(folder: Path) -> Path:
    import nbformat as nbf

    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "apache_toree_scala", "display_name": "Scala", "language": "scala"}
    nb.metadata["language_info"] = {"name": "scala"}
    params = nbf.v4.new_code_cell("val x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbf.v4.new_code_cell(
            'println("::mlplatform::record {\\"name\\":\\"y\\",\\"value\\":" + x * 2 + "}")'
        ),
    ]
    path = folder / "trivial_scala.ipynb"
    nbf.write(nb, str(path))
    return path


def run_cli(nb: Path, out: Path) -> float:
    papermill = Path(sys.executable).parent / "papermill"
    t0 = time.perf_counter()
    subprocess.run(
        [str(papermill), str(nb), str(out), "-p", "x", "2", "--no-progress-bar", "--start-timeout", "300"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def run_ours(nb: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(nb)], check=True, capture_output=True, text=True, env=env
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH "))
    return float(json.loads(line[len("BENCH ") :])["execute"])


def python_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def kernel_start() -> float:
    """Seconds until a fresh Toree kernel answers kernel_info (JVM + Scala interpreter + Spark)."""
    from jupyter_client.manager import start_new_kernel

    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="apache_toree_scala", startup_timeout=300)
    elapsed = time.perf_counter() - t0
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return elapsed


def jvm_start() -> float:
    t0 = time.perf_counter()
    subprocess.run(["java", "-version"], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scala-"))
    nb = trivial_notebook(tmp)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp / "home"),
        "AIRFLOW__MLPLATFORM__OUTPUT_BASE": str(tmp / "outputs"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    os.environ.update(env)
    cli, ours, py, kernel, jvm = [], [], [], [], []
    for i in range(args.runs):
        cli.append(run_cli(nb, tmp / f"cli-{i}.ipynb"))
        ours.append(run_ours(nb, env))
        py.append(python_start())
        kernel.append(kernel_start())
        jvm.append(jvm_start())
    m_cli, m_ours, m_py = statistics.median(cli), statistics.median(ours), statistics.median(py)
    m_kernel, m_jvm = statistics.median(kernel), statistics.median(jvm)
    print(f"trivial Scala notebook (2 cells, Toree kernel), median of {args.runs} interleaved runs")
    print(f"  papermill CLI, whole process                        {m_cli:7.2f} s")
    print(f"  NotebookOperator.execute() + bare interpreter start {m_ours + m_py:7.2f} s")
    print(f"  of which: Toree kernel start (JVM, Scala, Spark)    {m_kernel:7.2f} s")
    print(f"            bare JVM start (java -version)            {m_jvm:7.2f} s")
    print(f"ratio ours / papermill CLI: {(m_ours + m_py) / m_cli:.3f}   (target <= 1.2)")
    print(f"kernel start share of the CLI run: {m_kernel / m_cli:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
