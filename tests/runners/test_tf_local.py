"""LocalTFJob with small stand-in replicas (plain Python, no TensorFlow): TF_CONFIG, failure, stop."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_mlplatform.exceptions import JobFailedError
from airflow_mlplatform.runners.tf_local import LocalTFJob, cluster_spec, free_ports, tf_config

# Every replica writes its TF_CONFIG and pid to $OUT/<type>-<index>.json, then behaves per $MODE.
REPLICA = r"""
import json, os, subprocess, sys, time
cfg = json.loads(os.environ["TF_CONFIG"])
t = cfg["task"]
name = f"{t['type']}-{t['index']}"
out = os.environ["OUT"]
child = None
if os.environ.get("SPAWN_CHILD"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]).pid
with open(os.path.join(out, name + ".json"), "w") as f:
    json.dump({"tf_config": cfg, "pid": os.getpid(), "child": child}, f)
print(f"hello from {name}", flush=True)
mode = os.environ.get("MODE", "ok")
if t["type"] in ("ps", "evaluator"):
    time.sleep(600)  # parameter servers never end by themselves
def wait_for_all_reports():
    # bounded: a loaded machine starts the replicas' interpreters one after another
    total = sum(len(v) for v in cfg["cluster"].values())
    until = time.time() + 30
    while len([n for n in os.listdir(out) if n.endswith(".json")]) < total and time.time() < until:
        time.sleep(0.05)
if mode == "fail" and name == "worker-1":
    wait_for_all_reports()  # fail once every replica has reported, so the test sees them all started
    print("boom: out of memory", flush=True)
    sys.exit(3)
if mode in ("fail", "hang"):
    time.sleep(600)
if t["type"] == "chief":
    wait_for_all_reports()  # the job ends with its leader: stopped replicas must have reported first
