"""The fake KServe controller behaves as KServe (Knative mode) does, for the real kubernetes client:
revisions (a restored spec is a new one), canary traffic (applied before the new revision is ready,
"latest" = the latest READY revision), tags only with tag routing, failed loads, lag, deletion; its
statuses fit the CRD's status schema."""

from __future__ import annotations

import functools
import http.server
import threading
import time

import pytest
import requests
from kubernetes import client, config

from specs.crd_schema import crd_schema, validate

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
CRD = "serving.kserve.io_inferenceservices.yaml"
NS = "default"
TAG_ROUTING = {"serving.kserve.io/enable-tag-routing": "true"}
INFER = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.9, 0.2, 0.3]}]}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Folders of two real scikit-learn models (predicting 1 and 2) and one of a garbage file."""
    import joblib
    from sklearn.dummy import DummyClassifier

    root = tmp_path_factory.mktemp("kserve-models")
    for name, constant in (("one", 1), ("two", 2)):
        (root / name).mkdir()
        model = DummyClassifier(strategy="constant", constant=constant).fit([[0, 0, 0], [1, 1, 1]], [1, 2])
        joblib.dump(model, root / name / "model.joblib")
        (root / name / "README.md").write_text("a folder artifact holds more than its model\n")
    (root / "garbage").mkdir()
    (root / "garbage" / "model.joblib").write_bytes(b"garbage, not a model")
    return root


@pytest.fixture(scope="module")
def http_models(models):
    """The model folders over plain HTTP on loopback (for http:// storage URIs)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(models))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


class Isvcs:
    """InferenceServices through the real kubernetes client; deleted at the end of the test."""

    def __init__(self, kubeconfig):
        api = config.new_client_from_config(str(kubeconfig))
        self.api = client.CustomObjectsApi(api)
        self.names: list[str] = []

    def create(self, name, uri, annotations=None, **predictor):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "InferenceService",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
            "spec": {
                "predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}, **predictor}
            },
        }
        self.names.append(name)
        created = self.api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        validate(body, CRD, VERSION)  # after the create: the first reads the schema as the model loads
        return created

    def patch(self, name, predictor):
        return self.api.patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, name, {"spec": {"predictor": predictor}}
        )

    def get(self, name):
        return self.api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)

    def wait(self, name, what, timeout=60.0):
        """The object once ``what(obj)`` holds; its status checked against the CRD."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(name)
            if what(obj):
                check_status(obj)
                return obj
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: never {what.__doc__ or what}; status {obj.get('status')}")
            time.sleep(0.05)

    def wait_ready(self, name, generation):
        return self.wait(name, lambda o: reconciled(o, generation) and condition(o, "Ready") == "True")

    def cleanup(self):
        for name in self.names:
            try:
                self.api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
            except client.ApiException as e:
                if e.status != 404:
                    raise


def check_status(obj):
    """The whole object fits the CRD schema; the status has only the fields the schema lists."""
    validate(obj, CRD, VERSION)
    fields = crd_schema(CRD, VERSION)["properties"]["status"]["properties"]
    assert set(obj["status"]) <= set(fields), set(obj["status"]) - set(fields)


def reconciled(obj, generation):
    return (obj.get("status") or {}).get("observedGeneration") == generation


def traffic(obj):
    return obj["status"]["components"]["predictor"].get("traffic")


def revisions(kserve, name):
    return [(r["name"], r["loaded"]) for r in kserve.revisions(NS, name)]


def condition(obj, kind, field="status"):
    return next((c.get(field) for c in obj["status"].get("conditions", []) if c["type"] == kind), None)


def infer(url, name="iris", **kwargs):
    """(revision, predicted class) of a v2 infer request to ``url``."""
    resp = requests.post(f"{url}/v2/models/{name}/infer", json=INFER, timeout=30, **kwargs)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model_name"] == name
    [predicted] = body["outputs"][0]["data"]
    return resp.headers["x-kserve-revision"], predicted


@pytest.fixture
def isvcs(k8s, kserve, models):
    kserve.pvcs["models"] = models
    bed = Isvcs(k8s.kubeconfig)
    yield bed
    kserve.lag = 0.0
    kserve.hold.clear()
    bed.cleanup()


def test_first_revision_is_ready_and_answers_v2_through_the_router(isvcs, kserve):
    isvcs.create("iris", "pvc://models/one")
    obj = isvcs.wait_ready("iris", 1)
    status = obj["status"]
    url = status["url"]
    assert url.startswith("http://127.0.0.1:")
    assert status["address"] == {"url": url}
    assert {c["type"]: c["status"] for c in status["conditions"]} == dict.fromkeys(
        ("IngressReady", "LatestDeploymentReady", "PredictorReady", "Ready", "RoutesReady"), "True"
    )
    predictor = status["components"]["predictor"]
    rev = "iris-predictor-00001"
    assert predictor["latestCreatedRevision"] == predictor["latestReadyRevision"] == rev
    assert predictor["latestRolledoutRevision"] == rev
    assert "previousRolledoutRevision" not in predictor
    assert predictor["url"] == url
    # no tag routing annotation: no tags, no tag URLs
    assert predictor["traffic"] == [{"revisionName": rev, "percent": 100, "latestRevision": True}]
    assert kserve.url(NS, "iris", "latest") is None
    assert status["modelStatus"] == {
        "transitionStatus": "UpToDate",
        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        "copies": {"failedCopies": 0, "totalCopies": 1},
    }
    assert infer(url) == (rev, 1)
    ready = requests.get(f"{url}/v2/models/iris/ready", timeout=10)
    assert (ready.status_code, ready.headers["x-kserve-revision"]) == (200, rev)
    other = requests.post(f"{url}/v2/models/other/infer", json=INFER, timeout=10)
    assert other.status_code == 404
    assert other.json() == {"error": "Model other not found"}
    [revision] = kserve.revisions(NS, "iris")
    assert revision["name"] == rev
    assert revision["loaded"]
    assert revision["model"] == f"default-iris-{rev}"


def test_canary_splits_traffic_with_per_tag_urls_then_promotes(isvcs, kserve, http_models):
    isvcs.create("canary", "pvc://models/one", annotations=TAG_ROUTING)
    url = isvcs.wait_ready("canary", 1)["status"]["url"]
    isvcs.patch(
        "canary", {"model": {"storageUri": f"{http_models}/two/model.joblib"}, "canaryTrafficPercent": 30}
    )
    obj = isvcs.wait_ready("canary", 2)
    first, second = "canary-predictor-00001", "canary-predictor-00002"
    predictor = obj["status"]["components"]["predictor"]
    latest_url, prev_url = kserve.url(NS, "canary", "latest"), kserve.url(NS, "canary", "prev")
    assert predictor["traffic"] == [
        {"tag": "latest", "revisionName": second, "percent": 30, "latestRevision": True, "url": latest_url},
        {"tag": "prev", "revisionName": first, "percent": 70, "latestRevision": False, "url": prev_url},
    ]
    assert predictor["latestCreatedRevision"] == predictor["latestReadyRevision"] == second
    assert predictor["latestRolledoutRevision"] == first
    assert obj["status"]["url"] == url
    assert infer(latest_url, "canary") == (second, 2)
    assert infer(prev_url, "canary") == (first, 1)
    seen = {infer(url, "canary") for _ in range(40)}
    assert seen == {(second, 2), (first, 1)}  # both, with 0.7**40 odds of missing one

    # promotion: a traffic-only change makes no new revision; the old one is unloaded
    isvcs.patch("canary", {"canaryTrafficPercent": None})
    obj = isvcs.wait_ready("canary", 3)
    predictor = obj["status"]["components"]["predictor"]
    assert [t["revisionName"] for t in predictor["traffic"]] == [second]
    assert predictor["traffic"][0]["percent"] == 100
    assert predictor["latestRolledoutRevision"] == second
    assert predictor["previousRolledoutRevision"] == first
    assert [(r["name"], r["loaded"]) for r in kserve.revisions(NS, "canary")] == [
        (first, False),
        (second, True),
    ]
    assert {infer(url, "canary") for _ in range(5)} == {(second, 2)}
    assert requests.get(f"{prev_url}/v2/models/canary/ready", timeout=10).status_code == 404  # no prev


def test_failed_load_blocks_while_the_previous_revision_serves(isvcs, kserve):
    isvcs.create("broken", "pvc://models/one")
    url = isvcs.wait_ready("broken", 1)["status"]["url"]
    first = "broken-predictor-00001"
    isvcs.patch("broken", {"model": {"storageUri": "pvc://models/garbage"}})
    obj = isvcs.wait(
        "broken",
        lambda o: reconciled(o, 2) and o["status"]["modelStatus"]["transitionStatus"] != "InProgress",
    )
    status = obj["status"]
    message = condition(obj, "Ready", "message")
    assert message.startswith(("ValueError", "UnpicklingError", "EOFError", "KeyError")), message
    for kind in ("Ready", "PredictorReady", "LatestDeploymentReady"):
        assert condition(obj, kind) == "False"
        assert condition(obj, kind, "reason") == "RevisionFailed"
    assert condition(obj, "IngressReady") == "True"
    model_status = status["modelStatus"]
    assert model_status["transitionStatus"] == "BlockedByFailedLoad"
    assert model_status["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    failure = model_status["lastFailureInfo"]
    assert (failure["reason"], failure["message"], failure["location"]) == (
        "ModelLoadFailed",
        message,
        "broken-predictor-00002",
    )
    predictor = status["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "broken-predictor-00002"
    assert predictor["latestReadyRevision"] == first
    assert predictor["traffic"] == [{"revisionName": first, "percent": 100, "latestRevision": True}]
    assert status["url"] == url
    assert infer(url, "broken") == (first, 1)

    # what the storage initializer and the runtimes refuse fails the same way, before any load
    for generation, predictor_patch, why in (
        (
            3,
            {"model": {"storageUri": "s3://bucket/model"}},
            "storage-initializer: cannot download s3://bucket/model: unsupported storage scheme s3://",
        ),
        (
            4,
            {"model": {"storageUri": "pvc://nope/model"}},
            'storage-initializer: cannot download pvc://nope/model: persistentvolumeclaim "nope" not found',
        ),
        (
            5,
            {"model": {"storageUri": "pvc://models/missing"}},
            "storage-initializer: cannot download pvc://models/missing: ",
        ),
        (
            6,
            {"model": {"storageUri": "pvc://models/one", "modelFormat": {"name": "xgboost"}}},
            "no ServingRuntime supports model format xgboost",
        ),
    ):
        isvcs.patch("broken", predictor_patch)
        obj = isvcs.wait(
            "broken", lambda o, g=generation: reconciled(o, g) and condition(o, "Ready") == "False"
        )
        assert condition(obj, "Ready", "message").startswith(why)
        assert obj["status"]["modelStatus"]["lastFailureInfo"]["message"].startswith(why)
    assert infer(url, "broken") == (first, 1)
    # back to a good model: ready again, the failure forgotten
    isvcs.patch("broken", {"model": {"modelFormat": {"name": "sklearn"}}})
    obj = isvcs.wait_ready("broken", 7)
    assert "lastFailureInfo" not in obj["status"]["modelStatus"]
    # the first revision's template again, yet a new revision (Knative compares with the latest
    # created one), loaded anew; the first, routed no more, unloaded
    restored = "broken-predictor-00007"
    predictor = obj["status"]["components"]["predictor"]
    assert predictor["latestReadyRevision"] == predictor["latestRolledoutRevision"] == restored
    assert predictor["previousRolledoutRevision"] == first
    assert infer(url, "broken") == (restored, 1)
    assert [r for r in revisions(kserve, "broken") if r[1]] == [(restored, True)]

    # a first revision that fails: nothing serves, no URL
    isvcs.create("broken-first", "pvc://models/garbage")
    obj = isvcs.wait("broken-first", lambda o: reconciled(o, 1) and condition(o, "Ready") == "False")
    assert obj["status"]["modelStatus"]["states"] == {
        "activeModelState": "FailedToLoad",
        "targetModelState": "FailedToLoad",
    }
    assert "url" not in obj["status"]


def test_a_restored_spec_is_a_new_revision_and_the_bad_canary_keeps_its_share(isvcs, kserve):
    isvcs.create("restore", "pvc://models/one")
    url = isvcs.wait_ready("restore", 1)["status"]["url"]
    first, second, third = (f"restore-predictor-{n:05d}" for n in (1, 2, 3))
    isvcs.patch("restore", {"model": {"storageUri": "pvc://models/two"}, "canaryTrafficPercent": 20})
    obj = isvcs.wait_ready("restore", 2)
    prev_url = kserve.url(NS, "restore", "prev")
    assert prev_url is not None
    assert kserve.url(NS, "restore", "latest") is None  # KServe tags "latest" only with tag routing
    assert traffic(obj) == [
        {"revisionName": second, "percent": 20, "latestRevision": True},
        {"tag": "prev", "revisionName": first, "percent": 80, "latestRevision": False, "url": prev_url},
    ]

    # back to the first template, the canary at 0%: a new revision; the split applies at once,
    # "latest" being the latest READY revision (the bad canary) until the new one is ready
    kserve.hold.add((NS, "restore"))
    isvcs.patch("restore", {"model": {"storageUri": "pvc://models/one"}, "canaryTrafficPercent": 0})
    obj = isvcs.wait("restore", lambda o: reconciled(o, 3))
    predictor = obj["status"]["components"]["predictor"]
    assert [predictor[f"{k}Revision"] for k in ("latestCreated", "latestReady", "latestRolledout")] == [
        third,
        second,
        first,
    ]
    assert condition(obj, "Ready") == "Unknown"
    split = [
        {"revisionName": second, "percent": 0, "latestRevision": True},
        {"tag": "prev", "revisionName": first, "percent": 100, "latestRevision": False, "url": prev_url},
    ]
    assert traffic(obj) == split
    assert {infer(url, "restore") for _ in range(10)} == {(first, 1)}
    kserve.hold.discard((NS, "restore"))
    obj = isvcs.wait_ready("restore", 3)
    split[0]["revisionName"] = third
    assert traffic(obj) == split
    assert obj["status"]["components"]["predictor"]["latestRolledoutRevision"] == first
    assert revisions(kserve, "restore") == [(first, True), (second, False), (third, True)]

    # canaryTrafficPercent alone: no new revision; without it the latest ready one is rolled out
    isvcs.patch("restore", {"canaryTrafficPercent": None})
    obj = isvcs.wait_ready("restore", 4)
    predictor = obj["status"]["components"]["predictor"]
    assert traffic(obj) == [{"revisionName": third, "percent": 100, "latestRevision": True}]
    assert (predictor["latestRolledoutRevision"], predictor["previousRolledoutRevision"]) == (third, first)
    assert revisions(kserve, "restore") == [(first, False), (second, False), (third, True)]

    # a canary share on the rolled-out revision itself: KServe rolls back to the previous one,
    # which loads again
    isvcs.patch("restore", {"canaryTrafficPercent": 10})
    obj = isvcs.wait_ready("restore", 5)
    assert traffic(obj) == [
        {"revisionName": third, "percent": 10, "latestRevision": True},
        {"tag": "prev", "revisionName": first, "percent": 90, "latestRevision": False, "url": prev_url},
    ]
    assert obj["status"]["components"]["predictor"]["latestRolledoutRevision"] == first
    assert infer(prev_url, "restore") == (first, 1)


def test_lag_keeps_the_old_status_and_hold_keeps_it_loading(isvcs, kserve):
    isvcs.create("slow", "pvc://models/one")
    isvcs.wait_ready("slow", 1)
    kserve.lag = 1.0
    count = kserve.reconciled
    isvcs.patch("slow", {"model": {"storageUri": "pvc://models/two"}})
    isvcs.patch("slow", {"model": {"storageUri": "pvc://models/two/model.joblib"}})
    time.sleep(0.4)
    obj = isvcs.get("slow")
    assert obj["metadata"]["generation"] == 3
    assert reconciled(obj, 1)
    assert condition(obj, "Ready") == "True"  # Ready alone describes the old revision
    check_status(obj)
    obj = isvcs.wait_ready("slow", 3)
    assert obj["status"]["components"]["predictor"]["latestReadyRevision"] == "slow-predictor-00002"
    assert kserve.reconciled == count + 1  # only the newest generation
    assert [r["name"] for r in kserve.revisions(NS, "slow")] == [
        "slow-predictor-00001",
        "slow-predictor-00002",
    ]

    kserve.lag = 0.0
    kserve.hold.add((NS, "slow"))
    isvcs.patch("slow", {"model": {"storageUri": "pvc://models/one/model.joblib"}})
    obj = isvcs.wait("slow", lambda o: reconciled(o, 4))
    assert condition(obj, "Ready") == "Unknown"
    assert condition(obj, "Ready", "reason") == "Loading"
    assert condition(obj, "Ready", "message") == "revision slow-predictor-00003 is loading"
    assert condition(obj, "IngressReady") == "True"
    assert obj["status"]["modelStatus"] == {
        "transitionStatus": "InProgress",
        "states": {"activeModelState": "Loaded", "targetModelState": "Loading"},
        "copies": {"failedCopies": 0, "totalCopies": 1},
    }
    predictor = obj["status"]["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "slow-predictor-00003"
    assert predictor["latestReadyRevision"] == "slow-predictor-00002"
    # no canary: all traffic to the latest READY revision while the new one loads
    assert predictor["traffic"] == [
        {"revisionName": "slow-predictor-00002", "percent": 100, "latestRevision": True}
    ]
    time.sleep(0.3)
    assert condition(isvcs.get("slow"), "Ready") == "Unknown"
    assert infer(obj["status"]["url"], "slow") == ("slow-predictor-00002", 2)
    kserve.hold.discard((NS, "slow"))
    obj = isvcs.wait_ready("slow", 4)
    assert obj["status"]["components"]["predictor"]["latestReadyRevision"] == "slow-predictor-00003"

    # a new service held: loading, nothing serves, no URL yet
    kserve.hold.add((NS, "held"))
    isvcs.create("held", "pvc://models/one")
    obj = isvcs.wait("held", lambda o: reconciled(o, 1))
    assert condition(obj, "Ready") == "Unknown"
    assert obj["status"]["modelStatus"] == {
        "transitionStatus": "InProgress",
        "states": {"activeModelState": "Pending", "targetModelState": "Loading"},
    }
    assert obj["status"]["components"] == {"predictor": {"latestCreatedRevision": "held-predictor-00001"}}
    assert "url" not in obj["status"]


def test_delete_unloads_every_revision_and_closes_the_router(isvcs, kserve, k8s):
    isvcs.create("gone", "pvc://models/one")
    url = isvcs.wait_ready("gone", 1)["status"]["url"]
    [revision] = kserve.revisions(NS, "gone")
    server = kserve.server.url
    assert requests.get(f"{server}/v2/models/{revision['model']}/ready", timeout=10).status_code == 200
    isvcs.api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "gone")

    def unloaded():
        return requests.get(f"{server}/v2/models/{revision['model']}/ready", timeout=10).status_code == 404

    def closed():
        try:
            requests.get(f"{url}/v2/models/gone/ready", timeout=10)
        except requests.ConnectionError:
            return True
        return False

    deadline = time.monotonic() + 30
    while not (unloaded() and closed()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert unloaded()
    assert closed()
    assert kserve.revisions(NS, "gone") == []
    assert kserve.url(NS, "gone") is None
    # made again under the same name, deleted and made again at once: the same revision and model
    # names, served anew
    isvcs.create("gone", "pvc://models/two")
    isvcs.api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "gone")
    isvcs.create("gone", "pvc://models/two")
    obj = isvcs.wait_ready("gone", 1)
    assert infer(obj["status"]["url"], "gone") == ("gone-predictor-00001", 2)
    assert [r["loaded"] for r in kserve.revisions(NS, "gone")] == [True]
