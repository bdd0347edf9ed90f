"""500 concurrent deferred Valohai executions in one event loop: requests/s and longest loop stall.

The contract server (tests/valohai_contract_server.py) runs in its own process, so the
event loop measured here runs only what a triggerer would: 500
``ValohaiExecutionTrigger.run()`` coroutines (all sharing one httpx client through
ValohaiHook) plus a watchdog that sleeps 10 ms and records how late it wakes up: the
longest lateness is the longest time the loop was blocked.

The server's clock runs ``--speed`` times real time and the triggers' poll intervals are
divided by the same factor, so each execution is a real-time ``--minutes``-long one with
the operator's default backoff (5 s first, doubling, capped at 90 s). A second round polls
at a fixed, much shorter interval to load the loop harder. The garbage collector's longest
pauses are printed too: the stalls above 0.1 s seen while writing this coincided with
full (gen-2) collections of the process's heap, most of it Airflow's own modules; a third
round repeats the first after ``gc.freeze()``. An idle-loop baseline measured first tells
how noisy the machine is. Target: longest stall <= 0.2 s.

    .venv/bin/python benchmarks/bench_valohai_triggers.py [--n 500] [--speed 20] [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-valohai-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
TOKEN = "bench-token"


def start_server(speed: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "valohai_contract_server.py"),
            "--speed",
            str(speed),
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("URL "):
        proc.kill()
        raise RuntimeError(f"contract server did not start: {line!r}")
    return proc, line[4:]


def control(url: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


class GCPauses:
    """Longest pause of each garbage-collector generation while active."""

    def __init__(self) -> None:
        self.longest = [0.0, 0.0, 0.0]
        self._t = 0.0
        self.active = False

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        elif self.active:
            gen = info["generation"]
            self.longest[gen] = max(self.longest[gen], time.perf_counter() - self._t)


GC_PAUSES = GCPauses()
gc.callbacks.append(GC_PAUSES)


async def watchdog(stop: asyncio.Event, lateness: list[float], tick: float = 0.01) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(tick)
        lateness.append(time.perf_counter() - t - tick)


async def round_(n: int, project_id: str, first: float, cap: float) -> dict:
    from airflow_mlplatform.hooks.valohai import ValohaiHook
    from airflow_mlplatform.triggers.valohai import ValohaiExecutionTrigger
    from airflow_mlplatform.valohai_payloads import execution_payload

    hook = ValohaiHook()
    payload = execution_payload(project_id=project_id, commit="main", step="train")
    created = await asyncio.gather(*(hook.arequest("POST", "executions/", json=payload) for _ in range(n)))
    triggers = [
        ValohaiExecutionTrigger(execution_id=ex["id"], poll_interval=first, max_poll_interval=cap)
        for ex in created
    ]

    async def wait(trigger):
        async for event in trigger.run():
            return event.payload

    stop = asyncio.Event()
    lateness: list[float] = []
    dog = asyncio.create_task(watchdog(stop, lateness))
    GC_PAUSES.longest, GC_PAUSES.active = [0.0, 0.0, 0.0], True
    t0, cpu0 = time.perf_counter(), time.process_time()
    events = await asyncio.gather(*(wait(t) for t in triggers))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    GC_PAUSES.active = False
    stop.set()
    await dog
    await ValohaiHook.aclose_all()
    statuses = {e["status"] + ":" + e.get("execution", {}).get("status", "") for e in events}
    return {
        "wall": wall,
        "cpu": cpu,
        "lateness": lateness,
        "statuses": statuses,
        "gc": list(GC_PAUSES.longest),
    }


async def idle_baseline(seconds: float) -> list[float]:
    """The watchdog alone: how late an idle event loop wakes up on this machine right now."""
    stop = asyncio.Event()
    lateness: list[float] = []
    dog = asyncio.create_task(watchdog(stop, lateness))
    await asyncio.sleep(seconds)
    stop.set()
    await dog
    return lateness


def run_round(url: str, n: int, first: float, cap: float) -> dict:
    control(url, "/_control/reset", {})
    project_id = "017f5c6d-0000-4000-8000-000000000001"
    result = asyncio.run(round_(n, project_id, first, cap))
    polls = [r for r in control(url, "/_control/requests") if r["method"] == "GET"]
    span = (max(r["time"] for r in polls) - min(r["time"] for r in polls)) if polls else 0.0
    result["polls"] = len(polls)
    result["errors"] = sum(1 for r in polls if r["status"] != 200)
    result["rps"] = len(polls) / span if span else float("nan")
    return result


def report(title: str, r: dict) -> None:
    late = sorted(r["lateness"])
    p99 = late[int(len(late) * 0.99) - 1] if late else float("nan")
    print(f"{title}")
    print(f"  finished: {sorted(r['statuses'])} in {r['wall']:.1f} s")
    print(f"  status polls: {r['polls']} ({r['errors']} non-200), {r['rps']:.0f} requests/s while polling")
    print(
        f"  CPU time of this process: {r['cpu']:.1f} s, {1000 * r['cpu'] / max(r['polls'], 1):.2f} ms per poll"
    )
    print(
        f"  event-loop stall: longest {max(late):.3f} s, p99 {p99:.3f} s, median {statistics.median(late):.4f} s"
        f" over {len(late)} watchdog ticks; target longest <= 0.2 s: {'OK' if max(late) <= 0.2 else 'OVER'}"
    )
    print(
        "  longest garbage-collector pause (gen 0/1/2, the whole process's heap): "
        + "/".join(f"{p:.3f}" for p in r["gc"])
        + " s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--speed", type=float, default=20.0, help="simulated seconds per real second")
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated length of each execution")
    args = parser.parse_args()
    idle = asyncio.run(idle_baseline(5.0))
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; idle event loop (watchdog alone, 5 s): "
        f"longest stall {max(idle):.3f} s, p99 {sorted(idle)[int(len(idle) * 0.99) - 1]:.3f} s"
    )
    proc, url = start_server(args.speed)
    try:
        started = args.minutes * 60 - 30
        control(url, "/_control/configure", {"durations": {"created": 5, "queued": 25, "started": started}})
        os.environ["AIRFLOW_CONN_VALOHAI_DEFAULT"] = json.dumps(
            {"conn_type": "valohai", "host": url, "password": TOKEN}
        )
        s = args.speed
        default = run_round(url, args.n, 5.0 / s, 90.0 / s)
        report(
            f"{args.n} deferred executions of {args.minutes:g} simulated min, default backoff "
            f"(5 s .. 90 s, clock x{s:g})",
            default,
        )
        fast = run_round(url, args.n, 0.25, 0.25)
        report(f"{args.n} deferred executions, stress: fixed 0.25 s real poll interval", fast)
        # Full (gen-2) collections walk Airflow's whole heap; gc.freeze() after start-up moves
        # the imported modules' objects out of their reach (Airflow's dag processor does this).
        gc.collect()
        gc.freeze()
        frozen = run_round(url, args.n, 5.0 / s, 90.0 / s)
        report(
            "same as the first round, after gc.freeze() (start-up objects out of the collector's way)", frozen
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
