"""``mlplatform runs compare`` over N stored execution records (target: <= 1 s for 1000).

Writes N records of one task (one run each; every record with M metric lines of 3 metrics,
and 4 parameters) the way jobs.run_recorded stores them, then times, medians of R rounds:

- baseline: find and json-load every record file (the least any reader must do);
- iter_records + compare + text table (what the command prints);
- the same plus the HTML report, reading every record's metric series (how the command did it);
- the same, reading the series of the runs the report draws only (``MAX_LINES``, the command now);
- the whole ``mlplatform runs compare`` process, interpreter start included.

Usage: ``python benchmarks/bench_runs_compare.py [--records 1000] [--points 50] [--rounds 5]``.
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


def generate(base: str, records: int, points: int) -> None:
    """``records`` stored records of task ``train`` in DAG ``bench``."""
    from airflow_mlplatform import execution_record as er
    from airflow_mlplatform.jobs import store_record
    from airflow_mlplatform.storage import OutputFolder, output_location

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(records):
        folder = OutputFolder(output_location(dag_id="bench", run_id=f"manual__{i:05d}", task_id="train",
                                              map_index=-1, try_number=1, base=base))  # fmt: skip
        rows = [{"step": s, "loss": 1 / (s + 1 + i % 7), "accuracy": 0.5 + s / (2 * points), "lr": 0.01}
                for s in range(points)]  # fmt: skip
        started = t0 + timedelta(minutes=i)
        record = {
            "schema_version": er.SCHEMA_VERSION, "status": "success",
            "task": {"dag_id": "bench", "task_id": "train", "run_id": f"manual__{i:05d}", "map_index": -1, "try_number": 1},
            "code": {"notebook": "/dags/train.ipynb", "sha256": f"{i % 3:064x}", "git_commit": None},
            "data": {"inputs": {}}, "environment": {"python": "3.11"},
            "parameters": {"C": 0.1 * (1 + i % 10), "seed": i, "penalty": "l2", "max_iter": 100},
            "values": {"accuracy": rows[-1]["accuracy"]},
            "metrics": {"summary": rows[-1], "series": rows},
            "outputs": {"record": folder.uri(er.RECORD_FILE)},
            "timings": {"started": started.isoformat(), "ended": (started + timedelta(seconds=9)).isoformat(), "duration_s": 9.0},
            "where": {"backend": "local", "hostname": "worker-1"},
        }  # fmt: skip
        store_record(folder, record)


def median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from airflow_mlplatform.record_store import iter_records
    from airflow_mlplatform.runs_compare import compare, text_table
    from airflow_mlplatform.runs_report import MAX_LINES, report_html

    with tempfile.TemporaryDirectory(prefix="mlplatform-bench-compare-") as tmp:
        base = str(Path(tmp) / "outputs")
        generate(base, args.records, args.points)

        def baseline() -> None:
            for root, _dirs, files in os.walk(base):
                if "execution_record.json" in files:
                    with open(os.path.join(root, "execution_record.json")) as f:
                        json.load(f)

        state: dict = {}

        def table(series: bool | int = False) -> None:
            records = iter_records(base=base, dag_id="bench", task_id="train")
            state["c"] = compare(records, dag_id="bench", task_id="train", series=series)
            state["t"] = text_table(state["c"])

        def with_html(series: bool | int) -> None:
            table(series)
            state["h"] = report_html(state["c"])

        b = median_time(baseline, args.rounds)
        t = median_time(table, args.rounds)
        h_all = median_time(lambda: with_html(True), args.rounds)
        html_all = state["h"]
        h = median_time(lambda: with_html(MAX_LINES), args.rounds)
        assert state["h"] == html_all  # the same report
        cli = [sys.executable, "-m", "airflow_mlplatform.cli", "runs", "compare", "bench", "train", "--base", base,
               "--html", str(Path(tmp) / "r.html")]  # fmt: skip
        p = median_time(
            lambda: subprocess.run(cli, check=True, capture_output=True), max(1, args.rounds // 2)
        )
        assert len(state["c"].rows) == args.records
        print(
            f"records: {args.records}, metric lines per record: {args.points}, rounds: {args.rounds} (medians)"
        )
        print(f"baseline (find + json.load every record):     {b:.3f} s")
        print(f"iter_records + compare + text table:          {t:.3f} s  ({t / b:.2f}x baseline)")
        print(
            f"  + HTML report ({len(state['h']) / 1e6:.1f} MB), every series (before): {h_all:.3f} s  ({h_all / b:.2f}x baseline)"
        )
        print(
            f"  + HTML report, drawn runs' series only (now): {h:.3f} s  ({h / b:.2f}x baseline, {h / h_all:.2f}x before)"
        )
        print(f"whole `mlplatform runs compare --html` process: {p:.3f} s  (target <= 1 s)")


if __name__ == "__main__":
    main()
