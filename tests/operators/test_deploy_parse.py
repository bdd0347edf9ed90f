"""DeployModelOperator's definition checks: every mistake fails when the DAG file is parsed, with the fix."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import DeploymentDefinitionError, ModelGateError, ParameterError
from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.operators.deploy import DeleteDeploymentOperator, DeployModelOperator

SMOKE = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]}]}


def _op(**kw):
    return DeployModelOperator(
        **{"task_id": "deploy", "model": "models:/churn@champion", "name": "churn", **kw}
    )


@pytest.mark.parametrize(
    ("kw", "error", "fragment"),
    [
        ({"name": "Churn_Model"}, DeploymentDefinitionError, "lower-case letters"),
        ({"model": ""}, DeploymentDefinitionError, "ModelRef"),
        ({"model": "models:/churn"}, ParameterError, "models:/NAME@ALIAS"),
        ({"canary_traffic_percent": 100}, DeploymentDefinitionError, "1 to 99"),
        (
            {"canary_gate": "latency_ms < 5"},
            DeploymentDefinitionError,
            "give smoke_request and canary_traffic",
        ),
        (
            {"canary_gate": "errors == 0", "smoke_request": SMOKE},
            DeploymentDefinitionError,
            "canary_traffic_percent",
        ),
        ({"smoke_request": {"inputs": []}}, DeploymentDefinitionError, "named inputs"),
        ({"smoke_request": {"instances": [[1, 2]]}}, DeploymentDefinitionError, "named inputs"),
        ({"smoke_count": 0}, DeploymentDefinitionError, "smoke_count"),
        ({"startup_timeout": 0}, DeploymentDefinitionError, "startup_timeout"),
        (
            {"canary_gate": "__import__('os')", "smoke_request": SMOKE, "canary_traffic_percent": 10},
            ModelGateError,
            "gates do not allow",
        ),
        ({"model_format": "sklean"}, DeploymentDefinitionError, "no stock KServe runtime"),
        ({"min_replicas": 2, "max_replicas": 1}, DeploymentDefinitionError, "below min_replicas"),
        ({"smoke_request": [1, 2]}, DeploymentDefinitionError, "v2 inference request"),
    ],
)
def test_mistakes_fail_at_parse_time_naming_the_fix(kw, error, fragment):
    with pytest.raises(error, match=fragment):
        _op(**kw)


def test_a_model_ref_is_kept_as_its_templated_uri_with_its_connection():
    op = _op(
        model=ModelRef("churn", alias="champion", mlflow_conn_id="mlflow_prod"), canary_traffic_percent=10
    )
    assert op.model == "models:/churn@champion" and op.mlflow_conn_id == "mlflow_prod"
    assert "model" in op.template_fields  # a workflow reference or Jinja may build it
    templated = _op(
        name="churn-{{ params.env }}", model="models:/churn/{{ ti.xcom_pull('register', 'version') }}"
    )
    assert templated.name.startswith("churn-")


def test_delete_checks_the_name_too():
    with pytest.raises(DeploymentDefinitionError, match="not valid"):
        DeleteDeploymentOperator(task_id="undeploy", name="not_valid")


def test_userinfo_never_reaches_the_record_or_xcom():
    from airflow_mlplatform.operators.deploy import redact_uri

    assert redact_uri("https://user:s3cret@models.example.com/churn/model.joblib") == (
        "https://models.example.com/churn/model.joblib"
    )
    assert redact_uri("s3://bucket/churn/1") == "s3://bucket/churn/1"
