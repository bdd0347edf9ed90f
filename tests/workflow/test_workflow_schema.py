"""The JSON Schema shipped in the package: up to date, valid, and it agrees with the validator."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from airflow_mlplatform.workflow import schema_path
from airflow_mlplatform.workflow.schema import schema_text

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
EXAMPLES = [*sorted((REPO / "example_dags" / "workflows").glob("*.yaml")), DATA / "mixed.yaml"]


def _plain(value):
    """As an editor's YAML 1.2 parser sees it: dates are strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(schema_path().read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_schema_is_generated_from_the_registry():
    assert schema_path().read_text() == schema_text(), (
        "regenerate: python -m airflow_mlplatform.workflow.schema > " + str(schema_path())
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_workflows_are_valid_against_the_schema(validator, path):
    errors = [e.message for e in validator.iter_errors(_plain(yaml.safe_load(path.read_text())))]
    assert errors == []


def test_schema_rejects_what_the_validator_rejects(validator):
    doc = _plain(yaml.safe_load((DATA / "bad.yaml").read_text()))
    found = {(tuple(e.absolute_path), e.validator) for e in validator.iter_errors(doc)}
    assert (("steps", 2, "type"), "enum") in found  # unknown step type
    assert (("steps", 4, "retries"), "type") in found  # wrong type
    assert (("steps", 4), "additionalProperties") in found  # unknown field


def test_cli_prints_the_schema():
    done = subprocess.run([sys.executable, "-m", "airflow_mlplatform.cli", "workflow", "schema"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout)["title"].startswith("airflow-mlplatform workflow")
