"""Output viewer latency: ``GET /mlplatform/outputs/...`` of a try whose executed notebook has
N cells (code, printed output and a PNG image each), through Airflow's api-server app with
its real auth manager.

Printed: the first render (nbconvert), the cached page (same file: served from the render
cache), and the renderer alone (nbconvert, no HTTP, no auth) on the same notebook as the
baseline, medians; page and notebook sizes.

Usage: ``python benchmarks/bench_output_viewer.py [--cells 200] [--image-kb 20] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import time

import _plugin_bed


def notebook(cells: int, image_kb: int) -> str:
    """An executed notebook: each cell prints a line and displays a PNG of ``image_kb`` KB."""
    import nbformat

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(image_kb * 1024)).decode()
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    for i in range(cells):
        c = nbformat.v4.new_code_cell(f"x_{i} = compute({i})\nplot(x_{i})", execution_count=i + 1)
        c.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=f"step {i}: loss={1 / (i + 1):.4f}\n"),
            nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        ]
        nb.cells.append(c)
    return nbformat.writes(nb)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--image-kb", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    from airflow_mlplatform.storage import output_location

    client, auth = _plugin_bed.client()
    text = notebook(args.cells, args.image_kb)
    from airflow_mlplatform.plugin import render

    url = "/mlplatform/outputs/bench_dag/run_1/train/1"
    first = []
    cached = []
    for i in range(args.runs):
        # a new file each time (new mtime/size): the page renders it from scratch
        folder = output_location(
            dag_id="bench_dag", run_id="run_1", task_id="train", map_index=-1, try_number=1
        )
        os.makedirs(folder, exist_ok=True)
        nb_path = os.path.join(folder, "train-out.ipynb")
        with open(nb_path, "w") as f:
            f.write(text + " " * i)
        with open(os.path.join(folder, "execution_record.json"), "w") as f:
            json.dump({"status": "success", "task": {"try_number": 1}, "outputs": {"notebook": nb_path}}, f)
        t = time.perf_counter()
        r = client.get(url, headers=auth)
        first.append(time.perf_counter() - t)
        assert r.status_code == 200 and r.text.count("<img") >= args.cells, r.status_code
        t = time.perf_counter()
        client.get(url, headers=auth)
        cached.append(time.perf_counter() - t)
    alone = []
    for _ in range(args.runs):
        t = time.perf_counter()
        render.notebook_body(text)
        alone.append(time.perf_counter() - t)
    med = statistics.median
    print(f"output page of a {args.cells}-cell notebook with a {args.image_kb} KB PNG per cell "
          f"({len(text) / 1e6:.1f} MB ipynb, {len(r.text) / 1e6:.1f} MB page), median of {args.runs}")  # fmt: skip
    print(f"  first render through the API: {med(first) * 1000:8.1f} ms")
    print(f"  cached page through the API:  {med(cached) * 1000:8.1f} ms")
    print(f"  render alone, no HTTP (base): {med(alone) * 1000:8.1f} ms")
    print(f"  ratio first render / render alone: {med(first) / med(alone):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
