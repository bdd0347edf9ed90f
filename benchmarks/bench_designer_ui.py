"""The workflow designer's front end: bundle size and time to interactive in headless chromium.

- Bundle: the react_apps bundle (plugin/static/designer.js, which uses the host page's React)
  minified and gzipped, against the iframe page's bundle (the same app with its own React) as the
  baseline: the ratio is what not bundling React saves.
- Time to interactive: a logged-in chromium opens ``/plugin/workflow-designer`` in Airflow's UI of a
  real ``airflow api-server`` (simple auth manager) until the designer is usable (its toolbar and
  the catalog's notebooks are shown); baseline: Airflow's home page until its Welcome heading shows,
  measured in the same run, alternating, median of ``--runs``.

    make ui && .venv/bin/python benchmarks/bench_designer_ui.py [--runs 5]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "src" / "airflow_mlplatform" / "plugin" / "static"
_HOME = Path(tempfile.mkdtemp(prefix="bench-designer-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
sys.path.insert(0, str(REPO / "tests"))


def sizes(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9))


def bundle_figures() -> None:
    plugin = STATIC / "designer.js"
    standalone = sorted((STATIC / "designer-standalone" / "assets").glob("*.js"))
    if not plugin.is_file() or not standalone:
        raise SystemExit("the designer is not built: run `make ui` first")
    raw, gz = sizes(plugin)
    base_raw = base_gz = 0
    for js in standalone:
        r, g = sizes(js)
        base_raw, base_gz = base_raw + r, base_gz + g
    print(f"react_apps bundle designer.js: {raw / 1024:.1f} KiB minified, {gz / 1024:.1f} KiB gzipped")
    print(
        f"iframe page bundle (own React, baseline): {base_raw / 1024:.1f} KiB minified, {base_gz / 1024:.1f} KiB gzipped"
    )
    print(f"ratio react_apps / iframe: {raw / base_raw:.2f} minified, {gz / base_gz:.2f} gzipped")


def time_to(page, url: str, ready: str) -> float:
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(ready).first.wait_for(timeout=120_000)
    return time.perf_counter() - t0


def tti_figures(runs: int) -> None:
    from e2e.airflow_server import airflow_api_server
    from e2e.browser import chromium, login

    dags = _HOME / "dags"
    shutil.copytree(REPO / "example_dags" / "notebooks", dags / "notebooks")
    (dags / "workflows").mkdir()
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True
    )
    with airflow_api_server(_HOME, workflows_folder=dags / "workflows") as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        login(page, server.url, "admin", server.passwords["admin"])
        designer = f"{server.url}/plugin/workflow-designer"
        ready = "[data-testid='catalog-notebooks/train.ipynb']"
        time_to(page, designer, ready)  # warm: the app is built on the first request
        time_to(page, f"{server.url}/", "text=Welcome")
        ours, base = [], []
        for _ in range(runs):
            base.append(time_to(page, f"{server.url}/", "text=Welcome"))
            ours.append(time_to(page, designer, ready))
        o, b = statistics.median(ours), statistics.median(base)
        print(
            f"time to interactive, designer page: median {o * 1000:.0f} ms over {runs} loads (min {min(ours) * 1000:.0f} ms)"
        )
        print(
            f"time to interactive, Airflow's home page (baseline): median {b * 1000:.0f} ms (min {min(base) * 1000:.0f} ms)"
        )
        print(f"ratio designer / home page: {o / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bundle-only", action="store_true", help="skip the browser measurement")
    args = parser.parse_args()
    try:
        bundle_figures()
        if not args.bundle_only:
            tti_figures(args.runs)
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
