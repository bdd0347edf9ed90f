"""Rollout on the test bed: the fake KServe controller serves each ready revision with a real MLServer.

Every rollout goes through the real ``kubernetes`` client to the emulator; the controller loads
the revision's model file (a real scikit-learn model, or garbage for FailedToLoad) into MLServer
and routes the InferenceService's URL by the traffic split; the smoke test is real v2 HTTP.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import joblib
import numpy as np
import pytest
import requests
from sklearn.linear_model import LogisticRegression

from airflow_mlplatform.exceptions import DeploymentFailedError
from airflow_mlplatform.models.gate import parse_gate
from airflow_mlplatform.runners.rollout import Rollout
from airflow_mlplatform.specs import inference as isvc
from kube.fixtures import first_event

pytestmark = pytest.mark.slow
NS = "default"
SMOKE = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.9, 0.2, 0.3]}]}
BAD_SHAPE = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [0.9, 0.2]}]}


@pytest.fixture(scope="module")
def models(tmp_path_factory, kserve):
    """pvc://models/{a,b,bad}: model a says 1 for SMOKE, model b says 0, bad is not a model."""
    root = tmp_path_factory.mktemp("pvc-models")
    rng = np.random.default_rng(0)
    x = rng.random((200, 3))
    for name, labels in (("a", x[:, 0] > 0.5), ("b", x[:, 0] <= 0.5)):
        (root / name).mkdir()
        joblib.dump(LogisticRegression().fit(x, labels.astype(int)), root / name / "model.joblib")
    (root / "bad").mkdir()
    (root / "bad" / "model.joblib").write_bytes(b"not a pickle at all")
    kserve.pvcs["models"] = root
    return root


def _predictor(model: str, **kw):
    return isvc.build_predictor(storage_uri=f"pvc://models/{model}", model_format="sklearn", **kw)


def _rollout(name: str, model: str, *, by: str = "dag/deploy/run/1", **kw) -> Rollout:
    predictor = _predictor(model, canary_traffic_percent=kw.pop("canary", None))
    return Rollout(
        name=name,
        namespace=NS,
        predictor=predictor,
        model=f"churn/{model}",
        by=by,
        startup_timeout=kw.pop("startup_timeout", 90),
        **kw,
    )


def _get(k8s, name):
    return k8s.call(k8s.emulator.get_object, "serving.kserve.io/v1beta1/inferenceservices", NS, name)


def _predict(url: str, name: str) -> tuple[int, str]:
    """What the endpoint answers for SMOKE: (prediction, revision that answered)."""
    r = requests.post(f"{url}/v2/models/{name}/infer", json=SMOKE, timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["outputs"][0]["data"][0]), r.headers["x-kserve-revision"]


def _restored(obj: dict, before: dict) -> bool:
    """The previous predictor is back, pinned: ``canaryTrafficPercent: 0`` keeps the revision that
    served before at 100% while the restored spec's own revision starts (KServe's rollback and pin)."""
    predictor = dict(obj["spec"]["predictor"])
    return predictor.pop("canaryTrafficPercent", None) == 0 and predictor == before["spec"]["predictor"]


def _deployed(k8s, name: str, model: str) -> dict:
    """Roll ``model`` out to a fresh ``name`` (the previous revision of later tests)."""
    result = _rollout(name, model).run()
    assert result.changed and result.revision
    return _get(k8s, name)


def test_first_rollout_canary_promotion_and_an_idempotent_rerun(k8s, kserve, models):
    first = _rollout("r-main", "a")
    result = first.run()
    assert (result.changed, result.previous_model, result.canary) == (True, None, None)
    assert result.url and result.revision == "r-main-predictor-00001"
    assert _predict(result.url, "r-main") == (1, result.revision)
    assert result.api_requests <= 4

    mark = k8s.mark()
    canary = _rollout(
        "r-main",
        "b",
        canary=30,
        smoke_request=SMOKE,
        canary_gate=parse_gate("errors == 0 and latency_ms <= prev.latency_ms * 20 + 500", alias="prev"),
    )
    result = canary.run()
    api = k8s.requests_since(mark)
    assert result.previous_model == "churn/a" and result.canary == 30
    assert result.revision == "r-main-predictor-00002"
    assert "prev.latency_ms" in result.gate and result.metrics["smoke_errors"] == 0
    obj = _get(k8s, "r-main")
    assert isvc.traffic_of(obj) == {"r-main-predictor-00002": 100}  # promoted
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert isvc.read_rollout(obj)["phase"] == "done"
    assert {_predict(result.url, "r-main") for _ in range(5)} == {(0, result.revision)}
    # GET, PATCH, WATCH, PATCH (promote), WATCH, PATCH (done): however long each wait takes
    assert len(api) == result.api_requests <= 8, [f"{r.method} {r.url}" for r in api]

    mark = k8s.mark()
    again = _rollout("r-main", "b", canary=30, smoke_request=SMOKE).run()
    assert (again.changed, again.revision) == (False, "r-main-predictor-00002")
    assert [r.method for r in k8s.requests_since(mark)] == ["GET"]  # nothing written


