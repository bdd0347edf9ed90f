"""OpenLineage for every operator, from the try's execution record.

:class:`LineageMixin` gives an operator ``get_openlineage_facets_on_complete`` and
``get_openlineage_facets_on_failure`` (Airflow's OpenLineage provider calls them when the task
ends). Both read the try's stored execution record and describe:

- inputs: the notebook/script/application that ran, the record's input URIs
  (``data.inputs``), parameters whose values are file paths or storage URIs (how values travel
  between steps), and the model versions used (``models.used``);
- outputs: the try's output files (``outputs``), recorded values that are file paths or
  storage URIs, and the model versions registered (``models.registered``);
- a run facet ``mlplatform``: status, parameters, final metrics, code (sha256, git commit),
  where it ran and the record's URI.

Dataset names follow OpenLineage's naming: ``file`` + absolute path, ``s3://bucket`` + key,
``gs://bucket`` + key (any ``scheme://authority`` + path alike); a model version is namespace
``models``, name ``NAME/VERSION`` (as in MLflow's ``models:/NAME/VERSION``).

The provider is optional (extra ``openlineage``): everything it needs is imported inside the
methods; :func:`lineage_of` itself is stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: keys of a record's ``code`` section that name the file that ran
CODE_KEYS = ("notebook", "script", "application", "path")
#: a storage URI (``s3://bucket/key``, ``file:///p``); http(s) addresses are not datasets
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<authority>[^/]*)(?P<path>/.*)?$")
_NOT_DATASETS = ("http", "https", "mailto")
MODEL_NAMESPACE = "models"


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset identity.

    :param namespace: ``file``, ``s3://bucket``, ``gs://bucket``, ``models``...
    :param name: the absolute path, the key, or ``MODEL/VERSION``.
    """

    namespace: str
    name: str


@dataclass(frozen=True)
class Lineage:
    """What :func:`lineage_of` found in a record.

    :param inputs: datasets read.
    :param outputs: datasets written.
    :param run: the ``mlplatform`` run facet's fields.
    """

    inputs: list[DatasetName] = field(default_factory=list)
    outputs: list[DatasetName] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)


def dataset_name(location: Any) -> DatasetName | None:
    """The OpenLineage name of a file path or storage URI, or None when it is neither.

    :param location: an absolute local path, a ``file://`` URI or ``scheme://authority/path``.
    """
    if not isinstance(location, str) or not location or "\n" in location:
        return None
    if location.startswith("/"):
        return DatasetName("file", location)
    match = _URI.match(location)
    if match is None:
        return None
    scheme, authority, path = match["scheme"].lower(), match["authority"], match["path"] or ""
    if scheme in _NOT_DATASETS:
        return None
    if scheme == "file":
        return DatasetName("file", path or "/") if path else None
    if not authority:
        return None
    return DatasetName(f"{scheme}://{authority}", path.lstrip("/") or "/")


def _locations(value: Any) -> Iterable[Any]:
    """Strings in a value (a string, a list of them, or ``{"uri": ...}`` entries)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        if "uri" in value:
            yield value["uri"]
        else:
            for v in value.values():
                yield from _locations(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _locations(v)


def _datasets(values: Iterable[Any]) -> list[DatasetName]:
    out: list[DatasetName] = []
    for value in values:
        for location in _locations(value):
            name = dataset_name(location)
            if name is not None and name not in out:
                out.append(name)
    return out


def model_datasets(entries: Any) -> list[DatasetName]:
    """The model versions of a record's ``models.used`` or ``models.registered`` list.

    :param entries: ``[{"name", "version", ...}]``.
    """
    out: list[DatasetName] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("name") and entry.get("version") is not None:
            name = DatasetName(MODEL_NAMESPACE, f"{entry['name']}/{entry['version']}")
            if name not in out:
                out.append(name)
    return out


def lineage_of(record: Mapping[str, Any]) -> Lineage:
    """Inputs, outputs and the run facet's fields of one execution record.

    :param record: an execution record (schema version 1 or 2, with or without ``models``).
    """

    def section(key: str) -> Mapping[str, Any]:
        value = record.get(key)
        return value if isinstance(value, Mapping) else {}

    code, data, models = section("code"), section("data"), section("models")
    inputs_section = data.get("inputs") if isinstance(data.get("inputs"), Mapping) else {}
    outputs_section = section("outputs")
    inputs = _datasets([*(code.get(k) for k in CODE_KEYS), inputs_section, section("parameters")])
    inputs += [m for m in model_datasets(models.get("used")) if m not in inputs]
    outputs = _datasets([outputs_section, section("values")])
    outputs = [o for o in outputs if o not in inputs]  # a path passed through is not written here
    outputs += [m for m in model_datasets(models.get("registered")) if m not in outputs]
    metrics = section("metrics")
    run = {
        "status": record.get("status"),
        "parameters": dict(section("parameters")),
        "metrics": dict(metrics.get("summary") or {}) if isinstance(metrics.get("summary"), Mapping) else {},
        "code": {k: v for k, v in code.items() if k in ("sha256", "git_commit", *CODE_KEYS)},
        "where": dict(section("where")),
        "record": outputs_section.get("record"),
    }
    return Lineage(inputs=inputs, outputs=outputs, run=run)


def stored_record(task_instance: Any) -> dict[str, Any] | None:
    """The execution record of ``task_instance``'s try: its stored file, else its XCom.

    :param task_instance: the task instance OpenLineage passes.
    """
    from airflow_mlplatform.record_store import read_record
    from airflow_mlplatform.storage import output_location

    location = output_location(
        dag_id=task_instance.dag_id,
        run_id=task_instance.run_id,
        task_id=task_instance.task_id,
        map_index=getattr(task_instance, "map_index", -1),
        try_number=getattr(task_instance, "try_number", None) or 1,
    )
    found = read_record(location)
    if found is not None:
        return found.record
    try:
        record = task_instance.xcom_pull(
            task_ids=task_instance.task_id,
            key="execution_record",
            map_indexes=getattr(task_instance, "map_index", -1),
        )
    except Exception:  # no XCom backend reachable: no lineage, never a failed task
        return None
    return record if isinstance(record, dict) else None


def operator_lineage(record: Mapping[str, Any] | None) -> Any:
    """The provider's ``OperatorLineage`` for a record (empty when there is none).

    :param record: the try's execution record.
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    if not record:
        return OperatorLineage()
    from airflow_mlplatform.lineage_facets import MLPlatformRunFacet

    found = lineage_of(record)
    return OperatorLineage(
        inputs=[Dataset(namespace=d.namespace, name=d.name) for d in found.inputs],
        outputs=[Dataset(namespace=d.namespace, name=d.name) for d in found.outputs],
        run_facets={"mlplatform": MLPlatformRunFacet(**found.run)},
    )


class LineageMixin:
    """OpenLineage facets from the try's execution record, for any operator that stores one.

    Add it first among an operator's bases: ``class MyOperator(LineageMixin, BaseOperator)``.
    """

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs, outputs and run facet of the try that succeeded.

        :param task_instance: the finished task instance.
        """
        return operator_lineage(stored_record(task_instance))

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """Inputs, outputs and run facet of the try that failed (its record says what it read).

        :param task_instance: the failed task instance.
        """
        return operator_lineage(stored_record(task_instance))
