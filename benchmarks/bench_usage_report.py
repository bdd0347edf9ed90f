"""``mlplatform usage`` over 100,000 stored execution records (a month of a 1000-DAG platform).

Writes ``--records`` version 2 records (tests/usage_records.py: pods of two profiles, two tenants,
spread over 30 days) into a local store in the storage layout, then runs the real command in a
fresh process, three ways, and prints wall seconds and the process's peak memory (RSS):

* the baseline of the same run: ``record_store.iter_records`` reading every record (the full
  scan of the storage layout), without summing;
* the first ``mlplatform usage`` on that store: its date index does not exist yet, so the full
  scan runs once and writes it (``record_index.rebuild``), then each day is folded into its
  rollup, cached beside it (``record_store.fold_days``);
* the month from the index without the rollups (deleted first): 100,000 index lines read and
  folded (what a report of days nobody asked for yet costs);
* the month again (``--by tenant,profile,dag``, rates, CSV and HTML written): the cached rollups;
* one week of it (``--since/--until``: only those days of the index are read).

Target: the month in under 10 s on this machine.

    .venv/bin/python benchmarks/bench_usage_report.py [--records 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RATES = "currency: EUR\nresources: {cpu: 0.04, memory: 0.005, gpu: 2.5, A100: 3.2}\n"
READ_ONLY = (
    "import sys; from airflow_mlplatform.record_store import iter_records; "
    "print(sum(1 for _ in iter_records(base=sys.argv[1])), 'records read')"
)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the child (``wait4``), and its output."""
    with tempfile.TemporaryFile("w+") as out:
        begun = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - begun
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode:
        raise SystemExit(f"{argv} failed:\n{text}")
    return wall, usage.ru_maxrss / 1024, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keep", help="write the store here and keep it (default: a temp folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from usage_records import START, platform

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-usage-"))
    base = root / "records"
    index = base / ".usage-index"
    if index.exists():
        shutil.rmtree(index)  # measure the first run too
    if not (base.exists() and any(base.iterdir())):
        begun = time.perf_counter()
        platform(base, n=args.records, start=START)
        print(f"wrote {args.records} records in {time.perf_counter() - begun:.1f} s")
    rates = root / "rates.yaml"
    rates.write_text(RATES)
    env = {**os.environ, "AIRFLOW_HOME": str(root / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    cli = [sys.executable, "-m", "airflow_mlplatform.cli", "usage", "--base", str(base)]
    month = [*cli, "--since", "2026-11-01", "--until", "2026-12-01"]

    def drop_rollups() -> None:
        for path in index.glob("*.usage-rollup-*.json"):
            path.unlink()

    cases = [
        ("baseline: iter_records, full scan, read only", [sys.executable, "-c", READ_ONLY, str(base)], None),
        ("usage, month, first run (builds index + day rollups)", month, None),
        ("usage, month, index without rollups (folds 100k lines)", month, drop_rollups),
        ("usage, month, cached rollups, by tenant,profile,dag, rates, CSV, HTML", [
            *month, "--by", "tenant,profile,dag", "--rates", str(rates),
            "--csv", str(root / "u.csv"), "--html", str(root / "u.html"),
        ], None),
        ("usage, one week, by tenant", [*cli, "--since", "2026-11-08", "--until", "2026-11-15"], None),
    ]  # fmt: skip
    begun = time.perf_counter()
    sum(i * i for i in range(3_000_000))
    print(
        f"machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; a fixed "
        f"pure-Python loop took {time.perf_counter() - begun:.2f} s (how busy the shared CPUs are)"
    )
    print(f"{'case':<72} {'seconds':>8} {'peak MiB':>9}")
    for name, argv, prepare in cases:
        if prepare is not None:
            prepare()
        wall, peak, out = run(argv, env)
        print(f"{name:<72} {wall:8.2f} {peak:9.0f}")
        last = [line for line in out.splitlines() if line.strip()][-1]
        print(f"    {last[:110]}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
