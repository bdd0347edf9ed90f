"""runners of the airflow-mlplatform provider."""
