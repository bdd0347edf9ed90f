"""operators of the airflow-mlplatform provider."""
