"""TFJobOperator, backend kubeflow, on the Kubernetes test bed with a fake training operator.

The fake operator creates the replica pods with TF_CONFIG; the fake kubelet runs each pod's
command as a local process, so the replicas really run (a stand-in script, no TensorFlow).
"""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from airflow_mlplatform.exceptions import ConfigurationError
from airflow_mlplatform.operators.tfjob import TFJobOperator
from fake_training_operator import TFJOBS

STAND_IN = """
import json, os, sys, time
cfg = json.loads(os.environ["TF_CONFIG"])
t = cfg["task"]
name = f"{t['type']}-{t['index']}"
params = json.loads(os.environ.get("MLPLATFORM_PARAMETERS") or "{}")
mode = os.environ.get("MODE", "ok")
if t["type"] == "ps" or mode == "hang":
    time.sleep(600)
if mode == "slow":
    time.sleep(3)
if mode == "slowlog" and t["type"] == "chief":
    print(json.dumps({"step": 0, "loss": 1.0}), flush=True)
    time.sleep(2)  # the test cuts the log stream here
if mode == "fail":
    if name != "worker-1":
        time.sleep(600)  # the others wait for worker-1, as a collective op would
    print("worker-1: NCCL error", flush=True)
    sys.exit(3)
if t["type"] == "chief":
    print(json.dumps({"step": 1, "loss": 0.5}), flush=True)
    print(json.dumps({"step": 2, "loss": 0.25}), flush=True)
    size = sum(len(v) for v in cfg["cluster"].values())
    for key, value in (("role", name), ("cluster_size", size), ("lr", params.get("lr"))):
        print("::mlplatform::record " + json.dumps({"name": key, "value": value}), flush=True)
"""


@pytest.fixture(scope="session")
def tfjob_bed(k8s_kinds):
    return k8s_kinds


@pytest.fixture
def stand_in(tmp_path) -> Path:
    script = tmp_path / "train.py"
    script.write_text(STAND_IN)
    return script


def _jobs(bed) -> list[dict]:
    return bed.call(bed.emulator.objects, TFJOBS, None)


def _job_pods_running(bed, prefix: str = "tfjob-") -> list[str]:
    return [p for p in bed.running_processes() if p.startswith(prefix)]


def _settled(bed, prefix: str) -> bool:
    for _ in range(200):
        if not _job_pods_running(bed, prefix):
            return True
        time.sleep(0.05)
    return False


def _dag(dag_id: str, script: Path, mode: str, deferrable: bool = False) -> str:
    return textwrap.dedent(
        f"""
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.tfjob import TFJobOperator

        with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            TFJobOperator(
                task_id="train",
                command=[{sys.executable!r}, {str(script)!r}],
                image="tensorflow/tensorflow:2.16.1",
                replicas={{"Chief": 1, "Worker": 2, "PS": 1}},
                parameters={{"lr": 0.1}},
                env={{"MODE": {mode!r}}},
                backend="kubeflow",
                deferrable={deferrable!r},
            )
        """
    )


def test_tfjob_runs_streams_the_chief_and_is_deleted(tfjob_bed, run_dag, stand_in):
    result = run_dag(_dag("tfjob_kf_ok", stand_in, "ok"), "tfjob_kf_ok")
    assert result.task_states() == {"train": "success"}
    assert result.xcom("train") == {"role": "chief-0", "cluster_size": 4, "lr": 0.1}
    assert result.xcom("train", "metrics") == {"step": 2, "loss": 0.25}
    record = result.xcom("train", "execution_record")
    assert record["status"] == "success"
    where = record["where"]
    assert where["backend"] == "kubeflow" and where["replicas"] == {"Chief": 1, "Worker": 2, "PS": 1}
    assert where["leader"] == f"{where['tfjob']}-chief-0"
    assert record["environment"]["images"]["Worker"] == "tensorflow/tensorflow:2.16.1"
    assert [j for j in _jobs(tfjob_bed) if j["metadata"]["name"] == where["tfjob"]] == []  # deleted
    assert _settled(tfjob_bed, where["tfjob"])  # the PS pod was stopped too


