"""The model registry for real: mlflow-skinny on the embedded SQLite store, several processes at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_mlplatform.exceptions import ModelNotFoundError
from airflow_mlplatform.hooks.mlflow import MLflowHook, embedded_home
from airflow_mlplatform.models import ModelRef, registry
from airflow_mlplatform.models.gate import parse_gate

TASK = {"dag_id": "d", "run_id": "r1", "task_id": "register", "map_index": -1, "try_number": 1}
RECORD = {
    "task": {"try_number": 2},
    "outputs": {"record": "/out/d/r1/train/try-2/execution_record.json"},
    "code": {"sha256": "ab" * 32, "git_commit": "c0ffee"},
    "parameters": {"C": 0.5, "solver": "lbfgs"},
    "metrics": {"summary": {"accuracy": 0.91, "note": "text"}},
}


@pytest.fixture(scope="module")
def hook() -> MLflowHook:
    return MLflowHook()


def _register(hook, tmp_path, name, *, key, accuracy, folder=False):
    artifact = tmp_path / f"{key}-model"
    if folder:
        artifact.mkdir(exist_ok=True)
        (artifact / "weights.bin").write_bytes(b"w" * 10)
        (artifact / "MLmodel").write_text("flavor: none\n")
    else:
        artifact = artifact.with_suffix(".pkl")
        artifact.write_bytes(f"model {key}".encode())
    record = {**RECORD, "metrics": {"summary": {"accuracy": accuracy}}}
    tags = registry.lineage_tags(task=TASK, source_task="train", source_record=record)
    return registry.register(
        hook,
        name=name,
        artifact=artifact,
        experiment="d",
        key=key,
        tags=tags,
        description=registry.describe(task=TASK, source_task="train", tags=tags),
    )


def test_lineage_tags_carry_task_record_code_parameters_and_metrics():
    tags = registry.lineage_tags(task=TASK, source_task="train", source_record=RECORD)
    assert tags["mlplatform.dag_id"] == "d" and tags["mlplatform.try_number"] == "1"
    assert tags["mlplatform.source_record"] == RECORD["outputs"]["record"]
    assert tags["mlplatform.source_try_number"] == "2"
    assert tags["mlplatform.code_sha256"] == "ab" * 32 and tags["mlplatform.code_git_commit"] == "c0ffee"
    assert tags["param.C"] == "0.5" and tags["param.solver"] == "lbfgs"
    assert registry.metrics_of_tags(tags) == {"accuracy": 0.91}  # text metrics are not gate metrics
    text = registry.describe(task=TASK, source_task="train", tags=tags)
    assert "d.register" in text and "accuracy=0.91" in text and "C=0.5" in text
    # retries of the registering task share a key; another source try gets another key
    assert registry.idempotency_key(TASK, model_name="m", source="a") == registry.idempotency_key(
        {**TASK, "try_number": 2}, model_name="m", source="a"
    )
    assert registry.idempotency_key(TASK, model_name="m", source="a") != registry.idempotency_key(
        TASK, model_name="m", source="b"
    )


def test_register_is_idempotent_promote_gates_and_refs_resolve(hook, tmp_path):
    first = _register(hook, tmp_path, "reg-basic", key="k1", accuracy=0.8, folder=True)
    again = _register(hook, tmp_path, "reg-basic", key="k1", accuracy=0.8, folder=True)
    assert (again.version, again.reused, first.reused) == (first.version, True, False)
    client = hook.get_conn()
    mv = client.get_model_version("reg-basic", first.version)
    assert mv.tags["mlplatform.source_record"] == RECORD["outputs"]["record"]
    assert mv.tags["metric.accuracy"] == "0.8" and "d.register" in mv.description
    assert embedded_home() in Path(mv.source.removeprefix("file://")).parents

    with pytest.raises(
        ModelNotFoundError, match=r"'reg-basic' has no alias 'champion'; its aliases: none yet"
    ):
        registry.resolve(hook, ModelRef("reg-basic", alias="champion"))
    gate = parse_gate("accuracy >= champion.accuracy", alias="champion")
    decision = registry.promote(hook, name="reg-basic", version=first.version, alias="champion", gate=gate)
    assert decision.promoted and "first version" in decision.reason

    worse = _register(hook, tmp_path, "reg-basic", key="k2", accuracy=0.7)
    decision = registry.promote(hook, name="reg-basic", version=worse.version, alias="champion", gate=gate)
    assert not decision.promoted and decision.previous == first.version
    assert "failed against version" in decision.reason and "accuracy=0.7" in decision.reason

    resolved = registry.resolve(hook, ModelRef("reg-basic", alias="champion"))
    assert resolved.version == first.version and (Path(resolved) / "weights.bin").read_bytes() == b"w" * 10
    by_number = registry.resolve(hook, ModelRef("reg-basic", version=int(worse.version)))
    assert Path(by_number).read_bytes() == b"model k2" and by_number.alias is None

    better = _register(hook, tmp_path, "reg-basic", key="k3", accuracy=0.95)
    decision = registry.promote(hook, name="reg-basic", version=better.version, alias="champion", gate=gate)
    assert decision.promoted and decision.previous == first.version
    assert registry.resolve(hook, ModelRef("reg-basic", alias="champion")).version == better.version
    with pytest.raises(
        ModelNotFoundError, match=rf"no alias 'prod'; its aliases: champion \(version {better.version}\)"
    ):
        registry.resolve(hook, ModelRef("reg-basic", alias="prod"))
    with pytest.raises(ModelNotFoundError, match="registered model 'no-such-model' does not exist"):
        registry.resolve(hook, ModelRef("no-such-model", alias="champion"))


CHILD = r"""
import json, os, sys, time
from pathlib import Path

