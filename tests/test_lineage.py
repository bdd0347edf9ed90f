"""OpenLineage from execution records: dataset naming and facets (pure), every operator has the
methods, and the quickstart run under dag.test() with the real OpenLineage provider and its
file transport gives the graph prepare -> train -> evaluate -> register (model version) -> scoring."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlplatform.lineage import DatasetName, LineageMixin, dataset_name, lineage_of
from repo_paths import REPO


def test_dataset_names_follow_openlineage_naming() -> None:
    assert dataset_name("/data/x.csv") == DatasetName("file", "/data/x.csv")
    assert dataset_name("file:///data/x.csv") == DatasetName("file", "/data/x.csv")
    assert dataset_name("s3://bucket/a/b.parquet") == DatasetName("s3://bucket", "a/b.parquet")
    assert dataset_name("gs://bkt/k") == DatasetName("gs://bkt", "k")
    assert dataset_name("abfss://c@acct.dfs.core.windows.net/p") == DatasetName(
        "abfss://c@acct.dfs.core.windows.net", "p"
    )
    for not_a_dataset in ("https://example.org/x", "relative/path.csv", "0.25", "", None, 3, "s3:///nokey"):
        assert dataset_name(not_a_dataset) is None


def test_lineage_of_a_record_with_models() -> None:
    record = {
        "schema_version": 2,
        "status": "success",
        "code": {"notebook": "/dags/score.ipynb", "sha256": "ab" * 32, "git_commit": None},
        "data": {"inputs": {"batch": {"uri": "s3://lake/batch/2026.csv", "sha256": "x"}}},
        "parameters": {"threshold": 0.5, "features": "gs://feat/f.parquet", "note": "hello"},
        "values": {"scores_path": "s3://lake/scores/2026.csv", "n": 3},
        "metrics": {"summary": {"auc": 0.91}, "series": [{"auc": 0.91}]},
        "outputs": {"notebook": "/out/d/r/score/try-1/score.ipynb", "record": "/out/d/r/score/try-1/execution_record.json"},
        "models": {"used": [{"name": "churn", "alias": "champion", "version": "3", "uri": "models:/churn/3"}],
                   "registered": [{"name": "churn-scored", "version": 1, "uri": "models:/churn-scored/1"}]},
        "where": {"backend": "local"},
    }  # fmt: skip
    found = lineage_of(record)
    assert found.inputs == [
        DatasetName("file", "/dags/score.ipynb"),
        DatasetName("s3://lake", "batch/2026.csv"),
        DatasetName("gs://feat", "f.parquet"),
        DatasetName("models", "churn/3"),
    ]
    assert found.outputs == [
        DatasetName("file", "/out/d/r/score/try-1/score.ipynb"),
        DatasetName("file", "/out/d/r/score/try-1/execution_record.json"),
        DatasetName("s3://lake", "scores/2026.csv"),
        DatasetName("models", "churn-scored/1"),
    ]
    assert found.run["parameters"]["threshold"] == 0.5 and found.run["metrics"] == {"auc": 0.91}
    assert found.run["code"] == {"notebook": "/dags/score.ipynb", "sha256": "ab" * 32, "git_commit": None}
    assert found.run["record"].endswith("execution_record.json") and found.run["status"] == "success"
    # a version-1 record without models, data or values: still a valid lineage
    assert lineage_of({"schema_version": 1, "code": {"command": ["python", "x.py"]}}).inputs == []


def test_every_operator_reports_lineage() -> None:
    from airflow.sdk import BaseOperator

    import airflow_mlplatform.operators as ops

    found = []
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"{ops.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseOperator)
                and cls.__module__ == module.__name__
                and not info.name.startswith("_")
            ):
                found.append(cls)
                assert issubclass(cls, LineageMixin), f"{cls.__name__} does not derive from LineageMixin"
    assert len(found) >= 8


CHILD = """
import sys
from pathlib import Path
from airflow_mlplatform import testing
folder, examples = Path(sys.argv[1]), Path(sys.argv[2])
result = testing.run_dag_file(folder, examples / "quickstart_ml_pipeline.py", "quickstart_ml_pipeline")
# one write each: OpenLineage's emitting threads log to the same stdout, and print() writes its
# arguments one by one, so a log line could land between "STATE" and the state
sys.stdout.write(f"STATE {str(result.state)} VERSION {result.xcom('register', 'version')}\\n")
sys.stdout.flush()
scored = testing.run_dag_file(folder, examples / "quickstart_batch_scoring.py", "quickstart_batch_scoring")
sys.stdout.write(f"SCORED {str(scored.state)}\\n")
sys.stdout.flush()
"""


@pytest.mark.slow
def test_quickstart_lineage_graph_from_the_file_transport(dags_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    shutil.copytree(REPO / "example_dags" / "notebooks", dags_folder / "notebooks", dirs_exist_ok=True)
    events_file = tmp_path / "events.jsonl"
    env = {
        # no Kubernetes connection (an earlier module's test bed may have set one): deploy is skipped
        **{k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_KUBERNETES_DEFAULT"},
        # the provider reads its configuration once per process: the run gets a process of its own
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlplatform-tests",
        # a registry of its own: the session's embedded store is other modules' (test_quickstart
        # expects to register the first version of the quickstart's model)
        "AIRFLOW__MLPLATFORM__MLFLOW_HOME": str(tmp_path / "mlflow"),
    }  # fmt: skip
    # one pipeline run (its promote makes the first version champion), then one scoring run
    out = subprocess.run([sys.executable, "-c", CHILD, str(dags_folder), str(REPO / "example_dags")],
                         env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    lines = (out.stdout + out.stderr).splitlines()
    said = [ln for ln in lines if ln.startswith(("STATE", "SCORED")) or "Task failed" in ln or "Error" in ln]
    assert "STATE success" in out.stdout and "SCORED success" in out.stdout, "\n".join(said[-40:])
    version = int(out.stdout.split("VERSION", 1)[1].split()[0])
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete = {
        e["job"]["name"]: e
        for e in events
        if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith("quickstart_")
    }
    tasks = {f"quickstart_ml_pipeline.{t}" for t in ("prepare", "train", "evaluate", "register")}
    assert set(complete) >= {*tasks, "quickstart_batch_scoring.score"}, sorted(complete)

    def names(event, side):
        return {(d["namespace"], d["name"]) for d in event[side]}

    prepare, train, evaluate, register = (
        complete[f"quickstart_ml_pipeline.{t}"] for t in ("prepare", "train", "evaluate", "register")
    )
    score = complete["quickstart_batch_scoring.score"]
    # the graph: prepare's train split feeds train, train's model and prepare's test split feed evaluate
    assert names(prepare, "outputs") & names(train, "inputs")
    assert names(train, "outputs") & names(evaluate, "inputs")
    assert names(prepare, "outputs") & names(evaluate, "inputs")
    assert not names(evaluate, "outputs") & names(prepare, "inputs")
    for event in (prepare, train, evaluate):
        assert all(
            ns == "file" and name.startswith("/")
            for ns, name in names(event, "inputs") | names(event, "outputs")
        )
    assert ("file", str(dags_folder / "notebooks" / "train.ipynb")) in names(train, "inputs")
    facet = train["run"]["facets"]["mlplatform"]
    assert facet["parameters"]["C"] == 1.0 and facet["status"] == "success"
    assert 0.9 < facet["metrics"]["val_accuracy"] <= 1.0
    assert len(facet["code"]["sha256"]) == 64
    assert facet["record"].endswith("/train/try-1/execution_record.json")

    # -> model version -> scoring: train's model file feeds register, whose output is the model
    # version (namespace models, NAME/VERSION) that the scoring task reads
    model_version = ("models", f"quickstart-classifier/{version}")
    assert model_version in names(register, "outputs")
    assert model_version in names(score, "inputs")
    assert model_version not in names(score, "outputs")
    fed = names(train, "outputs") & names(register, "inputs")
    assert [name for ns, name in fed if name.endswith("/train/try-1/model.pkl")], fed
