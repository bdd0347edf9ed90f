"""TFJobOperator: bad input before anything starts; failure and timeout through dag.test()."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    JobDefinitionError,
    ReplicaSpecError,
    ScriptNotFoundError,
    UnknownComputeProfileError,
)
from airflow_mlplatform.operators.tfjob import TFJobOperator


def _execute(tmp_path: Path, **kwargs):
    kwargs.setdefault("command", ["python", "train.py"])
    kwargs.setdefault("backend", "local")
    (tmp_path / "train.py").write_text("print('hi')\n")
    op = TFJobOperator(task_id="t", cwd=str(tmp_path), **kwargs)

    class TI:
        dag_id, task_id, run_id, map_index, try_number = "d", "t", "r", -1, 1

        def xcom_push(self, key, value):
            raise AssertionError("nothing may be pushed for bad input")

    return op.execute({"ti": TI()})


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"replicas": {"Launcher": 1}}, ReplicaSpecError, "unknown replica type 'Launcher'"),
        ({"replicas": {"Worker": 0}}, ReplicaSpecError, "at least 1 replica"),
        ({"replicas": {"PS": 1}}, ReplicaSpecError, "PS replicas without Workers"),
        ({"command": ""}, JobDefinitionError, "command is empty"),
        ({"command": ["python", "missing.py"]}, ScriptNotFoundError, "missing.py does not exist"),
        ({"command": "python -u missing.py --epochs 3"}, ScriptNotFoundError, "missing.py does not exist"),
        ({"backend": "slurm"}, ConfigurationError, "backend 'slurm' is unknown"),
        ({"backend": "kubeflow"}, ReplicaSpecError, "a TFJob needs an image"),
        (
            {"backend": "kubeflow", "image": "tf", "clean_pod_policy": "Sometimes"},
            ReplicaSpecError,
            "use one of All",
        ),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_starts(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        _execute(tmp_path, **kwargs)
    # nothing was started: no replica log folder, no output folder
    assert not list(tmp_path.glob("**/logs"))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"compute": "nope"}, UnknownComputeProfileError, "compute profile 'nope' is unknown"),
        (
            {"replicas": {"Worker": (2, "nope")}},
            UnknownComputeProfileError,
            "compute profile 'nope' is unknown",
        ),
        (
            {"replicas": {"Worker": {"count": 2, "compute": "nope"}}},
            UnknownComputeProfileError,
            "compute profile 'nope' is unknown",
        ),
        ({"replicas": {"Wrkr": 0}}, ReplicaSpecError, "unknown replica type 'Wrkr'"),
        ({"replicas": {"Worker": 0}}, ReplicaSpecError, "at least 1 replica"),
        ({"replicas": {"PS": 1}}, ReplicaSpecError, "PS replicas without Workers"),
        ({"backend": "kubeflw"}, ConfigurationError, "backend 'kubeflw' is unknown"),
    ],
)
def test_bad_input_fails_when_the_dag_file_is_parsed(kwargs, error, message):
    with pytest.raises(error, match=message):
        TFJobOperator(task_id="t", command=["python", "train.py"], **kwargs)


def test_a_templated_backend_is_checked_when_the_task_runs():
    op = TFJobOperator(task_id="t", command=["python", "train.py"], backend="{{ params.backend }}")
    assert op.backend == "{{ params.backend }}"


STAND_IN = """
import json, os, sys, time
t = json.loads(os.environ["TF_CONFIG"])["task"]
name = f"{t['type']}-{t['index']}"
with open(os.path.join(os.environ["PIDS"], name), "w") as f:
    f.write(str(os.getpid()))
if os.environ.get("MODE") == "fail" and name == "worker-1":
    print("worker-1 cannot reach the chief", flush=True)
    sys.exit(7)