def test_failed_to_load_rolls_back_and_the_previous_revision_keeps_serving(k8s, kserve, models):
    before = _deployed(k8s, "r-fail", "a")
    with pytest.raises(DeploymentFailedError) as e:
        _rollout("r-fail", "bad").run()
    message = str(e.value)
    assert "FailedToLoad" in message and "ModelLoadFailed" in message
    assert "Rolled back: churn/a serves again" in message
    obj = _get(k8s, "r-fail")
    assert _restored(obj, before)
    assert isvc.read_rollout(obj)["phase"] == "rolled-back"
    assert _predict(isvc.endpoint(obj), "r-fail")[0] == 1


def test_a_failing_smoke_test_rolls_the_canary_back(k8s, kserve, models):
    before = _deployed(k8s, "r-smoke", "a")
    with pytest.raises(DeploymentFailedError, match=r"smoke test of the new revision failed \(3/3\): HTTP"):
        _rollout("r-smoke", "b", canary=10, smoke_request=BAD_SHAPE).run()
    obj = _get(k8s, "r-smoke")
    assert _restored(obj, before)
    assert _predict(isvc.endpoint(obj), "r-smoke")[0] == 1
    traffic = isvc.traffic_of(obj)
    assert traffic.get("r-smoke-predictor-00001") == 100 and sum(traffic.values()) == 100


def test_a_canary_gate_that_fails_rolls_back(k8s, kserve, models):
    before = _deployed(k8s, "r-gate", "a")
    gate = parse_gate("latency_ms < 0", alias="prev")
    with pytest.raises(DeploymentFailedError, match=r"the canary gate failed: latency_ms < 0 with"):
        _rollout("r-gate", "b", canary=10, smoke_request=SMOKE, canary_gate=gate).run()
    obj = _get(k8s, "r-gate")
    assert _restored(obj, before) and isvc.read_rollout(obj)["phase"] == "rolled-back"
    assert _predict(isvc.endpoint(obj), "r-gate")[0] == 1


def test_ready_of_the_old_generation_does_not_count(k8s, kserve, models):
    _deployed(k8s, "r-lag", "a")
    kserve.lag = 1.5
    try:
        result = _rollout("r-lag", "b").run()
    finally:
        kserve.lag = 0.0
    # Ready=True was there all along (for generation 1); the rollout waited for generation 2
    assert result.revision == "r-lag-predictor-00002"
    assert _predict(result.url, "r-lag") == (0, "r-lag-predictor-00002")


def test_not_ready_within_the_startup_timeout_rolls_back(k8s, kserve, models):
    before = _deployed(k8s, "r-slow", "a")
    kserve.hold.add((NS, "r-slow"))
    try:
        with pytest.raises(
            DeploymentFailedError, match=r"did not become ready within 2 s \(startup_timeout\)"
        ):
            _rollout("r-slow", "b", startup_timeout=2).run()
    finally:
        kserve.hold.discard((NS, "r-slow"))
    assert _restored(_get(k8s, "r-slow"), before)


def test_a_kill_mid_rollout_restores_the_previous_predictor(k8s, kserve, models):
    before = _deployed(k8s, "r-kill", "a")
    kserve.hold.add((NS, "r-kill"))
    rollout = _rollout("r-kill", "b", canary=20)
    errors: list[BaseException] = []

    def run():
        try:
            rollout.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    try:
        thread.start()
        for _ in range(200):
            if _get(k8s, "r-kill")["spec"]["predictor"]["model"]["storageUri"].endswith("/b"):
                break
            time.sleep(0.05)
        rollout.kill()  # what on_kill does, from another thread
    finally:
        kserve.hold.discard((NS, "r-kill"))
    thread.join(60)
    assert not thread.is_alive()
    obj = _get(k8s, "r-kill")
    assert _restored(obj, before)
    assert isvc.read_rollout(obj)["phase"] == "rolled-back"
    assert errors and "rolled back" in str(errors[0]).lower()
    assert _predict(isvc.endpoint(obj), "r-kill")[0] == 1


def test_a_retry_reattaches_to_the_rollout_of_its_earlier_try(k8s, kserve, models):
    _deployed(k8s, "r-retry", "a")
    kserve.hold.add((NS, "r-retry"))
    try:
        first = _rollout("r-retry", "b", by="dag/deploy/run/1")
        first.start()  # the first try dies here (its worker was lost)
        mark = k8s.mark()
        second = _rollout("r-retry", "b", by="dag/deploy/run/2")
        obj = second.start()
        assert second.reattached and [r.method for r in k8s.requests_since(mark)] == ["GET"]
    finally:
        kserve.hold.discard((NS, "r-retry"))
    result = second.finish(second.wait_ready(obj))
    assert result.reattached and result.previous_model == "churn/a"
    assert _predict(result.url, "r-retry")[0] == 0


def test_a_first_rollout_that_fails_is_deleted(k8s, kserve, models):
    with pytest.raises(DeploymentFailedError, match="It never served, so it was deleted"):
        _rollout("r-new-bad", "bad").run()
    assert _get(k8s, "r-new-bad") is None


