"""Import cost of the provider for DAG parsing.

Measures, in fresh interpreters, what importing every module of airflow_mlplatform adds
after ``import airflow.sdk`` (which every DAG file pays anyway), and which heavy libraries
it loads. For scale, the same for the upstream KubernetesPodOperator module and for
papermill itself (what the upstream PapermillOperator module pulls in).
Target: at most 50 ms added, none of papermill/nbformat/kubernetes/pandas/requests loaded.

    .venv/bin/python benchmarks/bench_import_cost.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

HEAVY = (
    "papermill",
    "nbformat",
    "nbclient",
    "kubernetes",
    "kubernetes_asyncio",
    "pandas",
    "numpy",
    "requests",
    "httpx",
    "dask",
    "distributed",
    "tensorflow",
    "jsonschema",
    "valohai_yaml",
)

CHILD = r"""
import importlib, json, pkgutil, sys, time
import airflow.sdk  # the baseline every DAG file pays
from airflow.sdk import BaseOperator  # resolve the SDK's lazy names first
before = set(sys.modules)
t0 = time.perf_counter()
target = sys.argv[1]
if target in ("provider", "operators"):
    import airflow_mlplatform
    names = [m.name for m in pkgutil.walk_packages(airflow_mlplatform.__path__, "airflow_mlplatform.")]
    if target == "operators":
        names = [n for n in names if n.startswith("airflow_mlplatform.operators.")]
    for n in names:
        importlib.import_module(n)
else:
    importlib.import_module(target)
dt = time.perf_counter() - t0
new = {m.split(".")[0] for m in set(sys.modules) - before}
print(json.dumps({"seconds": dt, "new_top_level": sorted(new)}))
"""


def compile_bytecode() -> None:
    """Write .pyc files for the packages measured, as ``pip install`` of a wheel does.

    (This environment sets PYTHONDONTWRITEBYTECODE and uv installs without compiling, so
    without this step every fresh interpreter would pay for compiling sources too.)
    """
    import compileall
    import importlib.util

    for name in (
        "airflow_mlplatform",
        "airflow",
        "kubernetes",
        "kubernetes_asyncio",
        "papermill",
        "nbformat",
        "nbclient",
        "jupyter_client",
        "requests",
        "urllib3",
        "yaml",
        "pydantic",
    ):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                compileall.compile_dir(folder, quiet=2, workers=2)


def measure(target: str, runs: int) -> tuple[float, list[str]]:
    times, new = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, target], capture_output=True, text=True, check=True
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        times.append(data["seconds"])
        new = data["new_top_level"]
    return statistics.median(times), new


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = [
        ("airflow_mlplatform (every module)", "provider"),
        ("airflow_mlplatform operators (what a DAG file imports)", "operators"),
        ("upstream KubernetesPodOperator module", "airflow.providers.cncf.kubernetes.operators.pod"),
        ("papermill (what PapermillOperator imports)", "papermill"),
    ]
    compile_bytecode()
    results = {}
    print("bytecode compiled first, as a wheel install does")
    print(f"median of {args.runs} fresh interpreters, time added after `import airflow.sdk`")
    for label, target in rows:
        seconds, new = measure(target, args.runs)
        results[target] = (seconds, new)
        heavy = [m for m in HEAVY if m in new]
        print(f"  {label:55s} {seconds * 1000:8.1f} ms   heavy modules loaded: {', '.join(heavy) or 'none'}")
    ours, ours_new = results["provider"]
    kpo = results["airflow.providers.cncf.kubernetes.operators.pod"][0]
    print(f"ratio provider / KubernetesPodOperator module: {ours / kpo:.3f}")
    heavy = [m for m in HEAVY if m in ours_new]
    ok = ours <= 0.050 and not heavy
    print(f"target (<= 50 ms, no heavy module): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
