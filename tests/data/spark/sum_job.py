"""A PySpark job for the tests: sums 1..n on a real Spark session, records the result."""

import json
import os
import sys

from pyspark.sql import SparkSession

from airflow_mlplatform.runtime import log_metrics, record

params = json.loads(os.environ.get("MLPLATFORM_PARAMETERS") or "{}")
n = int(params.get("n", 10))
spark = SparkSession.builder.getOrCreate()
total = spark.range(1, n + 1).groupBy().sum("id").first()[0]
record("total", total)
record("args", sys.argv[1:])
record("master", spark.sparkContext.master)
record("partitions", spark.conf.get("spark.sql.shuffle.partitions"))
log_metrics(rows=n, partitions=spark.range(1, n + 1).rdd.getNumPartitions())
spark.stop()
if params.get("fail"):
    sys.exit(3)
