"""A PySpark job: total and top region of the revenue it is given, on the session its compute
profile chooses (local[*] in the worker, the cluster in production).

Run by the `spark` step of workflows/every_step_type.yaml (SparkApplicationOperator).
"""

import json
import os

from airflow_mlplatform.runtime import log_metrics, record, spark_session

params = json.loads(os.environ.get("MLPLATFORM_PARAMETERS") or "{}")
revenue = params.get("revenue") or {"north": 1.0}
spark = spark_session("revenue")
frame = spark.createDataFrame(sorted(revenue.items()), ["region", "revenue"])
total = frame.groupBy().sum("revenue").first()[0]
top = frame.orderBy(frame.revenue.desc()).first()["region"]
record("spark_total_revenue", float(total))
record("spark_top_region", top)
log_metrics(regions=frame.count())
spark.stop()
