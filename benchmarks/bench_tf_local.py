"""TFJobOperator (backend ``local``): time from task start to the first training step, vs the
same script started by hand with TF_CONFIG set, in the same run.

The training script (example_dags/scripts/tf_digits_train.py) prints
``::tfjob::first-step <wall time>`` right before its first step on every replica.
- baseline: two ``python tf_digits_train.py`` processes started with hand-written TF_CONFIG
  (2 workers on 127.0.0.1); time from just before the first ``Popen`` to worker 0's first step.
- ours: ``TFJobOperator(backend="local", replicas={"Worker": 2}).execute(context)``; time from
  just before ``execute()`` to worker 0's first step (the operator's checks, output folder, free
  ports, TF_CONFIG, process start, and the same TensorFlow start-up inside the replicas).
Airflow's own task start-up (supervisor, task runner, API round trips) is not in either figure.
Runs alternate; medians over ``--runs`` each. 1 epoch per run.

    .venv/bin/python benchmarks/bench_tf_local.py [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "example_dags" / "scripts" / "tf_digits_train.py"
PARAMS = {"epochs": 1, "batch_size": 32, "hidden_units": 32}
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-tf-home-"))
os.environ.setdefault("AIRFLOW__MLPLATFORM__OUTPUT_BASE", tempfile.mkdtemp(prefix="bench-tf-out-"))


def _first_step(lines) -> float | None:
    for line in lines:
        if line.startswith("::tfjob::first-step"):
            return float(line.split()[1])
    return None


def by_hand() -> tuple[float, float]:
    ports = []
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    env = {**os.environ, "MLPLATFORM_PARAMETERS": json.dumps(PARAMS), "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.time()
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT)],
            env={
                **env,
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in range(2)
    ]
    out0, _ = procs[0].communicate()
    procs[1].communicate()
    t_end = time.time()
    assert all(p.returncode == 0 for p in procs), [p.returncode for p in procs]
    first = _first_step(out0.splitlines())
    assert first is not None
    return first - t0, t_end - t0


def operator() -> tuple[float, float, float]:
    from airflow_mlplatform.operators.tfjob import TFJobOperator
    from airflow_mlplatform.runners import tf_local

    popen_times: list[float] = []
    real_popen = subprocess.Popen

    def timed_popen(*a, **kw):
        popen_times.append(time.time())
        return real_popen(*a, **kw)

    class TI:
        dag_id, task_id, run_id, map_index, try_number = "bench", "train", f"bench_{time.time_ns()}", -1, 1

        def xcom_push(self, key, value):
            pass

    lines: list[str] = []
    op = TFJobOperator(
        task_id="train",
        command=["python", str(SCRIPT)],
        replicas={"Worker": 2},
        parameters=PARAMS,
        backend="local",
    )
    original = op.log.info

    def capture(msg, *args, **kw):  # the leader's lines go through the task log
        if args and isinstance(args[0], str):
            lines.append(args[0])
        return original(msg, *args, **kw)

    op.log.info = capture  # type: ignore[method-assign]
    tf_local.subprocess.Popen = timed_popen  # type: ignore[misc]
    try:
        t0 = time.time()
        values = op.execute({"ti": TI(), "params": {}})
        t_end = time.time()
    finally:
        tf_local.subprocess.Popen = real_popen  # type: ignore[misc]
    assert values["replicas"] == 2, values
    first = _first_step(lines)
    assert first is not None
    return first - t0, t_end - t0, popen_times[0] - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    import airflow.sdk  # noqa: F401  (imported before timing, as in a worker)

    hand, ours = [], []
    for _ in range(args.runs):
        hand.append(by_hand())
        ours.append(operator())
    h_first = statistics.median(x[0] for x in hand)
    o_first = statistics.median(x[0] for x in ours)
    h_total = statistics.median(x[1] for x in hand)
    o_total = statistics.median(x[1] for x in ours)
    print(f"runs: {args.runs} each, 2 workers, MultiWorkerMirroredStrategy, 1 epoch, {os.cpu_count()} cores")
    print(
        f"start -> first training step  by hand: {h_first:7.2f} s   TFJobOperator: {o_first:7.2f} s   "
        f"ratio {o_first / h_first:.3f}  (overhead {o_first - h_first:+.2f} s)"
    )
    print(
        f"start -> all replicas done    by hand: {h_total:7.2f} s   TFJobOperator: {o_total:7.2f} s   "
        f"ratio {o_total / h_total:.3f}"
    )
    before = statistics.median(x[2] for x in ours)
    print(
        f"TFJobOperator's own work before the first replica process starts: {before * 1000:.1f} ms "
        "(checks, parameters, output folder, free ports, TF_CONFIG)"
    )
    print("per run (first step, total[, before first Popen]):")
    print("  by hand:", [(round(a, 2), round(b, 2)) for a, b in hand])
    print("  ours:   ", [(round(a, 2), round(b, 2), round(c, 4)) for a, b, c in ours])


if __name__ == "__main__":
    main()
