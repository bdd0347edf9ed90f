"""Model deployment (KServe rollouts): API requests per rollout, and time from promotion to serving.

On the test bed (API emulator + the fake KServe controller, whose revisions a real MLServer in
.venv-serving serves; the controller acts inside the emulator and makes no API requests), each
rollout of a model version is run with :class:`~airflow_mlplatform.runners.rollout.Rollout`, the
runner DeployModelOperator uses, in this process:

- **requests**: every request the API server receives during a rollout, for a plain rollout and
  a canary (smoke test, gate, promotion), in the worker and deferred (start + trigger + resume),
  with the controller answering at once and with ``--lag`` seconds before it sees each new
  generation (a slower rollout must not cost more requests). Target: at most 8.
- **time**: from the call (a promotion just moved the alias) to the new version answering all
  traffic, and the operator's own share: the wall time not spent waiting for the controller
  (watch) or the model server (smoke requests). Baseline, in the same run: the least a client can
  do, one merge patch of ``storageUri`` and one watch until observed and Ready (the raw
  ``kubernetes`` client); the ratio says what the rollout protocol costs on top.

    .venv/bin/python benchmarks/bench_deploy.py [--lag 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
HOME = Path(tempfile.mkdtemp(prefix="bench-deploy-home-"))
os.environ["AIRFLOW_HOME"] = str(HOME)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
SMOKE = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.9, 0.2, 0.3]}]}
ISVC_KEY = "serving.kserve.io/v1beta1/inferenceservices"


def _models(root: Path) -> None:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).random((200, 3))
    for name, labels in (("a", x[:, 0] > 0.5), ("b", x[:, 0] <= 0.5)):
        (root / name).mkdir(parents=True)
        joblib.dump(LogisticRegression().fit(x, labels.astype(int)), root / name / "model.joblib")


class Timed:
    """Wraps the hook's waits and the smoke requests, adding up the seconds spent in them."""

    def __init__(self) -> None:
        self.waiting = 0.0

    def wrap(self, obj: object, name: str) -> None:
        real = getattr(obj, name)

        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.waiting += time.perf_counter() - started

        setattr(obj, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--lag", type=float, default=2.0, help="seconds before the controller sees a generation"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed rollouts per variant")
    args = parser.parse_args()

    from fake_kserve_controller import INFERENCESERVICES, FakeKServeController, serving_python
    from kube.emulator import EmulatorThread
    from kube.fixtures import first_event, write_kubeconfig

    if not serving_python().exists():
        print(f"needs {serving_python()}: run `make serving-venv`", file=sys.stderr)
        return 2
    import logging

    logging.disable(logging.INFO)  # the figures only: no access log, no rollout log lines
    controller = FakeKServeController()
    thread = EmulatorThread([controller]).start()
    thread.call(thread.emulator.declare, INFERENCESERVICES, "InferenceService")
    kubeconfig = write_kubeconfig(thread.url, HOME / "kubeconfig")
    os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = (
        f'{{"conn_type": "kubernetes", "extra": {{"kube_config_path": "{kubeconfig}", "namespace": "default"}}}}'
    )
    _models(HOME / "pvc")
    controller.pvcs["models"] = HOME / "pvc"

    from airflow_mlplatform.hooks import serving
    from airflow_mlplatform.models.gate import parse_gate
    from airflow_mlplatform.runners.rollout import Rollout
    from airflow_mlplatform.specs import inference as isvc

    def rollout(name: str, model: str, *, canary: int | None = None) -> Rollout:
        return Rollout(
            name=name,
            namespace="default",
            predictor=isvc.build_predictor(
                storage_uri=f"pvc://models/{model}", model_format="sklearn", canary_traffic_percent=canary
            ),
            model=f"bench/{model}",
            by="bench/deploy/run/1",
            startup_timeout=120,
            smoke_request=SMOKE if canary else None,
            canary_gate=parse_gate("errors == 0 and latency_ms <= prev.latency_ms * 10 + 100", alias="prev")
            if canary
            else None,
        )

    def count(fn) -> tuple[int, float]:
        mark = thread.call(lambda: len(thread.emulator._requests))
        started = time.perf_counter()
        fn()
        return thread.call(lambda: len(thread.emulator._requests)) - mark, time.perf_counter() - started

    def deferred(r: Rollout) -> None:
        obj = r.start()
        trigger = r.trigger(obj)
        trigger.start_jitter = 0

        event = first_event(trigger)
        fresh = rollout(r.name, r.model.split("/")[1], canary=r.canary)
        fresh.complete(event)

    print("== Kubernetes API requests per rollout (target <= 8)")
    print(f"{'variant':<34}{'lag 0 s':>10}{f'lag {args.lag:g} s':>12}{'wall (lag)':>12}")
    counter = 0
    for label, canary, mode in (
        ("first rollout (create)", None, "sync"),
        ("plain rollout, in the worker", None, "sync"),
        ("canary + smoke + gate, worker", 30, "sync"),
        ("plain rollout, deferred", None, "deferred"),
        ("canary + smoke + gate, deferred", 30, "deferred"),
    ):
        row = []
        for lag in (0.0, args.lag):
            counter += 1
            name = f"bench-{counter}"
            if label != "first rollout (create)":
                rollout(name, "a").run()
            controller.lag = lag
            r = rollout(name, "b" if label != "first rollout (create)" else "a", canary=canary)
            n, wall = count(r.run if mode == "sync" else (lambda r=r: deferred(r)))
            controller.lag = 0.0
            row.append((n, wall))
        print(f"{label:<34}{row[0][0]:>10}{row[1][0]:>12}{row[1][1]:>11.2f}s")
    n, _ = count(lambda: rollout("bench-1", "a").run())
    print(f"{'re-run, same version (no-op)':<34}{n:>10}")

    print("\n== From promotion to serving (lag 0: the controller answers at once)")
    timings: dict[str, list[tuple[float, float]]] = {"plain": [], "canary": [], "baseline": []}
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes import watch as k8s_watch

    k8s_config.load_kube_config(str(kubeconfig))
    api = k8s_client.CustomObjectsApi()
    for i in range(args.rounds):
        for variant, canary in (("plain", None), ("canary", 30)):
            name = f"time-{variant}-{i}"
            rollout(name, "a").run()
            r = rollout(name, "b", canary=canary)
            timed = Timed()
            timed.wrap(r.hook(), "wait_for_object")
            real_smoke = serving.smoke_test

            def smoke(*a, _real=real_smoke, _t=timed, **k):
                started = time.perf_counter()
                try:
                    return _real(*a, **k)
                finally:
                    _t.waiting += time.perf_counter() - started

            serving.smoke_test = smoke
            started = time.perf_counter()
            r.run()
            wall = time.perf_counter() - started
            serving.smoke_test = real_smoke
            timings[variant].append((wall, wall - timed.waiting))
        # the baseline: one merge patch of storageUri, one watch until observed and Ready
        name = f"time-base-{i}"
        rollout(name, "a").run()
        started = time.perf_counter()
        obj = api.patch_namespaced_custom_object(
            "serving.kserve.io",
            "v1beta1",
            "default",
            "inferenceservices",
            name,
            {"spec": {"predictor": {"model": {"storageUri": "pvc://models/b"}}}},
        )
        rv = obj["metadata"]["resourceVersion"]
        for event in k8s_watch.Watch().stream(
            api.list_namespaced_custom_object,
            "serving.kserve.io",
            "v1beta1",
            "default",
            "inferenceservices",
            field_selector=f"metadata.name={name}",
            resource_version=rv,
            timeout_seconds=60,
        ):
            if isvc.isvc_state(event["object"]) == "Ready":
                break
        wall = time.perf_counter() - started
        timings["baseline"].append((wall, wall))
    base = statistics.median(w for w, _ in timings["baseline"])
    print(f"{'variant':<34}{'median wall':>12}{'operator share':>16}{'vs baseline':>13}")
    for variant, rows in timings.items():
        wall = statistics.median(w for w, _ in rows)
        own = statistics.median(o for _, o in rows)
        share = f"{own * 1000:.0f} ms ({own / wall:.0%})" if variant != "baseline" else "-"
        print(f"{variant:<34}{wall * 1000:>10.0f}ms{share:>16}{wall / base:>12.2f}x")
    thread.call(controller.aclose)
    thread.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