def test_a_failing_replica_fails_the_task_and_the_job_is_deleted(tfjob_bed, run_dag, stand_in):
    result = run_dag(_dag("tfjob_kf_fail", stand_in, "fail"), "tfjob_kf_fail")
    assert result.task_states() == {"train": "failed"}
    record = result.xcom("train", "execution_record")
    assert record["status"] == "failed"
    assert "failed because" in record["error"] and "worker-1" in record["error"]
    name = record["where"]["tfjob"]
    assert [j for j in _jobs(tfjob_bed) if j["metadata"]["name"] == name] == []
    assert _settled(tfjob_bed, name)


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "kf", "train", "manual__kill", -1, 1

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _operator(script: Path, mode: str) -> TFJobOperator:
    return TFJobOperator(
        task_id="train",
        command=[sys.executable, str(script)],
        image="tensorflow/tensorflow:2.16.1",
        replicas={"Worker": 2},
        env={"MODE": mode},
        backend="kubeflow",
    )


def test_on_kill_deletes_the_tfjob_and_its_pods(tfjob_bed, stand_in):
    op = _operator(stand_in, "hang")
    ti = _TI()
    errors: list[BaseException] = []

    def run():
        try:
            op.execute({"ti": ti})
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(400):
        if len(_job_pods_running(tfjob_bed, "tfjob-train-")) == 2:
            break
        time.sleep(0.05)
    assert len(_job_pods_running(tfjob_bed, "tfjob-train-")) == 2
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive() and errors
    assert [
        j
        for j in _jobs(tfjob_bed)
        if j["metadata"]["labels"].get("mlplatform.airflow.apache.org/dag-id") == "kf"
    ] == []
    assert _settled(tfjob_bed, "tfjob-train-")
    assert ti.pushed["execution_record"]["status"] == "failed"


def test_a_cluster_without_the_tfjob_crd_is_a_clear_error(tfjob_bed, stand_in):
    tfjob_bed.call(tfjob_bed.emulator.undeclare, TFJOBS)
    try:
        with pytest.raises(ConfigurationError, match="the Kubeflow training operator is not installed"):
            _operator(stand_in, "ok").execute({"ti": _TI()})
    finally:
        tfjob_bed.call(tfjob_bed.emulator.declare, TFJOBS, "TFJob")


