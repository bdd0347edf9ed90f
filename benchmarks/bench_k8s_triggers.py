"""200 concurrent deferred pod waits in one event loop: requests/s and the longest loop stall.

The test bed (API emulator + fake kubelet, tests/kube/serve.py) runs in its own process, so the
event loop measured here runs only what a triggerer would: ``--n`` ``KubeJobTrigger.run()``
coroutines waiting on as many pods (each runs ``sleep`` for 5..15 s in the fake kubelet; with
``--lines N`` each prints N lines while it runs, which the triggers stream into their log) plus
a watchdog that sleeps 10 ms and records how late it wakes: the longest lateness is the longest
time the loop was blocked. Target: longest stall <= 0.2 s.

    .venv/bin/python benchmarks/bench_k8s_triggers.py [--n 200] [--lines 0]

It also prints the most CPU in one tick with garbage collections left out, and the gen-2
collections: a full collection of a triggerer's heap (mostly Airflow's own modules) takes about
0.2 s of CPU on a shared 2-core machine, whatever the triggers do; ``BENCH_GC_FREEZE=1`` measures
after ``gc.freeze()``, which a triggerer can call once it has started.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-k8s-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def start_bed() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "kube" / "serve.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info


def stats(proc: subprocess.Popen) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("stats\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


class GcClock:
    """CPU time spent in garbage collections (gc.callbacks), and the longest gen-2 pause."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest_gen2 = 0.0
        self.gen2 = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.thread_time()
            return
        spent = time.thread_time() - self._start
        self.total += spent
        if info["generation"] == 2:
            self.gen2 += 1
            self.longest_gen2 = max(self.longest_gen2, spent)


GC = GcClock()