home, action, model, *rest = json.loads(sys.argv[1])
go = Path(sys.argv[2])
os.environ["AIRFLOW__MLPLATFORM__MLFLOW_HOME"] = home
from airflow_mlplatform.hooks.mlflow import MLflowHook
from airflow_mlplatform.models import registry
from airflow_mlplatform.models.gate import parse_gate

sys.stdout.write("READY\n")  # one write: nothing can land between the word and its newline
sys.stdout.flush()
while not go.exists():  # every process starts on the fresh store at the same moment
    time.sleep(0.01)
hook = MLflowHook()
if action == "register":
    key, accuracy, artifact = rest
    done = registry.register(
        hook, name=model, artifact=Path(artifact), experiment="concurrency", key=key,
        tags={"metric.accuracy": accuracy}, description="",
    )
    out = {"version": done.version}
else:
    version, gate = rest
    decision = registry.promote(
        hook, name=model, version=version, alias="champion", gate=parse_gate(gate, alias="champion")
    )
    out = {"promoted": decision.promoted, "reason": decision.reason}
print("RESULT " + json.dumps(out), flush=True)
"""


def _run_all(jobs, folder: Path):
    """Run the jobs in as many fresh processes at once, released together once all have imported
    (fresh interpreters: forking the test process, whose threads may hold locks, can hang a child)."""
    import json
    import subprocess
    import sys
    import uuid

    go = folder / f"go-{uuid.uuid4().hex}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(job), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    try:
        for p in procs:  # imports may log to stdout before READY
            assert p.stdout is not None
            seen = []
            while (line := p.stdout.readline()) and line.strip() != "READY":
                seen.append(line)
            if not line:  # it exited before it was ready
                _, err = p.communicate(timeout=60)
                raise AssertionError("".join(seen)[-2000:] + err[-3000:])
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            found = [line for line in out.splitlines() if line.startswith("RESULT ")]
            assert p.returncode == 0 and found, err[-3000:]
            results.append(json.loads(found[-1][len("RESULT ") :]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.slow
def test_four_processes_on_a_fresh_store_get_four_versions_then_two_promotions_agree(tmp_path):
    # several processes creating the same fresh SQLite store at once (the issue saw 7 of 8 crash in
    # MLflow's alembic migrations without a lock); four, as each process costs ~15 s of CPU here
    home = str(tmp_path / "fresh-store")
    artifact = tmp_path / "m.pkl"
    artifact.write_bytes(b"m")
    accuracies = [0.70, 0.78, 0.85, 0.90]
    outs = _run_all(
        [(home, "register", "conc", f"key{i}", str(a), str(artifact)) for i, a in enumerate(accuracies)],
        tmp_path,
    )
    versions = [o["version"] for o in outs]
    assert sorted(versions, key=int) == [str(v) for v in range(1, 5)]  # 4 distinct, no crash

    by_accuracy = dict(zip(accuracies, versions, strict=True))
    gate = "accuracy >= champion.accuracy"
    assert _run_all([(home, "promote", "conc", by_accuracy[0.70], gate)], tmp_path)[0]["promoted"]
    outs = _run_all(
        [
            (home, "promote", "conc", by_accuracy[0.85], gate),
            (home, "promote", "conc", by_accuracy[0.90], gate),
        ],
        tmp_path,
    )
    os.environ["AIRFLOW__MLPLATFORM__MLFLOW_HOME"] = home
    try:
        holder = MLflowHook().get_conn().get_model_version_by_alias("conc", "champion")
    finally:
        del os.environ["AIRFLOW__MLPLATFORM__MLFLOW_HOME"]
    # serialized on one host: whichever went second compared itself with the first's result
    assert str(holder.version) == by_accuracy[0.90]
    assert outs[1]["promoted"]
    assert not outs[0]["promoted"] or "passed" in outs[0]["reason"]
