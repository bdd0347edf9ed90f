"""The Experiments view's API through Airflow's api-server app: the compared runs of a task,
with their output viewer links; 401 without a user, 403 without read permission on the DAG."""

from __future__ import annotations

from pathlib import Path

import pytest

from stored_records import write

API = "/mlplatform/api/experiments"


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    base = str(tmp_path / "outputs")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__OUTPUT_BASE", base)
    for i, c in enumerate([0.5, 2.0]):
        write(base, dag="exp_dag", run=f"manual__{i}", task="train", hour=i, parameters={"C": c, "seed": 1},
              metric_rows=[{"step": s, "loss": 1 / (s + 1 + c)} for s in range(3)])  # fmt: skip
    write(base, dag="exp_dag", run="manual__1", task="train", try_=2, hour=1.5, parameters={"C": 2.0, "seed": 1},
          metric_rows=[{"step": 0, "loss": 0.1}])  # fmt: skip
    write(base, dag="exp_dag", run="manual__0", task="prepare", hour=0)
    return base


def test_runs_of_a_task_with_links(client, as_viewer, runs):
    r = client.get(f"{API}/exp_dag/train", headers=as_viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dag_id"] == "exp_dag" and body["task_id"] == "train"
    assert body["columns"][:2] == ["run", "try"] and "param:C" in body["columns"]
    assert [(row["run_id"], row["try_number"]) for row in body["rows"]] == [
        ("manual__0", 1),
        ("manual__1", 2),
    ]
    first = body["rows"][0]
    assert first["parameters"] == {"C": 0.5, "seed": 1}
    assert first["series"]["loss"] == [[0.0, 1 / 1.5], [1.0, 1 / 2.5], [2.0, 1 / 3.5]]
    assert first["final"]["loss"] == pytest.approx(1 / 3.5)
    assert first["output_url"] == "/mlplatform/outputs/exp_dag/manual__0/train/1"
    assert body["rows"][1]["output_url"] == "/mlplatform/outputs/exp_dag/manual__1/train/2"
    # the linked page is the output viewer's, and it serves this try
    assert client.get(first["output_url"], headers=as_viewer).status_code == 200
    # --last and --diff, as in the CLI
    body = client.get(f"{API}/exp_dag/train?last=1&diff=true", headers=as_viewer).json()
    assert [row["run_id"] for row in body["rows"]] == ["manual__1"]
    diff = client.get(f"{API}/exp_dag/train?diff=true", headers=as_viewer).json()["columns"]
    assert "param:C" in diff and "param:seed" not in diff and "code" not in diff
    assert client.get(f"{API}/exp_dag/nothing", headers=as_viewer).json()["rows"] == []
    assert client.get(f"{API}/exp_dag/train?last=0", headers=as_viewer).status_code == 422


def test_needs_a_user_with_read_permission_on_the_dag(client, tokens, as_viewer, runs, monkeypatch):
    assert client.get(f"{API}/exp_dag/train").status_code == 401
    # an invalid token: Airflow's own get_user answers 403 (as for its own API)
    bad = client.get(f"{API}/exp_dag/train", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 403 and "rows" not in bad.text
    monkeypatch.setenv("MLPLATFORM_TEST_DENY", "viewer:exp_dag")
    r = client.get(f"{API}/exp_dag/train", headers=as_viewer)
    assert r.status_code == 403 and "exp_dag" in r.json()["detail"]
    assert (
        client.get(f"{API}/exp_dag/train", headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code
        == 200
    )
