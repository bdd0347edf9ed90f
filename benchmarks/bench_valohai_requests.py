"""HTTP requests for one 10-minute Valohai execution: ours vs the earlier plugin's pattern.

Counted on the contract server (tests/valohai_contract_server.py) over 127.0.0.1. Its clock
runs ``--speed`` times faster than real time (default 60: 10 simulated minutes take 10 s),
and every wait on the client side is divided by the same factor, so the request counts are
those of a real 10-minute execution (created 5 s, queued 25 s, started 570 s).

- baseline: the earlier plugin's pattern (skillupco/airflow-valohai-plugin): list up to
  10,000 projects to find one by name, fetch the repository, list commits, submit, then one
  poll per 30 s, then list the outputs;
- ours, worker: ``ValohaiSubmitExecutionOperator.execute`` (deferrable=False) with its
  defaults (project by name, polls after 5, 10, 20, 40, 80, then every 90 s);
- ours, deferrable: ``execute`` -> the trigger's ``run()`` in an event loop ->
  ``execute_complete``, the same code path the triggerer runs.

The operator runs with a minimal in-memory task instance standing in for Airflow's XCom
API. Also printed: how late each client noticed the end (simulated seconds), the price of
polling less often. Target: at most 15 requests.

    .venv/bin/python benchmarks/bench_valohai_requests.py [--speed 60]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-valohai-home-"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__MLPLATFORM__OUTPUT_BASE"] = tempfile.mkdtemp(prefix="bench-valohai-out-")
sys.path.insert(0, str(REPO / "tests"))

from valohai_contract_server import PROJECT_NAME, ContractServer, connection_json  # noqa: E402

DURATIONS = {"created": 5.0, "queued": 25.0, "started": 570.0}


class _TI(SimpleNamespace):
    def xcom_push(self, key, value):
        self.pushed[key] = value


def _context(task_id: str) -> dict:
    ti = _TI(dag_id="bench", task_id=task_id, run_id="manual__bench", map_index=-1, try_number=1, pushed={})
    return {"ti": ti, "params": {}}


def baseline(server: ContractServer, speed: float) -> str:
    """The earlier plugin's request pattern, with plain requests."""
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"Token {server.token}"
    api = f"{server.url}/api/v0/"
    projects = s.get(api + "projects/", params={"limit": 10000}, timeout=30).json()["results"]
    project_id = next(p["id"] for p in projects if p["name"] == PROJECT_NAME)
    s.post(api + f"projects/{project_id}/fetch/", timeout=30)
    commits = s.get(api + f"projects/{project_id}/commits/", timeout=30).json()["results"]
    ex = s.post(
        api + "executions/",
        json={"project": project_id, "commit": commits[0]["identifier"], "step": "train"},
        timeout=30,
    ).json()
    while True:
        time.sleep(30 / speed)
        status = s.get(api + f"executions/{ex['id']}/", timeout=30).json()["status"]
        if status in ("complete", "error", "crashed", "stopped"):
            break
    s.get(api + "data/", params={"output_execution": ex["id"]}, timeout=30)
    return str(ex["id"])


def _operator(task_id: str, speed: float, deferrable: bool):
    from airflow_mlplatform.operators.valohai import ValohaiSubmitExecutionOperator

    return ValohaiSubmitExecutionOperator(
        task_id=task_id,
        project=PROJECT_NAME,
        step="train",
        commit="main",
        deferrable=deferrable,
        poll_interval=5.0 / speed,
        max_poll_interval=90.0 / speed,
    )


def ours_worker(server: ContractServer, speed: float) -> str:
    op = _operator("train_worker", speed, deferrable=False)
    ctx = _context("train_worker")
    op.execute(ctx)
    return str(ctx["ti"].pushed["valohai_execution"]["id"])


def ours_deferrable(server: ContractServer, speed: float) -> str:
    from airflow.sdk.exceptions import TaskDeferred

    op = _operator("train_deferred", speed, deferrable=True)
    ctx = _context("train_deferred")
    try:
        op.execute(ctx)
        raise AssertionError("the operator did not defer")
    except TaskDeferred as deferred:
        trigger, kwargs = deferred.trigger, deferred.kwargs or {}

    async def wait():
        from airflow_mlplatform.hooks.valohai import ValohaiHook

        async for event in trigger.run():
            await ValohaiHook.aclose_all()
            return event.payload

    event = asyncio.run(wait())
    op.execute_complete(ctx, event, **kwargs)
    return str(ctx["ti"].pushed["valohai_execution"]["id"])


def measure(name, fn, server: ContractServer, speed: float) -> dict:
    from airflow_mlplatform.hooks import valohai as hook_module

    hook_module._PROJECT_CACHE.clear()  # every client starts cold
    server.reset_log()
    t0 = time.perf_counter()
    ex_id = fn(server, speed)
    wall = time.perf_counter() - t0
    ex = server.executions[ex_id]
    reqs = server.api_requests()
    noticed = [r for r in reqs if r.path == f"/api/v0/executions/{ex_id}/" and r.method == "GET"]
    end_sim = ex["_ended"]
    # simulated time of the first poll that saw the final status
    seen = next((r for r in noticed if (r.time - server._t0) * speed + server._offset >= end_sim), None)
    late = ((seen.time - server._t0) * speed + server._offset - end_sim) if seen else float("nan")
    kinds = collections.Counter(_kind(r.method, r.path, ex_id) for r in reqs)
    return {"name": name, "requests": len(reqs), "kinds": kinds, "late_s": late, "wall_s": wall}


def _kind(method: str, path: str, ex_id: str) -> str:
    if path == f"/api/v0/executions/{ex_id}/" and method == "GET":
        return "poll"
    return f"{method} {path.replace(ex_id, '{id}')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    args = parser.parse_args()
    with ContractServer(speed=args.speed, durations=DURATIONS) as server:
        server.configure_step("train", outputs={"model.pkl": b"M"}, metadata=[{"loss": 0.1}])
        os.environ["AIRFLOW_CONN_VALOHAI_DEFAULT"] = connection_json(server)
        results = [
            measure("earlier plugin's pattern", baseline, server, args.speed),
            measure("ours, worker (sync)", ours_worker, server, args.speed),
            measure("ours, deferrable", ours_deferrable, server, args.speed),
        ]
    print(f"One 10-minute execution (5 s created, 25 s queued, 570 s started), clock x{args.speed:g}")
    print(f"{'client':28} {'requests':>8} {'polls':>6} {'noticed end late (sim s)':>25}")
    for r in results:
        print(f"{r['name']:28} {r['requests']:>8} {r['kinds']['poll']:>6} {r['late_s']:>25.1f}")
    for r in results:
        others = ", ".join(f"{k} x{v}" for k, v in sorted(r["kinds"].items()) if k != "poll")
        print(f"  {r['name']}: {others}")
    base = results[0]["requests"]
    for r in results[1:]:
        verdict = "OK" if r["requests"] <= 15 else "OVER TARGET"
        print(
            f"{r['name']}: {r['requests']} requests = {r['requests'] / base:.2f} x baseline; target <= 15: {verdict}"
        )


if __name__ == "__main__":
    main()
