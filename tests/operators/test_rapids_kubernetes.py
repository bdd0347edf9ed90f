"""RapidsDaskOperator, cluster kubernetes, on the Kubernetes test bed with a fake Dask operator.

The fake operator creates the scheduler service and the scheduler/worker pods of the DaskCluster
the task creates; the fake kubelet runs ``dask scheduler`` and ``dask worker`` as local processes,
so the callable really computes on that cluster.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed")

from airflow_mlplatform.compute import build_profile
from airflow_mlplatform.exceptions import ConfigurationError, JobFailedError
from airflow_mlplatform.operators.rapids import RapidsDaskOperator
from fake_dask_operator import DASKCLUSTERS, DASKJOBS

PROFILE = build_profile(
    "dask-cpu",
    {
        "backend": "kubernetes",
        "image": "ghcr.io/dask/dask:2026.8.0-py3.11",
        "requests": {"cpu": "1", "memory": "2Gi"},
        "node_selector": {"pool": "cpu"},
        "labels": {"tenant": "research"},
    },
    where="test",
)


@pytest.fixture(scope="session")
def dask_bed(k8s_kinds):
    return k8s_kinds


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "kd", "sum", "manual__k8s", -1, 1

    def __init__(self):
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _running(bed) -> list[str]:
    return [p for p in bed.running_processes() if p.startswith("dask-")]


def _settled(bed) -> bool:
    for _ in range(300):
        if not _running(bed):
            return True
        time.sleep(0.05)
    return False


def _total(client, parameters):
    import dask.array as da

    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {
        "total": int(da.ones(parameters["n"], chunks=250).sum().compute()),
        "workers": len(workers),
        "worker_pids": sorted(client.run(os.getpid).values()),
    }


def test_callable_runs_on_an_ephemeral_daskcluster_that_is_deleted_afterwards(dask_bed):
    ti = _TI()
    op = RapidsDaskOperator(
        task_id="sum",
        python_callable=_total,
        cluster="kubernetes",
        compute=PROFILE,
        n_workers=2,
        parameters={"n": 1000},
        connect_timeout=60,
    )
    values = op.execute({"ti": ti})
    assert values["total"] == 1000 and values["workers"] == 2
    assert all(pid != os.getpid() for pid in values["worker_pids"])  # computed in the worker pods' processes
    record = ti.pushed["execution_record"]
    where = record["where"]
    assert where["cluster"] == "DaskCluster" and where["created_by_task"] is True
    assert where["libraries"] == "pandas/numpy" and where["n_workers"] == 2
    assert where["scheduler"].startswith("tcp://127.0.0.1:")
    assert dask_bed.call(dask_bed.emulator.objects, DASKCLUSTERS, None) == []  # deleted
    assert _settled(dask_bed)  # scheduler and worker processes are gone


def _hang(client):
    while True:
        client.submit(time.sleep, 0.05, pure=False).result()


def test_on_kill_deletes_the_daskcluster(dask_bed):
    ti = _TI()
    ti.run_id = "manual__k8s_kill"
    op = RapidsDaskOperator(
        task_id="sum",
        python_callable=_hang,
        cluster="kubernetes",
        compute=PROFILE,
        n_workers=1,
        connect_timeout=60,
    )
    errors: list[BaseException] = []

    def run():
        try:
            op.execute({"ti": ti})
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(1200):
        if op._session is not None and op._session.info is not None:
            break
        time.sleep(0.05)
    assert op._session.info.n_workers == 1  # the callable is running on the cluster
    assert len(_running(dask_bed)) == 2
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive() and errors
    assert dask_bed.call(dask_bed.emulator.objects, DASKCLUSTERS, None) == []
    assert _settled(dask_bed)


def test_a_cluster_without_the_daskcluster_crd_is_a_clear_error(dask_bed):
    dask_bed.call(dask_bed.emulator.undeclare, DASKCLUSTERS)
    try:
        op = RapidsDaskOperator(task_id="sum", python_callable=len, cluster="kubernetes", compute=PROFILE)
        ti = _TI()
        ti.run_id = "manual__k8s_nocrd"
        with pytest.raises(ConfigurationError, match="the Dask Kubernetes operator is not installed"):
            op.execute({"ti": ti})
    finally:
        dask_bed.call(dask_bed.emulator.declare, DASKCLUSTERS, "DaskCluster")


def test_a_cluster_left_by_an_earlier_try_is_adopted_and_deleted_at_the_end(dask_bed):
    from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
    from airflow_mlplatform.runners.dask_kubernetes import cluster_name
    from airflow_mlplatform.specs import daskjob
    from airflow_mlplatform.specs import pod as podspec

    identity = {
        "dag_id": "kd",
        "task_id": "sum",
        "run_id": "manual__k8s_retry",
        "map_index": -1,
        "try_number": 1,
    }
    leftover = daskjob.build_daskcluster(
        name=cluster_name(identity),
        namespace="default",
        labels=podspec.identity_labels(identity),
        image="dask",
        n_workers=1,
    )
    MLPlatformKubernetesHook().create_object(daskjob.DASKCLUSTER_KIND.resource, "default", leftover)

    class TI2(_TI):
        run_id, try_number = "manual__k8s_retry", 2

    ti = TI2()
    op = RapidsDaskOperator(
        task_id="sum",
        python_callable=_total,
        cluster="kubernetes",
        compute=PROFILE,
        n_workers=1,
        parameters={"n": 500},
        connect_timeout=60,
    )
    assert op.execute({"ti": ti})["total"] == 500
    where = ti.pushed["execution_record"]["where"]
    assert where["reattached"] is True and where["daskcluster"] == leftover["metadata"]["name"]
    assert dask_bed.call(dask_bed.emulator.objects, DASKCLUSTERS, None) == []  # adopted, then deleted
    assert _settled(dask_bed)


JOB_SCRIPT = """
import json, os, sys
from distributed import Client
from airflow_mlplatform.runtime import log_metrics, record

