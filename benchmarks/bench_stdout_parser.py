"""The stdout parser and reference marking at scale, before and after, measured in the same run.

Cases (each in a forked child bounded by ``RLIMIT_CPU``, CPU time and peak RSS from ``wait4``):

* one 100 MB line fed in 64 KiB chunks (a progress bar that never prints a newline), then a
  record line: the old parser joined the pending text with every chunk (quadratic), so it is
  also measured on 10 MB to show the growth;
* 1,000,000 short lines (half metrics rows) in 64 KiB chunks;
* reference marking: validating 10,000 steps that each reference the previous step's output.

"before" is another git revision's ``src/`` (``--before main``, via ``git archive``), "after" this
checkout. Usage: ``python benchmarks/bench_stdout_parser.py [--before main] [--cpu-s 120] [--case NAME]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHUNK = 64 * 1024
RECORD = '::mlplatform::record {"name": "acc", "value": 0.9}\n'


def _long_line(mb: int) -> None:
    from airflow_mlplatform.values import StreamParser

    parser = StreamParser()
    block = "#" * CHUNK
    for _ in range(mb * 1024 * 1024 // CHUNK):
        parser.feed(block)
    parser.feed("\n" + RECORD)
    assert parser.close().values == {"acc": 0.9}


def _short_lines() -> None:
    from airflow_mlplatform.values import StreamParser

    lines = "".join(
        f'{{"step": {i}, "loss": 0.5}}\n' if i % 2 else f"log line {i}\n" for i in range(1_000_000)
    )
    parser = StreamParser()
    for i in range(0, len(lines), CHUNK):
        parser.feed(lines[i : i + CHUNK])
    assert len(parser.close().metric_rows) == 500_000


def _references() -> None:
    from airflow_mlplatform.workflow.source import read_source
    from airflow_mlplatform.workflow.validate import check_source

    steps = "  - {id: s0, type: bash, command: x}\n" + "".join(
        f"  - {{id: s{i}, type: bash, command: 'echo ${{{{ steps.s{i - 1}.outputs.return_value }}}}'}}\n"
        for i in range(1, 10_000)
    )
    check_source(read_source(f"version: 1\nid: refs\nsteps:\n{steps}", file="refs.yaml"), base_dir=Path.cwd())


CASES = {
    "one 10 MB line": lambda: _long_line(10),
    "one 100 MB line": lambda: _long_line(100),
    "1,000,000 short lines": _short_lines,
    "reference marking, 10k steps": _references,
}


def worker(cpu_s: int, names: list[str]) -> None:
    """Run every case (or those named) in a bounded forked child; print one JSON line each."""
    from airflow_mlplatform.workflow.registry import STEP_TYPES

    STEP_TYPES["bash"].available()  # import Airflow and the operator before any clock starts
    for name, case in CASES.items():
        if names and name not in names:
            continue
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
            try:
                case()
            except BaseException as e:
                print(f"{name}: {type(e).__name__}: {e}"[:300], file=sys.stderr, flush=True)
                os._exit(1)
            os._exit(0)
        _, status, usage = os.wait4(pid, 0)
        if os.WIFSIGNALED(status):
            outcome = signal.Signals(os.WTERMSIG(status)).name
        else:
            outcome = "ok" if os.WEXITSTATUS(status) == 0 else "failed"
        print(json.dumps({
            "case": name, "outcome": outcome, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "wall_s": round(time.monotonic() - t0, 2), "peak_mb": round(usage.ru_maxrss / 1024),
        }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before",
        default="44e25aa",
        help="git revision measured as 'before' (default: the commit this work started from; '' to skip)",
    )
    parser.add_argument("--cpu-s", type=int, default=120, help="CPU seconds each case may use")
    parser.add_argument(
        "--case", action="append", default=[], choices=list(CASES), help="run only this case (repeatable)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.cpu_s, args.case)
        return
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="mlplatform-parser-") as tmp:
        versions = {"after": REPO / "src"}
        if args.before:
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.before, "src"], capture_output=True, check=False
            )
            if archive.returncode == 0:
                subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
                versions = {"before": Path(tmp) / "src", **versions}
        for version, src in versions.items():
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", "--cpu-s", str(args.cpu_s), *(f"--case={c}" for c in args.case)],
                env=dict(os.environ, PYTHONPATH=str(src)), capture_output=True, text=True, check=False, cwd=tmp,
            )  # fmt: skip
            results[version] = {r["case"]: r for r in map(json.loads, proc.stdout.splitlines()) if r}
            if proc.stderr.strip():
                print(f"{version}: {proc.stderr.strip()[-600:]}", file=sys.stderr)
    print(f"limit per case: {args.cpu_s} s CPU")
    head = f"{'case':30}"
    for v in results:
        head += f" | {v + ': outcome':>17} {'cpu s':>7} {'wall s':>7} {'peak MB':>8}"
    print(head + (" | cpu ratio before/after" if len(results) == 2 else ""))
    for name in [c for c in CASES if not args.case or c in args.case]:
        line = f"{name:30}"
        for v in results:
            r = results[v].get(name, {"outcome": "no result", "cpu_s": "-", "wall_s": "-", "peak_mb": "-"})
            line += f" | {r['outcome']:>17} {r['cpu_s']:>7} {r['wall_s']:>7} {r['peak_mb']:>8}"
        if len(results) == 2:
            b, a = (results[v].get(name, {}).get("cpu_s") for v in results)
            if isinstance(b, float) and isinstance(a, float) and a > 0:
                more = ">" if results["before"][name]["outcome"] != "ok" else ""
                line += f" | {more}{b / a:.1f}x"
        print(line)


if __name__ == "__main__":
    main()
