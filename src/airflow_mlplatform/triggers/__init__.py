"""triggers of the airflow-mlplatform provider."""
