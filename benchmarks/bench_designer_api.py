"""Designer API latency, through Airflow's api-server app with its real auth manager.

* validate round trip (``POST /mlplatform/api/designer/validate``) of a 200-step workflow
  (notebook and bash steps, references between steps, global params): median and p95 over
  N requests; target median <= 50 ms. Baseline in the same run: the validator alone
  (``validate_document``, no HTTP, no auth).
* catalog (``GET /mlplatform/api/designer/catalog``) of a dags folder with 1000 notebooks
  (each with a ``parameters`` cell): the first listing (every notebook inspected) and the
  cached listings (files only stat-ed), median of 5.

Usage: ``python benchmarks/bench_designer_api.py [--steps 200] [--notebooks 1000] [--runs 50]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import _plugin_bed

NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None, "outputs": [],
         "source": "alpha: float = 0.5  # regularisation\nepochs = 10\nname = 'run'\n"},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "from airflow_mlplatform.runtime import record\nrecord('score', alpha * epochs)\n"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}  # fmt: skip


def workflow(steps: int) -> dict:
    """A valid document with ``steps`` steps: a chain of notebook and bash steps, each notebook
    reading the previous notebook's output."""
    out = []
    for i in range(steps):
        if i % 2 == 0:
            step = {"id": f"s{i}", "type": "notebook", "notebook": "../nb/nb0000.ipynb",
                    "parameters": {"alpha": "${{ params.alpha }}", "epochs": i}, "outputs": ["score"]}  # fmt: skip
            if i:
                step["parameters"]["prev"] = f"${{{{ steps.s{i - 2}.outputs.score }}}}"
                step["depends_on"] = [f"s{i - 1}"]
        else:
            step = {"id": f"s{i}", "type": "bash", "command": f"echo {i}", "depends_on": [f"s{i - 1}"]}
        out.append(step)
    return {
        "version": 1,
        "id": "bench_wf",
        "params": {"alpha": {"type": "number", "default": 0.5}},
        "steps": out,
    }


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
    return f"median {statistics.median(xs) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--notebooks", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()

    root = _plugin_bed.HOME / "dags"
    (root / "nb").mkdir()
    text = json.dumps(NOTEBOOK)
    for i in range(args.notebooks):
        (root / "nb" / f"nb{i:04d}.ipynb").write_text(text)
    os.environ["AIRFLOW__MLPLATFORM__DESIGNER_ROOTS"] = str(root)
    os.environ["AIRFLOW__MLPLATFORM__WORKFLOWS_FOLDER"] = str(root / "workflows")
    (root / "workflows").mkdir()

    client, auth = _plugin_bed.client()
    from airflow_mlplatform.plugin.validation import validate_document

    doc = workflow(args.steps)
    body = {"document": doc}
    first = client.post("/mlplatform/api/designer/validate", json=body, headers=auth).json()
    assert first == {"valid": True, "errors": []}, first["errors"][:3]
    http, direct = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        r = client.post("/mlplatform/api/designer/validate", json=body, headers=auth)
        http.append(time.perf_counter() - t)
        assert r.status_code == 200
        t = time.perf_counter()
        validate_document(doc, base_dir=root / "workflows")
        direct.append(time.perf_counter() - t)
    size = len(json.dumps(body))
    print(
        f"validate round trip, {args.steps}-step workflow ({size / 1024:.0f} KB JSON), {args.runs} requests"
    )
    print(f"  through the API (HTTP + auth + validator): {_ms(http)}")
    print(f"  validator alone (baseline):                {_ms(direct)}")
    print(f"  ratio API / validator (medians): {statistics.median(http) / statistics.median(direct):.2f}")
    print(f"  target median <= 50 ms: {'met' if statistics.median(http) <= 0.050 else 'NOT met'}")

    t = time.perf_counter()
    r = client.get("/mlplatform/api/designer/catalog", headers=auth)
    cold = time.perf_counter() - t
    n = len(r.json()["files"])
    assert n == args.notebooks, n
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        client.get("/mlplatform/api/designer/catalog", headers=auth)
        warm.append(time.perf_counter() - t)
    print(f"catalog of {n} notebooks (parameters cell inspected with papermill's translator)")
    print(
        f"  first listing:  {cold * 1000:8.1f} ms ({cold / n * 1e6:.0f} us per notebook; incl. papermill import)"
    )
    print(f"  cached listing: {statistics.median(warm) * 1000:8.1f} ms (median of 5; files only stat-ed)")
    print(f"  ratio first / cached: {cold / statistics.median(warm):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