def test_storage_the_cluster_cannot_reach_fails_to_load_with_the_reason(k8s, kserve, models):
    rollout = Rollout(
        name="r-nostore",
        namespace=NS,
        predictor=isvc.build_predictor(storage_uri="pvc://models/missing", model_format="sklearn"),
        model="churn/missing",
        by="d/t/r/1",
        startup_timeout=60,
    )
    with pytest.raises(
        DeploymentFailedError, match=r"storage-initializer.*It never served, so it was deleted"
    ):
        rollout.run()
    assert _get(k8s, "r-nostore") is None


def test_a_kill_after_the_canary_is_ready_keeps_the_previous_revision_at_full_traffic(k8s, kserve, models):
    before = _deployed(k8s, "r-kill2", "a")
    rollout = _rollout("r-kill2", "b", canary=40)
    obj = rollout.wait_ready(rollout.start())  # the canary serves its 40%
    assert isvc.traffic_of(obj) == {"r-kill2-predictor-00002": 40, "r-kill2-predictor-00001": 60}
    rollout.kill()
    obj = _get(k8s, "r-kill2")
    assert _restored(obj, before)
    with pytest.raises(DeploymentFailedError, match="the task was killed"):
        rollout.finish(obj)
    # the model that served before answers every request; the killed canary none
    assert {_predict(isvc.endpoint(obj), "r-kill2")[0] for _ in range(8)} == {1}


def test_a_concurrent_write_answered_409_is_decided_again(k8s, k8s_clean, kserve, models):
    _deployed(k8s, "r-409", "a")
    fault = k8s.inject(409, match=lambda r: str(r.method).upper().endswith("PATCH"))
    result = _rollout("r-409", "b").run()
    assert k8s.call(lambda: fault.hits) == 1  # the first PATCH was refused; read again, written again
    assert result.changed and _predict(result.url, "r-409")[0] == 0
    assert isvc.read_rollout(_get(k8s, "r-409"))["phase"] == "done"


def test_the_smoke_test_goes_through_the_serving_connection_without_showing_its_token(
    k8s, kserve, models, monkeypatch, caplog
):
    _deployed(k8s, "r-conn", "a")
    rollout = _rollout("r-conn", "b", canary=20, smoke_request=SMOKE, serving_conn_id="serving_test")
    obj = rollout.wait_ready(rollout.start())
    latest = isvc.tag_url(obj, "latest")
    host, port = latest.removeprefix("http://").split(":")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SERVING_TEST",
        json.dumps({"conn_type": "http", "host": host, "port": int(port), "password": "tok-3f9a-secret"}),
    )
    caplog.set_level("DEBUG")
    result = rollout.finish(obj)
    assert result.smoke["url"] == latest and result.metrics["smoke_errors"] == 0
    assert "tok-3f9a-secret" not in caplog.text and "tok-3f9a-secret" not in json.dumps(result.__dict__)


def test_deferred_the_trigger_waits_then_the_worker_finishes(k8s, kserve, models):
    _deployed(k8s, "r-defer", "a")
    kserve.lag = 0.5
    try:
        rollout = _rollout("r-defer", "b", canary=50, smoke_request=SMOKE)
        obj = rollout.start()
        trigger = rollout.trigger(obj)
        trigger.start_jitter = 0
        event = first_event(trigger)
    finally:
        kserve.lag = 0.0
    assert (event["status"], event["state"], event["succeeded"]) == ("done", "Ready", True)
    # what execute_complete does, with a fresh Rollout from the same plan
    result = _rollout("r-defer", "b", canary=50, smoke_request=SMOKE).complete(event)
    assert (result.canary, result.previous_model) == (50, "churn/a")
    assert _predict(result.url, "r-defer")[0] == 0


def test_deferred_a_startup_timeout_rolls_back_in_the_triggerer(k8s, kserve, models):
    before = _deployed(k8s, "r-dslow", "a")
    kserve.hold.add((NS, "r-dslow"))
    try:
        rollout = _rollout("r-dslow", "b", startup_timeout=1)
        trigger = rollout.trigger(rollout.start())
        trigger.start_jitter = 0
        event = first_event(trigger)
    finally:
        kserve.hold.discard((NS, "r-dslow"))
    assert event["status"] == "error" and "did not start within 1 s" in event["message"]
    obj = _get(k8s, "r-dslow")
    assert _restored(obj, before)  # the async stop rule restored it
    with pytest.raises(DeploymentFailedError, match="Rolled back: churn/a serves again"):
        _rollout("r-dslow", "b", startup_timeout=30).complete(event)


def test_deferred_a_kill_restores_the_previous_predictor_from_the_triggerer(k8s, kserve, models):
    before = _deployed(k8s, "r-dkill", "a")
    kserve.hold.add((NS, "r-dkill"))
    try:
        rollout = _rollout("r-dkill", "b", canary=10)
        trigger = rollout.trigger(rollout.start())
        asyncio.run(trigger.on_kill())  # the user marked the deferred task failed
    finally:
        kserve.hold.discard((NS, "r-dkill"))
    obj = _get(k8s, "r-dkill")
    assert _restored(obj, before)
    assert isvc.read_rollout(obj)["phase"] == "rolled-back"
