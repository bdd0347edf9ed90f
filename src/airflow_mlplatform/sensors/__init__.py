"""sensors of the airflow-mlplatform provider."""
