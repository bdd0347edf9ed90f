"""Parse cost of workflow files with Airflow's DagBag: airflow-mlplatform vs dag-factory.

Writes N workflow files of 10 steps each (3 notebook, 4 bash, 3 python steps; global params;
values passed from step to step; a task group) in our format, and the equivalent YAML for
dag-factory (astronomer's YAML-to-DAG library: same operators, same parameters, Jinja
``xcom_pull`` for the values, explicit dependencies). Then, in the same run, each library in
its own fresh Python process (so dag-factory's Airflow plugin is loaded only in its own):

* layout "per-file": one small loader .py per workflow file (as Airflow's dag processor
  parses files one by one: the per-file duration is what ``dagbag_import_timeout`` limits);
* layout "one-loader": one loader .py that builds every workflow of the folder.

Printed: seconds per workflow file (mean, median, p95, max from DagBag's own per-file stats),
the total, and the first file separately (it pays the library's import). Airflow itself and
the operator modules are imported before the clock starts, in both processes.

Usage: ``python benchmarks/bench_workflow_parse.py [--files 500] [--keep DIR]``. dag-factory
is installed on first use into a folder of its own under the temp dir (``pip install
--target``), so it never lands in the project's environment (it registers an Airflow plugin).
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
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGFACTORY_DIR = Path(tempfile.gettempdir()) / "mlplatform-bench-dagfactory"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "p",
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": ["x = 1"],
        },
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
STEPS_MODULE = '''\
"""Callables of the benchmark's python steps."""


def produce(n=3):
    return {"numbers": list(range(n)), "count": n}


def consume(numbers=None, scale=1.0):
    return {"total": sum(numbers or []) * scale}
