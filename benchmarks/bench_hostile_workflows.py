"""Hostile workflow files: CPU time, wall time and peak memory of validating each, before and after.

Generates the files of the hardening issue (alias bombs, deep nesting, a reversed 2,000-step
``depends_on`` chain, a non-UTF-8 file, 10,000 steps that each reference the previous one, a
20 MB workflow) and validates each with ``validate_files`` (what ``mlplatform workflow validate``
runs), once with this checkout's code ("after") and once with another git revision's
(``--before main`` by default: ``git archive`` of its ``src/`` into a temp folder).

Each version runs in a worker process that imports Airflow and the provider once; every file is
then validated in a forked child bounded by ``RLIMIT_AS`` (current size + ``--mem-gib``) and
``RLIMIT_CPU`` (``--cpu-s``), so a bad case ends as MemoryError, SIGXCPU or a signal instead of
eating the machine. CPU time and peak RSS come from ``wait4`` (the child's own rusage; peak RSS
includes the ~pages inherited from the worker: compare with the ``baseline`` row).

Usage: ``python benchmarks/bench_hostile_workflows.py [--before main] [--cpu-s 60] [--mem-gib 2]``.
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


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "version: 1\nid: bomb\nsteps: [{id: a, type: bash, command: x}]\nx:\n" + "".join(
        f"  {line}\n" for line in lines
    )


def cases() -> dict[str, bytes]:
    """Name -> file content."""
    head = "version: 1\nid: wf\nsteps:\n"
    chain = "".join(
        f"  - {{id: s{i}, type: bash, command: x, depends_on: [s{i + 1}]}}\n" for i in range(1999)
    )
    refs = "  - {id: s0, type: bash, command: x}\n" + "".join(
        f"  - {{id: s{i}, type: bash, command: 'echo ${{{{ steps.s{i - 1}.outputs.return_value }}}}'}}\n"
        for i in range(1, 10_000)
    )
    desc = "d" * 2000
    big = "".join(f"  - {{id: s{i}, type: bash, command: x, description: {desc}}}\n" for i in range(10_000))
    return {
        "baseline (1 valid step)": (head + "  - {id: a, type: bash, command: x}\n").encode(),
        "alias bomb, 9 levels": _bomb(9).encode(),
        "alias bomb, 7 levels": _bomb(7).encode(),
        "nesting 500 deep": (
            head + "  - {id: a, type: bash, command: x}\nx: " + "[" * 500 + "]" * 500 + "\n"
        ).encode(),
        "nesting 50,000 deep": ("x: " + "[" * 50_000 + "]" * 50_000 + "\n").encode(),
        "2,000-step chain, reversed": (head + chain + "  - {id: s1999, type: bash, command: x}\n").encode(),
        "non-UTF-8": (head + "  - {id: a, type: bash, command: caf\xe9}\n").encode("latin-1"),
        "10,000 steps, each referencing": (head + refs).encode(),
        "20 MB workflow": (head + big).encode(),
    }


def worker(folder: str, cpu_s: int, mem_gib: float) -> None:
    """Validate every file of ``folder`` in a bounded forked child; print one JSON line each."""
    from airflow_mlplatform.workflow import validate_files
    from airflow_mlplatform.workflow.registry import STEP_TYPES

    STEP_TYPES["bash"].available()  # import Airflow and the operator before any clock starts
    validate_files([Path(folder) / "0.yaml"])
    for path in sorted(Path(folder).glob("*.yaml"), key=lambda p: int(p.stem)):
        read_fd, write_fd = os.pipe()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: bounded, reports through the pipe
            os.close(read_fd)
            with open("/proc/self/status") as f:
                vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
            limit = vm + int(mem_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
            try:
                errors = validate_files([path])
                out = {
                    "outcome": "valid" if not errors else "error",
                    "message": str(errors[0])[:150] if errors else "",
                }
            except BaseException as e:
                out = {"outcome": type(e).__name__, "message": str(e)[:150]}
            os.write(write_fd, json.dumps(out).encode())
            os._exit(0)
        os.close(write_fd)
        _, status, usage = os.wait4(pid, 0)
        wall = time.monotonic() - t0
        with os.fdopen(read_fd) as f:
            raw = f.read()
        result = json.loads(raw) if raw else {}
        if os.WIFSIGNALED(status):
            result = {"outcome": signal.Signals(os.WTERMSIG(status)).name, "message": ""}
        result.update(
            case=int(path.stem),
            cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
            wall_s=round(wall, 2),
            peak_mb=round(usage.ru_maxrss / 1024),
        )
        print(json.dumps(result), flush=True)


def run_version(src: Path, folder: Path, cpu_s: int, mem_gib: float) -> dict[int, dict]:
    env = dict(os.environ, PYTHONPATH=str(src))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(folder), "--cpu-s", str(cpu_s), "--mem-gib", str(mem_gib)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["case"]] = row
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before",
        default="44e25aa",
        help="git revision measured as 'before' (default: the commit this work started from; '' to skip)",
    )
    parser.add_argument("--cpu-s", type=int, default=60, help="CPU seconds each case may use")
    parser.add_argument("--mem-gib", type=float, default=2.0, help="memory each case may add (GiB)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.cpu_s, args.mem_gib)
        return
    with tempfile.TemporaryDirectory(prefix="mlplatform-hostile-") as tmp:
        folder = Path(tmp) / "cases"
        folder.mkdir()
        generated = cases()
        names = list(generated)
        for i, content in enumerate(generated.values()):
            (folder / f"{i}.yaml").write_bytes(content)
        versions = {"after": REPO / "src"}
        if args.before:
            old = Path(tmp) / "before"
            old.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", args.before, "src"], capture_output=True, check=False
            )
            if archive.returncode == 0:
                subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
                versions = {"before": old / "src", **versions}
            else:
                print(f"(no 'before': git archive {args.before} failed)", file=sys.stderr)
        results = {v: run_version(src, folder, args.cpu_s, args.mem_gib) for v, src in versions.items()}
    print(f"limits per case: {args.cpu_s} s CPU, +{args.mem_gib} GiB address space")
    head = f"{'case':32} {'bytes':>9}"
    for v in versions:
        head += f" | {v + ': outcome':>22} {'cpu s':>7} {'wall s':>7} {'peak MB':>8}"
    print(head)
    for i, name in enumerate(names):
        line = f"{name:32} {len(generated[name]):>9}"
        for v in versions:
            r = results[v].get(i, {"outcome": "no result", "cpu_s": "-", "wall_s": "-", "peak_mb": "-"})
            line += f" | {r['outcome'][:22]:>22} {r['cpu_s']:>7} {r['wall_s']:>7} {r['peak_mb']:>8}"
        print(line)
    for v in versions:
        for i, name in enumerate(names):
            msg = results[v].get(i, {}).get("message")
            if msg:
                print(f"{v:6} {name}: {msg}")


if __name__ == "__main__":
    main()