def test_a_restarted_task_re_attaches_to_its_running_tfjob(tfjob_bed, stand_in):
    """Try 1's worker died after creating the TFJob; try 2 adopts it instead of creating another."""
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
    from airflow_mlplatform.specs import pod as podspec
    from airflow_mlplatform.specs import tfjob as spec
    from airflow_mlplatform.specs.kinds import object_name

    class TI1(_TI):
        run_id = "manual__reattach"

    class TI2(TI1):
        try_number = 2

    identity = {
        "dag_id": "kf",
        "task_id": "train",
        "run_id": "manual__reattach",
        "map_index": -1,
        "try_number": 1,
    }
    manifest = spec.build_tfjob(
        name=object_name(spec.TFJOB_KIND, identity),
        namespace="default",
        image="tf",
        command=[sys.executable, str(stand_in)],
        replicas=spec.parse_replicas({"Chief": 1, "Worker": 1}),
        env={"MODE": "slow"},
        labels=podspec.identity_labels(identity),
    )
    MLPlatformKubernetesHook().create_object(spec.TFJOB_KIND.resource, "default", manifest)
    for _ in range(200):
        if len(_job_pods_running(tfjob_bed, manifest["metadata"]["name"])) == 2:
            break
        time.sleep(0.05)
    op = TFJobOperator(
        task_id="train",
        command=[sys.executable, str(stand_in)],
        image="tf",
        replicas={"Chief": 1, "Worker": 1},
        env={"MODE": "slow"},
        backend="kubeflow",
    )
    ti = TI2()
    values = op.execute({"ti": ti})
    assert values["role"] == "chief-0" and values["cluster_size"] == 2
    where = ti.pushed["execution_record"]["where"]
    assert where["reattached"] is True and where["tfjob"] == manifest["metadata"]["name"]
    jobs = [
        j
        for j in _jobs(tfjob_bed)
        if j["metadata"]["labels"].get(podspec.label_key("run_id")) == "manual__reattach"
    ]
    assert jobs == []  # adopted, finished, deleted; no second TFJob was ever created


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_deferrable_mode_waits_in_the_triggerer(tfjob_bed, run_dag, stand_in, mode):
    dag_id = f"tfjob_kf_deferred_{mode}"
    result = run_dag(_dag(dag_id, stand_in, mode, deferrable=True), dag_id)
    record = result.xcom("train", "execution_record")
    assert record["where"]["deferred"] is True
    name = record["where"]["tfjob"]
    if mode == "ok":
        assert result.task_states() == {"train": "success"}
        assert result.xcom("train") == {"role": "chief-0", "cluster_size": 4, "lr": 0.1}
        assert result.xcom("train", "metrics") == {"step": 2, "loss": 0.25}
    else:
        assert result.task_states() == {"train": "failed"}
        assert "failed because" in record["error"]
    assert [j for j in _jobs(tfjob_bed) if j["metadata"]["name"] == name] == []
    assert _settled(tfjob_bed, name)


def test_a_cut_log_stream_is_resumed_without_losing_or_repeating_lines(tfjob_bed, stand_in):
    class TI(_TI):
        run_id = "manual__logcut"

    ti = TI()
    op = TFJobOperator(
        task_id="train",
        command=[sys.executable, str(stand_in)],
        image="tf",
        replicas={"Chief": 1},
        env={"MODE": "slowlog"},
        backend="kubeflow",
        deferrable=False,
    )
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(values=op.execute({"ti": ti})))
    thread.start()
    dropped = 0
    for _ in range(200):
        chief = [
            p for (ns, name), p in tfjob_bed.kubelet.pods.items() if name.endswith("-chief-0") and p.lines
        ]
        if chief and tfjob_bed.call(lambda: len(tfjob_bed.kubelet._log_streams)):
            dropped = tfjob_bed.call(tfjob_bed.kubelet.drop_log_streams)
            break
        time.sleep(0.05)
    thread.join(60)
    assert dropped >= 1
    assert out["values"] == {"role": "chief-0", "cluster_size": 1, "lr": None}
    series = ti.pushed["execution_record"]["metrics"]["series"]
    assert [row["step"] for row in series] == [0, 1, 2]  # nothing lost, nothing twice


@pytest.mark.slow
def test_real_multiworker_training_through_the_kubeflow_backend(tfjob_bed):
    """The example training script, 2 Workers, TF_CONFIG as the (fake) training operator injects it."""
    pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
    from repo_paths import REPO

    class TI(_TI):
        run_id = "manual__real_tf"

    ti = TI()
    op = TFJobOperator(
        task_id="train",
        command=[sys.executable, str(REPO / "example_dags" / "scripts" / "tf_digits_train.py")],
        image="tensorflow/tensorflow:2.16.1",
        replicas={"Worker": 2},
        parameters={"epochs": 2, "batch_size": 32, "hidden_units": 32},
        backend="kubeflow",
        deferrable=False,
    )
    values = op.execute({"ti": ti})
    assert values["replicas"] == 2 and values["epochs"] == 2
    assert 0.5 < values["accuracy"] <= 1.0
    assert [row["epoch"] for row in ti.pushed["execution_record"]["metrics"]["series"]] == [1, 2]
    assert _settled(tfjob_bed, ti.pushed["execution_record"]["where"]["tfjob"])
