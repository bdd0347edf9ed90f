"""A Dask job script: connects to the task's cluster through DASK_SCHEDULER_ADDRESS.

RapidsDaskOperator (like a DaskJob's runner pod) sets DASK_SCHEDULER_ADDRESS, so
``Client()`` needs no argument. Parameters arrive as JSON in MLPLATFORM_PARAMETERS.
"""

from __future__ import annotations

import json
import os

from distributed import Client

from airflow_mlplatform.runtime import log_metrics, record


def main() -> None:
    params = json.loads(os.environ.get("MLPLATFORM_PARAMETERS") or "{}")
    revenue = params["revenue"]
    print(f"data libraries: {os.environ.get('MLPLATFORM_DASK_LIBRARIES')}")
    with Client() as client:  # DASK_SCHEDULER_ADDRESS
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        total = client.submit(sum, list(revenue.values())).result()
    log_metrics(total_revenue=round(total, 2), cv_accuracy=params["cv_accuracy"])
    record("total_revenue", round(total, 2))
    record("top_region", max(revenue, key=revenue.get))
    record("workers", workers)


if __name__ == "__main__":
    main()