'''


def ours(i: int) -> str:
    """Workflow file ``i`` in our format."""
    return textwrap.dedent(f"""\
        version: 1
        id: bench_ours_{i:04d}
        description: Benchmark workflow {i}
        schedule: null
        start_date: 2026-01-01
        catchup: false
        tags: [bench]
        default_args: {{owner: bench, retries: 1, retry_delay: 1m}}
        params:
          scale: {{type: number, default: 2.0, description: A factor}}
          n: {{type: integer, default: 3}}
        groups:
          modelling: {{tooltip: Models}}
        steps:
          - id: produce
            type: python
            callable: bench_steps:produce
            parameters: {{n: "${{{{ params.n }}}}"}}
            outputs: [numbers, count]
          - id: consume
            type: python
            callable: bench_steps:consume
            parameters: {{numbers: "${{{{ steps.produce.outputs.numbers }}}}", scale: "${{{{ params.scale }}}}"}}
            outputs: [total]
          - id: nb_a
            type: notebook
            group: modelling
            notebook: nb.ipynb
            parameters: {{x: "${{{{ steps.produce.outputs.count }}}}"}}
            outputs: [y]
          - id: nb_b
            type: notebook
            group: modelling
            notebook: nb.ipynb
            parameters: {{x: "${{{{ steps.nb_a.outputs.y }}}}", label: run {i}}}
            outputs: [y]
            retries: 2
          - id: nb_c
            type: notebook
            group: modelling
            notebook: nb.ipynb
            parameters: {{x: "${{{{ steps.consume.outputs.total }}}}"}}
            timeout: 10m
          - id: echo_a
            type: bash
            command: echo "total=${{{{ steps.consume.outputs.total }}}}"
          - id: echo_b
            type: bash
            command: echo b
            depends_on: [nb_b]
          - id: echo_c
            type: bash
            command: echo "$Y"
            parameters: {{Y: "${{{{ steps.nb_b.outputs.y }}}}"}}
          - id: check
            type: python
            callable: bench_steps:consume
            parameters: {{numbers: [1, 2, 3]}}
            depends_on: [echo_a, echo_b, echo_c, nb_c]
          - id: done
            type: bash
            command: echo done
            depends_on: [check]
        """)


def dagfactory(i: int, folder: Path) -> str:
    """The same workflow for dag-factory (Jinja for values, explicit dependencies)."""
    nb = str(folder / "nb.ipynb")

    def pull(task: str, key: str) -> str:
        return "\"{{ ti.xcom_pull(task_ids='%s', key='%s') }}\"" % (task, key)  # noqa: UP031

    return textwrap.dedent(f"""\
        bench_df_{i:04d}:
          description: Benchmark workflow {i}
          schedule: null
          catchup: false
          tags: [bench]
          default_args:
            owner: bench
            retries: 1
            retry_delay: {{__type__: datetime.timedelta, seconds: 60}}
            start_date: 2026-01-01
          params: {{scale: 2.0, n: 3}}
          task_groups:
            - group_name: modelling
              tooltip: Models
          tasks:
            - task_id: produce
              operator: airflow.providers.standard.operators.python.PythonOperator
              python_callable: bench_steps.produce
              op_kwargs: {{n: "{{{{ params.n }}}}"}}
              multiple_outputs: true
            - task_id: consume
              operator: airflow.providers.standard.operators.python.PythonOperator
              python_callable: bench_steps.consume
              op_kwargs: {{numbers: {pull("produce", "numbers")}, scale: "{{{{ params.scale }}}}"}}
              multiple_outputs: true
              dependencies: [produce]
            - task_id: nb_a
              operator: airflow_mlplatform.operators.notebook.NotebookOperator
              task_group_name: modelling
              notebook: {nb}
              parameters: {{x: {pull("produce", "count")}}}
              dependencies: [produce]
            - task_id: nb_b
              operator: airflow_mlplatform.operators.notebook.NotebookOperator
              task_group_name: modelling
              notebook: {nb}
              parameters: {{x: {pull("nb_a", "y")}, label: run {i}}}
              retries: 2
              dependencies: [nb_a]
            - task_id: nb_c
              operator: airflow_mlplatform.operators.notebook.NotebookOperator
              task_group_name: modelling
              notebook: {nb}
              parameters: {{x: {pull("consume", "total")}}}
              execution_timeout: {{__type__: datetime.timedelta, seconds: 600}}
              dependencies: [consume]
            - task_id: echo_a
              operator: airflow.providers.standard.operators.bash.BashOperator
              bash_command: echo "total={{{{ ti.xcom_pull(task_ids='consume', key='total') }}}}"
              append_env: true
              dependencies: [consume]
            - task_id: echo_b
              operator: airflow.providers.standard.operators.bash.BashOperator
              bash_command: echo b
              append_env: true
              dependencies: [nb_b]
            - task_id: echo_c
              operator: airflow.providers.standard.operators.bash.BashOperator
              bash_command: echo "$Y"
              env: {{Y: {pull("nb_b", "y")}}}
              append_env: true
              dependencies: [nb_b]
            - task_id: check
              operator: airflow.providers.standard.operators.python.PythonOperator
              python_callable: bench_steps.consume
              op_kwargs: {{numbers: [1, 2, 3]}}
              dependencies: [echo_a, echo_b, echo_c, nb_c]
            - task_id: done
              operator: airflow.providers.standard.operators.bash.BashOperator
              bash_command: echo done
              append_env: true
              dependencies: [check]
        """)


OURS_FILE = """\
# airflow dag loader: one workflow
from pathlib import Path

from airflow_mlplatform.workflow import load_workflow

dag = load_workflow(Path(__file__).with_name("{name}.yaml"))
"""
OURS_FOLDER = """\
# airflow dag loader: every workflow of the folder
from pathlib import Path

from airflow_mlplatform.workflow import load_workflows

load_workflows(Path(__file__).parent / "workflows", globals())
"""
DF_FILE = """\
# airflow dag loader (dag-factory): one workflow
from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), config_filepath=str(Path(__file__).with_name("{name}.yaml")))
"""
DF_FOLDER = """\
# airflow dag loader (dag-factory): every workflow of the folder
from pathlib import Path

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).parent / "workflows"))
"""

MEASURE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from pathlib import Path
import airflow.sdk
import airflow.providers.standard.operators.bash, airflow.providers.standard.operators.python
import airflow_mlplatform.operators.notebook
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
t0 = time.perf_counter()
bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder)
total = time.perf_counter() - t0
stats = [(s.file, s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration)
         for s in bag.dagbag_stats]
print(json.dumps({"total": total, "dags": len(bag.dags), "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                  "errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()}, "stats": stats}))
"""


def ensure_dagfactory() -> Path:
    """dag-factory in a folder of its own (never in the project's environment)."""
    if not (DAGFACTORY_DIR / "dagfactory").is_dir():
        uv = Path(sys.executable).with_name("uv")
        cmd = (
            [str(uv), "pip", "install", "--python", sys.executable]
            if uv.is_file()
            else [sys.executable, "-m", "pip", "install"]
        )
        subprocess.run(
            [*cmd, "--quiet", "--target", str(DAGFACTORY_DIR), "--no-deps", "dag-factory>=1.0"], check=True
        )
    return DAGFACTORY_DIR


def write_tree(root: Path, n: int) -> dict[str, Path]:
    """Four dags folders: (ours|dagfactory) x (per-file|one-loader)."""
    folders = {}
    for lib in ("ours", "dagfactory"):
        for layout in ("per-file", "one-loader"):
            f = root / f"{lib}-{layout}"
            (f / "workflows").mkdir(parents=True)
            (f / "bench_steps.py").write_text(STEPS_MODULE)
            for sub in (f, f / "workflows"):
                (sub / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
            for i in range(n):
                name = f"wf_{i:04d}"
                target = f if layout == "per-file" else f / "workflows"
                text = ours(i) if lib == "ours" else dagfactory(i, target)
                (target / f"{name}.yaml").write_text(text)
                if layout == "per-file":
                    loader = OURS_FILE if lib == "ours" else DF_FILE
                    (f / f"{name}.py").write_text(loader.format(name=name))
            if layout == "one-loader":
                (f / "loader.py").write_text(OURS_FOLDER if lib == "ours" else DF_FOLDER)
            folders[f"{lib}-{layout}"] = f
    return folders


def measure(folder: Path, extra_path: Path | None) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(folder)
    env.setdefault("AIRFLOW_HOME", str(folder.parent / "airflow-home"))
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring {folder} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(name: str, r: dict, n: int) -> str:
    per = sorted(d for _, d in r["stats"])
    first = max(r["stats"], key=lambda s: s[1])[1] if r["stats"] else 0.0
    if len(per) > 1:
        p95 = per[min(len(per) - 1, int(0.95 * len(per)))]
        return (
            f"{name:24s} {r['dags']:4d} DAGs {r['tasks']:5d} tasks | total {r['total']:7.2f} s | per file: "
            f"mean {r['total'] / n * 1000:7.1f} ms, median {statistics.median(per) * 1000:6.1f} ms, "
            f"p95 {p95 * 1000:6.1f} ms, max (first file, pays imports) {first * 1000:6.1f} ms"
        )
    return (
        f"{name:24s} {r['dags']:4d} DAGs {r['tasks']:5d} tasks | total {r['total']:7.2f} s in one file | "
        f"per workflow {r['total'] / n * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500, help="workflow files per library (default 500)")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()
    df_path = ensure_dagfactory()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-workflow-parse-"))
    try:
        folders = write_tree(root, args.files)
        import airflow

        print(f"airflow {airflow.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
              f"{args.files} workflow files x 10 steps per library")  # fmt: skip
        results = {}
        for key in ("dagfactory-per-file", "ours-per-file", "dagfactory-one-loader", "ours-one-loader"):
            r = measure(folders[key], df_path if key.startswith("dagfactory") else None)
            if r["errors"]:
                raise SystemExit(f"{key}: import errors: {json.dumps(r['errors'], indent=1)[:3000]}")
            if r["dags"] != args.files:
                raise SystemExit(f"{key}: {r['dags']} DAGs instead of {args.files}")
            results[key] = r
            print(summary(key, r, args.files))
        for layout in ("per-file", "one-loader"):
            a, b = results[f"ours-{layout}"]["total"], results[f"dagfactory-{layout}"]["total"]
            print(f"{layout}: ours / dag-factory = {a / b:.2f} (lower is faster)")
        from airflow.sdk import conf

        timeout = conf.getfloat("core", "dagbag_import_timeout")
        worst = max(d for k, r in results.items() if k.endswith("per-file") for _, d in r["stats"])
        print(f"dagbag_import_timeout = {timeout:.0f} s; slowest single workflow file: {worst:.3f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