params = json.loads(os.environ["MLPLATFORM_PARAMETERS"])
with Client() as client:  # DASK_SCHEDULER_ADDRESS, set by the Dask operator in the runner pod
    total = client.submit(sum, range(params["n"])).result()
log_metrics(total=total)
record("total", total)
record("libraries", os.environ["MLPLATFORM_DASK_LIBRARIES"])
if params.get("fail"):
    print("giving up", flush=True)
    sys.exit(2)
"""


@pytest.mark.parametrize("fail", [False, True])
def test_a_script_runs_as_a_daskjob_runner_pod(dask_bed, tmp_path, fail):
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)

    class TI(_TI):
        run_id = f"manual__daskjob_{fail}"

    ti = TI()
    op = RapidsDaskOperator(
        task_id="sum",
        script=str(script),
        cluster="kubernetes",
        compute=PROFILE,
        n_workers=1,
        parameters={"n": 10, "fail": fail},
    )
    if fail:
        with pytest.raises(
            JobFailedError, match=r"DaskJob .* failed .*Last lines of .*-runner:\n(.|\n)*giving up"
        ):
            op.execute({"ti": ti})
        assert ti.pushed["execution_record"]["status"] == "failed"
    else:
        assert op.execute({"ti": ti}) == {"total": 45, "libraries": "pandas/numpy"}
        record = ti.pushed["execution_record"]
        assert record["metrics"]["summary"] == {"total": 45}
        assert record["where"]["cluster"] == "DaskJob" and record["where"]["n_workers"] == 1
    assert dask_bed.call(dask_bed.emulator.objects, DASKJOBS, None) == []  # deleted
    assert _settled(dask_bed)


def test_a_script_daskjob_can_wait_in_the_triggerer(dask_bed, tmp_path, run_dag):
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)
    source = f"""
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.compute import build_profile
from airflow_mlplatform.operators.rapids import RapidsDaskOperator

PROFILE = build_profile("dask-cpu", {{"backend": "kubernetes", "image": "dask", "namespace": "default"}}, where="t")
with DAG("daskjob_deferred", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    RapidsDaskOperator(
        task_id="sum", script={str(script)!r}, cluster="kubernetes", compute=PROFILE, n_workers=1,
        parameters={{"n": 10}}, deferrable=True,
    )
"""
    result = run_dag(source, "daskjob_deferred")
    assert result.task_states() == {"sum": "success"}
    assert result.xcom("sum") == {"total": 45, "libraries": "pandas/numpy"}
    where = result.xcom("sum", "execution_record")["where"]
    assert where["cluster"] == "DaskJob" and where["deferred"] is True
    assert dask_bed.call(dask_bed.emulator.objects, DASKJOBS, None) == []  # deleted