print('::mlplatform::record {"name": "role", "value": "%s"}' % name, flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _job(tmp_path: Path, counts, mode="ok", lines=None, **kw) -> LocalTFJob:
    script = tmp_path / "replica.py"
    script.write_text(REPLICA)
    env = {"OUT": str(tmp_path), "MODE": mode, **kw.pop("env", {})}
    return LocalTFJob(
        [sys.executable, str(script)],
        counts,
        env=env,
        log_dir=tmp_path / "logs",
        on_leader_line=(lines.append if lines is not None else None),
        grace_period=2,
        **kw,
    )


def _reports(tmp_path: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}


def _wait_for_reports(tmp_path: Path, n: int) -> dict[str, dict]:
    for _ in range(300):
        reports = _reports(tmp_path)
        if len(reports) >= n:
            return reports
        time.sleep(0.05)
    raise AssertionError(f"only {sorted(_reports(tmp_path))} started")


def test_cluster_spec_and_tf_config():
    ports = free_ports(6)
    assert len(set(ports)) == 6
    cluster = cluster_spec({"Worker": 2, "Chief": 1, "PS": 2, "Evaluator": 1}, ports)
    assert list(cluster) == ["chief", "evaluator", "ps", "worker"]  # as Kubeflow: every type, sorted
    assert sum(len(v) for v in cluster.values()) == 6
    config = json.loads(tf_config(cluster, "Worker", 1))
    assert config["task"] == {"type": "worker", "index": 1}
    assert config["cluster"] == cluster


# Kubeflow training-operator pkg/controller.v1/tensorflow/pod_test.go "should generate desired
# cluster spec": the same replicas give the same document, byte for byte (host names aside).
KUBEFLOW_CASES = [
    ({"Worker": 1}, None),  # NewTFJobWithNamespace(1, 0): a single replica gets no TF_CONFIG
    (
        {"Worker": 1, "PS": 1},
        '{"cluster":{"ps":["test-tfjob-ps-0.ns2.svc:2222"],"worker":["test-tfjob-worker-0.ns2.svc:2222"]},'
        '"task":{"type":"worker","index":0},"environment":"cloud"}',
    ),
    (
        {"Worker": 1, "PS": 1, "Evaluator": 1},  # NewTFJobWithEvaluatorAndNamespace(1, 1, 1)
        '{"cluster":{"evaluator":["test-tfjob-evaluator-0.ns3.svc:2222"],"ps":["test-tfjob-ps-0.ns3.svc:2222"],'
        '"worker":["test-tfjob-worker-0.ns3.svc:2222"]},"task":{"type":"worker","index":0},"environment":"cloud"}',
    ),
]


@pytest.mark.parametrize(("counts", "expected"), KUBEFLOW_CASES)
def test_tf_config_is_the_document_kubeflows_controller_injects(counts, expected):
    from airflow_mlplatform.runners.tf_local import is_distributed

    assert is_distributed(counts) is (expected is not None)
    if expected is None:
        return
    ns = "ns3" if "Evaluator" in counts else "ns2"
    cluster = {
        rtype.lower(): [f"test-tfjob-{rtype.lower()}-{i}.{ns}.svc:2222" for i in range(n)]
        for rtype, n in reversed(list(counts.items()))  # order given does not matter
    }
    assert tf_config(cluster, "Worker", 0) == expected
    # and the local backend's cluster has the same shape, with local addresses
    local = cluster_spec(counts, free_ports(sum(counts.values())))
    assert list(local) == list(json.loads(expected)["cluster"])
    assert all(a.startswith("127.0.0.1:") for v in local.values() for a in v)


def test_a_single_replica_runs_without_tf_config_as_in_kubeflow(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"stale": true}')  # the worker's own is not passed on
    script = tmp_path / "single.py"
    script.write_text("import os\nprint('TF_CONFIG' in os.environ, flush=True)\n")
    lines: list[str] = []
    job = LocalTFJob(
        [sys.executable, str(script)], {"Worker": 1}, log_dir=tmp_path / "logs", on_leader_line=lines.append
    )
    job.run(timeout=60)
    assert lines == ["False"]


def test_every_replica_gets_its_tf_config_and_the_leader_is_streamed(tmp_path):
    lines: list[str] = []
    job = _job(tmp_path, {"Chief": 1, "Worker": 2, "PS": 1, "Evaluator": 1}, lines=lines)
    job.run(timeout=60)
    reports = _reports(tmp_path)
    assert set(reports) == {"chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"}
    cluster = reports["chief-0"]["tf_config"]["cluster"]
    assert cluster == job.cluster
    assert list(cluster) == ["chief", "evaluator", "ps", "worker"]  # the evaluator too, as in Kubeflow
    addresses = [a for v in cluster.values() for a in v]
    assert len(addresses) == 5 and len(set(addresses)) == 5
    for name, report in reports.items():
        rtype, index = name.split("-")
        assert report["tf_config"]["task"] == {"type": rtype, "index": int(index)}
        assert report["tf_config"]["cluster"] == cluster
        assert not _alive(report["pid"])  # PS and evaluator were stopped once training ended
    assert lines == ["hello from chief-0", '::mlplatform::record {"name": "role", "value": "chief-0"}']
    assert set(job.log_files()) == set(reports)
    assert "hello from ps-0" in Path(job.log_files()["ps-0"]).read_text()


def test_worker_zero_leads_without_a_chief(tmp_path):
    lines: list[str] = []
    _job(tmp_path, {"Worker": 2}, lines=lines).run(timeout=60)
    assert lines[0] == "hello from worker-0"


def test_one_failing_replica_fails_the_job_and_stops_the_others(tmp_path):
    job = _job(tmp_path, {"Chief": 1, "Worker": 3, "PS": 1}, mode="fail")
    with pytest.raises(JobFailedError) as e:
        job.run(timeout=60)
    message = str(e.value)
    assert "replica worker-1 exited with code 3" in message
    assert "boom: out of memory" in message  # the failing replica's last lines
    reports = _reports(tmp_path)
    assert len(reports) == 5
    assert not any(_alive(r["pid"]) for r in reports.values())


def test_stop_from_another_thread_kills_every_replica_and_their_children(tmp_path):
    job = _job(tmp_path, {"Worker": 2, "PS": 1}, mode="hang", env={"SPAWN_CHILD": "1"})
    job.start()
    reports = _wait_for_reports(tmp_path, 3)
    pids = [r["pid"] for r in reports.values()] + [r["child"] for r in reports.values()]
    assert all(_alive(p) for p in pids)
    errors: list[BaseException] = []

    def waiter():
        try:
            job.wait()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    job.stop()  # what TFJobOperator.on_kill does
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and "stopped" in str(errors[0])
    for _ in range(100):
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def test_timeout_stops_everything(tmp_path):
    job = _job(tmp_path, {"Worker": 2}, mode="hang", env={"SPAWN_CHILD": "1"})
    job.start()
    reports = _wait_for_reports(tmp_path, 2)
    with pytest.raises(
        JobFailedError, match=r"did not finish within 0.5 s; replicas still running: worker-0, worker-1"
    ):
        job.wait(timeout=0.5)
    pids = [r["pid"] for r in reports.values()] + [r["child"] for r in reports.values()]
    for _ in range(100):
        if not any(_alive(p) for p in pids):
            break
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)


def test_stop_signals_only_the_groups_of_replicas_still_running(tmp_path, monkeypatch):
    """A reaped replica's PID may belong to an unrelated process group by now: never signal it."""
    signalled: list[int] = []
    real = LocalTFJob._signal_group

    def record(pid: int, sig: int) -> None:
        signalled.append(pid)
        real(pid, sig)

    monkeypatch.setattr(LocalTFJob, "_signal_group", staticmethod(record))
    job = _job(tmp_path, {"Chief": 1, "Worker": 3, "PS": 1}, mode="fail")
    with pytest.raises(JobFailedError):
        job.run(timeout=60)
    failed = next(r for r in job.replicas if r.name == "worker-1")
    assert failed.proc.pid not in signalled  # it exited (and was reaped) before the others were stopped
    assert all(r.proc.poll() is not None for r in job.replicas)
    signalled.clear()
    job.stop()  # again, as on_kill after the failure would: every replica is reaped
    assert signalled == []
