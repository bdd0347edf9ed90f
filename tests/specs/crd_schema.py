"""Validate manifests against the openAPIV3Schema of the CRDs vendored in tests/data/crds/ (see its README)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parents[1] / "data" / "crds"


@functools.cache
def crd_schema(file_name: str, version: str = "v1") -> dict[str, Any]:
    with open(CRDS / file_name) as f:
        crd = yaml.safe_load(f)
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise LookupError(f"{file_name} has no version {version}")


def _strict(schema: Any) -> Any:
    """The schema with additionalProperties: false on every object that lists its properties.

    A real API server prunes unknown fields silently; in tests an unknown (misspelt) field
    must fail instead.
    """
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(x) for x in schema]
    return schema


@functools.cache
def _validator(file_name: str, version: str):
    schema = _strict(crd_schema(file_name, version))
    # apiVersion/kind/metadata are checked by the API server itself, not by the CRD schema.
    for key in ("apiVersion", "kind"):
        schema["properties"][key] = {"type": "string"}
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def validate(manifest: dict[str, Any], file_name: str, version: str = "v1") -> None:
    """Raise jsonschema.ValidationError naming the first field the CRD rejects."""
    errors = sorted(_validator(file_name, version).iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        raise jsonschema.ValidationError(f"{'.'.join(map(str, e.path))}: {e.message}")