time.sleep(600)
"""


def _dag(tmp_path: Path, dag_id: str, mode: str, timeout: float | None) -> str:
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    pids = tmp_path / "pids"
    pids.mkdir()
    timeout_arg = f"execution_timeout=timedelta(seconds={timeout})," if timeout else ""
    return textwrap.dedent(
        f"""
        from datetime import timedelta
        import pendulum
        from airflow.sdk import DAG
        from airflow_mlplatform.operators.tfjob import TFJobOperator

        with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
            TFJobOperator(
                task_id="train",
                command=["python", "stand_in.py"],
                cwd={str(tmp_path)!r},
                replicas={{"Chief": 1, "Worker": 2}},
                backend="local",
                env={{"PIDS": {str(pids)!r}, "MODE": {mode!r}}},
                grace_period=1,
                {timeout_arg}
            )
        """
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def _pids(tmp_path: Path) -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in (tmp_path / "pids").iterdir()}


def _none_alive(pids) -> bool:
    for _ in range(100):
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_failing_replica_fails_the_task_and_stops_the_others(run_dag, tmp_path):
    result = run_dag(_dag(tmp_path, "tfjob_fail", "fail", None), "tfjob_fail")
    assert result.task_states() == {"train": "failed"}
    pids = _pids(tmp_path)
    assert set(pids) == {"chief-0", "worker-0", "worker-1"}
    assert _none_alive(pids.values())
    record = result.xcom("train", "execution_record")
    assert record["status"] == "failed"
    assert "replica worker-1 exited with code 7" in record["error"]
    assert "worker-1 cannot reach the chief" in Path(record["outputs"]["logs"]["worker-1"]).read_text()


def test_execution_timeout_leaves_nothing_running(run_dag, tmp_path):
    result = run_dag(_dag(tmp_path, "tfjob_timeout", "hang", 3), "tfjob_timeout")
    assert result.task_states() == {"train": "failed"}
    pids = _pids(tmp_path)
    assert len(pids) == 3
    assert _none_alive(pids.values())
    record = result.xcom("train", "execution_record")  # stopped, not failed on its own
    assert record["status"] == "killed"
    assert record["error"] == "stopped: the task ran longer than its execution_timeout (3 s)"


def test_on_kill_stops_the_replicas(tmp_path):
    """on_kill (called by Airflow from another thread/signal handler) stops every replica."""
    import threading

    (tmp_path / "stand_in.py").write_text(STAND_IN)
    (tmp_path / "pids").mkdir()
    op = TFJobOperator(
        task_id="t",
        command=[sys.executable, "stand_in.py"],
        cwd=str(tmp_path),
        replicas={"Worker": 2},
        backend="local",
        env={"PIDS": str(tmp_path / "pids"), "MODE": "hang"},
        grace_period=1,
    )

    class TI:
        dag_id, task_id, run_id, map_index, try_number = "d", "t", "r", -1, 1

        def xcom_push(self, key, value):
            pushed[key] = value

    pushed: dict = {}
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(op, {"ti": TI()}, errors))
    thread.start()
    for _ in range(200):
        if len(list((tmp_path / "pids").iterdir())) == 2:
            break
        time.sleep(0.05)
    op.on_kill()
    thread.join(30)
    assert not thread.is_alive()
    assert errors and "stopped" in str(errors[0])
    assert _none_alive(_pids(tmp_path).values())
    assert pushed["execution_record"]["status"] == "failed"
    assert json.loads(json.dumps(pushed["execution_record"]))["where"]["replicas"] == {"Worker": 2}


def _run(op, context, errors):
    try:
        op.execute(context)
    except BaseException as e:
        errors.append(e)


class _KubeflowTI:
    dag_id, task_id, run_id, map_index, try_number = "kf", "train", "manual__opts", -1, 1


def test_kubeflow_options_reach_the_manifest_and_it_fits_the_crd():
    from airflow_mlplatform.specs.tfjob import parse_replicas
    from specs.crd_schema import validate

    op = TFJobOperator(
        task_id="train",
        image="kubeflow/tf-dist-mnist-test:latest",  # no command: the image's ENTRYPOINT
        replicas={"Chief": 1, "PS": 1, "Worker": {"count": 2, "restart_policy": "ExitCode"}},
        restart_policy="OnFailure",
        scheduling_policy={"min_available": 4, "queue": "training", "priority_class": "high"},
        scheduler_name="volcano",
        success_policy="AllWorkers",
        suspend=True,
        namespace="ml",
    )
    job, plan = op._kubeflow_job({"ti": _KubeflowTI()}, op._argv(), parse_replicas(op.replicas), {"lr": 0.1})
    manifest = job.manifest
    validate(manifest, "kubeflow.org_tfjobs.yaml")
    spec = manifest["spec"]
    assert {t: s["restartPolicy"] for t, s in spec["tfReplicaSpecs"].items()} == {
        "Chief": "OnFailure",
        "PS": "OnFailure",
        "Worker": "ExitCode",
    }
    assert spec["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 4,
        "queue": "training",
        "priorityClass": "high",
    }
    assert spec["runPolicy"]["suspend"] is True and spec["successPolicy"] == "AllWorkers"
    for replica in spec["tfReplicaSpecs"].values():
        assert replica["template"]["spec"]["schedulerName"] == "volcano"
        assert "command" not in replica["template"]["spec"]["containers"][0]
    assert plan["argv"] is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"backend": "local"}, "JobDefinitionError", "backend 'local' runs the training command itself"),
        ({"restart_policy": "Sometimes"}, "ReplicaSpecError", "restart_policy 'Sometimes'"),
        ({"scheduling_policy": {"minMember": 1}}, "ReplicaSpecError", "'minMember' is unknown"),
        ({"success_policy": "AnyWorker"}, "ReplicaSpecError", "success_policy 'AnyWorker'"),
    ],
)
def test_kubeflow_options_are_checked(kwargs, error, message):
    from airflow_mlplatform import exceptions

    def build_and_check() -> None:
        TFJobOperator(task_id="t", image="i", **kwargs)._argv()

    with pytest.raises(getattr(exceptions, error), match=message):
        build_and_check()
