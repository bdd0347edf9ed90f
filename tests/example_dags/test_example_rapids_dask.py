"""example_rapids_dask: dataframe aggregation, scikit-learn on Dask and a script, with dag.test()."""

from __future__ import annotations

import shutil

import pytest

from repo_paths import REPO

pytest.importorskip("distributed", reason="the dask extra is not installed")


@pytest.mark.slow
def test_rapids_dask_example_runs_end_to_end(run_dag, dags_folder):
    shutil.copytree(REPO / "example_dags" / "scripts", dags_folder / "scripts", dirs_exist_ok=True)
    result = run_dag(REPO / "example_dags" / "example_rapids_dask.py", "example_rapids_dask")
    assert result.task_states() == {"aggregate": "success", "fit": "success", "report": "success"}

    agg = result.xcom("aggregate")
    assert agg["rows"] == 20_000 and agg["partitions"] == 4
    assert set(agg["revenue_by_region"]) == {"north", "south", "east", "west"}
    assert result.xcom("aggregate", "revenue_by_region") == agg["revenue_by_region"]

    fit = result.xcom("fit")
    assert fit["best_C"] in (0.1, 1.0, 10.0)
    assert fit["cv_accuracy"] > 0.9
    assert fit["dask_tasks"] > 0  # the fits really ran on the Dask workers
    series = result.xcom("fit", "execution_record")["metrics"]["series"]
    assert [row["C"] for row in series] == [0.1, 1.0, 10.0]

    report = result.xcom("report")
    assert report["total_revenue"] == pytest.approx(sum(agg["revenue_by_region"].values()), abs=0.05)
    assert report["top_region"] == max(agg["revenue_by_region"], key=agg["revenue_by_region"].get)
    assert report["workers"] == 2
    assert result.xcom("report", "metrics")["cv_accuracy"] == fit["cv_accuracy"]

    for task in ("aggregate", "fit", "report"):
        record = result.xcom(task, "execution_record")
        assert record["status"] == "success"
        assert record["where"]["cluster"] == "LocalCluster"
        assert record["where"]["libraries"] == "pandas/numpy"
        assert record["where"]["n_workers"] == 2
        assert record["where"]["created_by_task"] is True
    assert result.xcom("report", "execution_record")["code"]["script"].endswith("dask_report.py")
    assert result.xcom("aggregate", "execution_record")["code"]["callable"].endswith("aggregate")
