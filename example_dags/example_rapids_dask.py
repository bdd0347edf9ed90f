"""Dask jobs with RapidsDaskOperator: a dataframe aggregation, a scikit-learn fit on Dask, a script.

Each task gets its own 2-worker cluster (``cluster="local"``: a LocalCluster, or a
LocalCUDACluster with cudf/cupy where dask-cuda and GPUs are present), torn down when the task
ends. The same code runs on pandas/numpy and on cudf/cupy: Dask's dataframe backend is
switched by the operator, and the log says which was used. Point ``cluster="address"`` with
``dask_conn_id`` at an existing scheduler to run on a shared cluster instead.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_mlplatform.operators.rapids import RapidsDaskOperator


def aggregate(parameters: dict) -> dict:
    """Revenue per region over a synthetic sales table, computed on the Dask workers."""
    import dask.dataframe as dd
    import numpy as np

    n_rows = int(parameters["n_rows"])
    rng = np.random.default_rng(0)
    regions = np.array(["north", "south", "east", "west"])
    df = dd.from_dict(
        {
            "region": regions[rng.integers(0, 4, n_rows)],
            "units": rng.integers(1, 10, n_rows),
            "price": rng.uniform(1.0, 5.0, n_rows).round(2),
        },
        npartitions=4,
    )
    df["revenue"] = df["units"] * df["price"]
    per_region = df.groupby("region")["revenue"].sum().compute()
    return {
        "revenue_by_region": {str(k): round(float(v), 2) for k, v in per_region.to_dict().items()},
        "rows": len(df),
        "partitions": df.npartitions,
    }


def fit(client, parameters: dict) -> dict:
    """A scikit-learn grid search whose fits run on the Dask workers (joblib's dask backend)."""
    import joblib
    from distributed import get_task_stream
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    from airflow_mlplatform.runtime import log_metrics

    x, y = load_iris(return_X_y=True)
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": parameters["C_grid"]}, cv=3, n_jobs=-1)
    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        search.fit(x, y)
    for c, score in zip(parameters["C_grid"], search.cv_results_["mean_test_score"], strict=True):
        log_metrics(C=c, cv_accuracy=round(float(score), 4))
    return {
        "best_C": float(search.best_params_["C"]),
        "cv_accuracy": round(float(search.best_score_), 4),
        "dask_tasks": len(stream.data),
    }


with DAG(
    dag_id="example_rapids_dask",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"n_rows": Param(20_000, type="integer", minimum=1)},
    tags=["mlplatform", "example", "dask"],
) as dag:
    revenue = RapidsDaskOperator(
        task_id="aggregate",
        python_callable=aggregate,
        n_workers=2,
        threads_per_worker=1,
    )
    tune = RapidsDaskOperator(
        task_id="fit",
        python_callable=fit,
        parameters={"C_grid": [0.1, 1.0, 10.0]},
        include_dag_params=False,
        n_workers=2,
        threads_per_worker=1,
    )
    report = RapidsDaskOperator(
        task_id="report",
        script="scripts/dask_report.py",
        parameters={
            "revenue": revenue.output["revenue_by_region"],
            "cv_accuracy": tune.output["cv_accuracy"],
        },
        include_dag_params=False,
        n_workers=2,
        threads_per_worker=1,
    )
