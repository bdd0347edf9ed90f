"""RapidsDaskOperator overhead vs a bare LocalCluster ``client.submit`` of the same callable.

Both sides, in the same process, alternating, median of ``--runs``:
- baseline: ``LocalCluster(n_workers=2, threads_per_worker=1)`` + ``Client`` +
  ``client.submit(work).result()`` + close (client and cluster);
- ours: ``RapidsDaskOperator(python_callable=job, n_workers=2, threads_per_worker=1).execute(context)``
  where ``job(client)`` is ``client.submit(work).result()``: the same cluster start, the same
  submit, plus the operator's checks, parameters, stdout tee, backend config, teardown,
  execution record (written to disk) and the XCom pushes (to an in-memory stand-in).
Airflow's own task start-up (supervisor, task runner, API round trips) is not in either figure.

    .venv/bin/python benchmarks/bench_dask_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-dask-home-"))
os.environ.setdefault("AIRFLOW__MLPLATFORM__OUTPUT_BASE", tempfile.mkdtemp(prefix="bench-dask-out-"))


def work(n: int = 200_000) -> int:
    return sum(i * i for i in range(n))


def job(client) -> int:
    return client.submit(work, pure=False).result()


def bare() -> float:
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.WARNING,
    )
    client = Client(cluster)
    result = client.submit(work, pure=False).result()
    client.close()
    cluster.close()
    elapsed = time.perf_counter() - t0
    assert result == work()
    return elapsed


def ours() -> tuple[float, float]:
    """Wall time of execute(), and the part of it spent outside cluster start/stop and the callable."""
    from airflow_mlplatform.operators.rapids import RapidsDaskOperator
    from airflow_mlplatform.runners.dask_cluster import DaskSession

    spent: list[float] = []

    def timed(fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent.append(time.perf_counter() - t)

        return wrapper

    def timed_job(client):
        return timed(job)(client)

    class TI:
        dag_id, task_id, run_id, map_index, try_number = "bench", "dask", f"bench_{time.time_ns()}", -1, 1

        def __init__(self):
            self.xcoms = {}

        def xcom_push(self, key, value):
            self.xcoms[key] = value

    op = RapidsDaskOperator(task_id="dask", python_callable=timed_job, n_workers=2, threads_per_worker=1)
    real_open, real_close = DaskSession.open, DaskSession.close
    DaskSession.open, DaskSession.close = timed(real_open), timed(real_close)  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        values = op.execute({"ti": TI(), "params": {}})
        elapsed = time.perf_counter() - t0
    finally:
        DaskSession.open, DaskSession.close = real_open, real_close  # type: ignore[method-assign]
    assert values == {"result": work()}, values
    return elapsed, elapsed - sum(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import airflow.sdk  # noqa: F401  (imported before timing, as in a worker)
    import distributed  # noqa: F401

    from airflow_mlplatform.operators import rapids  # noqa: F401

    bare()  # warm-up: first cluster start pays imports in the workers' interpreter cache
    base, mine = [], []
    for _ in range(args.runs):
        base.append(bare())
        mine.append(ours())
    own = [x[1] for x in mine]
    mine = [x[0] for x in mine]
    b, o = statistics.median(base), statistics.median(mine)
    print(
        f"runs: {args.runs} each (after one warm-up), LocalCluster 2 workers x 1 thread, {os.cpu_count()} cores"
    )
    print(f"bare LocalCluster + client.submit: median {b:.3f} s   runs {[round(x, 3) for x in base]}")
    print(f"RapidsDaskOperator.execute:        median {o:.3f} s   runs {[round(x, 3) for x in mine]}")
    print(f"ratio {o / b:.3f}   overhead {(o - b) * 1000:+.0f} ms (median vs median)")
    print(
        f"operator's own work outside cluster start/stop and the callable: median {statistics.median(own) * 1000:.1f} ms"
        f"   runs {[round(x * 1000, 1) for x in own]} (checks, parameters, output folder, record, XComs)"
    )


if __name__ == "__main__":
    main()