async def watchdog(
    stop: asyncio.Event, lateness: list[float], busy: list[float], at: list[float], own: list[float]
) -> None:
    """Lateness of 10 ms sleeps (wall), the CPU this thread burnt meanwhile, and that CPU less the
    garbage collections in it (what the code run by the loop costs, not the heap's GC)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not stop.is_set():
        t0, c0, g0 = loop.time(), time.thread_time(), GC.total
        await asyncio.sleep(0.01)
        lateness.append(loop.time() - t0 - 0.01)
        busy.append(time.thread_time() - c0)
        own.append(busy[-1] - (GC.total - g0))
        at.append(t0 - start)


def _command(seconds: float, lines: int) -> list[str]:
    """``sleep``, or a loop printing ``lines`` lines over ``seconds`` (streamed by the triggers)."""
    if not lines:
        return ["sleep", f"{seconds:.2f}"]
    pause = seconds / lines
    script = f"import time\nfor i in range({lines}):\n    print('line', i, flush=True)\n    time.sleep({pause:.3f})\n"
    return [sys.executable, "-u", "-c", script]


async def main_async(n: int, lines: int = 0) -> dict:
    from airflow_mlplatform.compute import ComputeProfile
    from airflow_mlplatform.hooks.kubernetes import PODS, MLPlatformAsyncKubernetesHook
    from airflow_mlplatform.specs.kinds import POD
    from airflow_mlplatform.specs.pod import build_pod
    from airflow_mlplatform.triggers.kubernetes import KubeJobTrigger

    profile = ComputeProfile(name="bench", backend="kubernetes", image="busybox")
    hook = MLPlatformAsyncKubernetesHook()
    pods = []
    sem = asyncio.Semaphore(20)

    async def create(i: int) -> dict:
        async with sem:
            manifest = build_pod(
                profile,
                name=f"bench-{i}",
                command=_command(random.uniform(5, 15) if i < n else 0.1, lines if i < n else 0),
            )
            return await hook.create_object(PODS, "default", manifest)

    pods = await asyncio.gather(*(create(i) for i in range(n + 1)))
    await hook.close()
    # Warm-up, as in a triggerer that has run a while: one wait loads what triggers import lazily.
    warm = pods.pop()
    warm_trigger = KubeJobTrigger(kind=POD.ref, name=warm["metadata"]["name"], namespace="default")
    gen = warm_trigger.run()
    await gen.__anext__()
    await gen.aclose()

    triggers = [
        KubeJobTrigger(
            kind=POD.ref,
            name=p["metadata"]["name"],
            namespace="default",
            resource_version=p["metadata"]["resourceVersion"],
            state="Pending",
            log_pod=p["metadata"]["name"],
        )
        for p in pods
    ]

    async def first_event(t: KubeJobTrigger) -> dict:
        gen = t.run()
        try:
            return (await gen.__anext__()).payload
        finally:
            await gen.aclose()

    stop = asyncio.Event()
    lateness: list[float] = []
    busy: list[float] = []
    at: list[float] = []
    own: list[float] = []
    if os.environ.get("BENCH_GC_FREEZE"):
        gc.freeze()  # what a triggerer can do once started: no full collections of its import-time heap
    gc.callbacks.append(GC)
    dog = asyncio.ensure_future(watchdog(stop, lateness, busy, at, own))
    t0 = time.monotonic()
    cpu0 = time.thread_time()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    events = await asyncio.gather(*(first_event(t) for t in triggers))
    if os.environ.get("BENCH_PROFILE"):
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    wall = time.monotonic() - t0
    stop.set()
    await dog
    ok = sum(1 for e in events if e["status"] == "done" and e["exit_code"] == 0)
    return {
        "wall_s": wall,
        "ok": ok,
        "max_stall_s": max(lateness),
        "p99_stall_s": sorted(lateness)[int(len(lateness) * 0.99)],
        "max_busy_s": max(busy),
        "max_busy_at_s": at[busy.index(max(busy))],
        "max_own_s": max(own),
        "gc_gen2": GC.gen2,
        "gc_longest_gen2_s": GC.longest_gen2,
        "cpu_s": time.thread_time() - cpu0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--lines", type=int, default=0, help="lines each pod prints while it runs")
    args = parser.parse_args()
    proc, info = start_bed()
    try:
        os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(
            {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": info["kubeconfig"], "namespace": "default"},
            }
        )
        before = stats(proc)["total"]
        created_at = time.monotonic()
        result = asyncio.run(main_async(args.n, args.lines))
        after = stats(proc)["total"]
        requests = after - before
        elapsed = time.monotonic() - created_at
        print(
            f"pods waited on concurrently: {args.n} (each runs 5-15 s in the fake kubelet, "
            f"printing {args.lines} lines, streamed into the triggers' log)"
        )
        print(f"finished ok:                 {result['ok']}/{args.n}")
        print(f"wall time of the waits:      {result['wall_s']:.1f} s")
        print(f"API requests (create+waits): {requests} ({requests / args.n:.1f} per pod)")
        print(f"requests per second:         {requests / elapsed:.1f}")
        print(f"longest event-loop stall:    {result['max_stall_s'] * 1000:.1f} ms (target <= 200 ms)")
        print(f"p99 event-loop stall:        {result['p99_stall_s'] * 1000:.1f} ms")
        print(
            f"most loop CPU in one tick:   {result['max_busy_s'] * 1000:.1f} ms "
            f"at {result['max_busy_at_s']:.1f} s into the waits "
            "(CPU the loop thread used between two 10 ms ticks, at most; a longer wall stall is "
            "the OS running other processes on this shared 2-core machine)"
        )
        print(f"most loop CPU in one tick, garbage collections left out: {result['max_own_s'] * 1000:.1f} ms")
        print(
            f"gen-2 garbage collections:   {result['gc_gen2']}, the longest "
            f"{result['gc_longest_gen2_s'] * 1000:.1f} ms CPU (the whole heap, mostly Airflow's modules"
            f"{'; after gc.freeze()' if os.environ.get('BENCH_GC_FREEZE') else '; BENCH_GC_FREEZE=1: after gc.freeze()'})"
        )
        print(f"loop CPU for all waits:      {result['cpu_s']:.2f} s")
    finally:
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(30)


if __name__ == "__main__":
    main()
