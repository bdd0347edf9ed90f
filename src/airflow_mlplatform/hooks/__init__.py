"""hooks of the airflow-mlplatform provider."""
