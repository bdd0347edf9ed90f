"""Models: versions in MLflow's registry, named by alias, used by any task.

``ModelRef("churn", alias="champion")`` can be any templated operator parameter (and
``${{ models.churn@champion }}`` in workflow files): when the task runs it becomes the
model's local path (or URI), a ``str`` that also carries ``name``, ``alias``, ``version`` and
``uri``; the version used goes into the task's execution record (``models.used``) and XCom
``models_used``. Light at import time: DAG files import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlplatform.exceptions import ParameterError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def check_model_name(name: Any) -> str:
    """``name`` when it is a usable registered-model name, else a ParameterError.

    :param name: a registered model's name.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError(
            f"model name {name!r} is not valid: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: Any) -> str:
    """``alias`` when it is a usable MLflow alias, else a ParameterError.

    :param alias: an alias (``champion``).
    """
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias.lower() == "latest":
        raise ParameterError(
            f"model alias {alias!r} is not valid: use letters, digits, '_' and '-', starting with a "
            "letter or '_' ('latest' is reserved by MLflow); aliases only, stages are not used"
        )
    return alias


class ResolvedModel(str):
    """A model version's local path (or URI), as a ``str``, with what it came from.

    :param path: local path (or URI) of the model's files.
    :param name: the registered model.
    :param alias: the alias it was asked by (None: by version).
    :param version: the version used.
    :param uri: the version's artifact URI in the registry.
    """

    name: str
    alias: str | None
    version: str
    uri: str

    def __new__(cls, path: str, *, name: str, alias: str | None, version: str, uri: str) -> ResolvedModel:
        obj = super().__new__(cls, path)
        obj.name, obj.alias, obj.version, obj.uri = name, alias, str(version), uri
        return obj

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:  # copies and pickles keep the attributes
        return (_resolved, (str(self), self.name, self.alias, self.version, self.uri))

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__reduce_ex__(2)

    def used(self) -> dict[str, Any]:
        """The ``models.used`` entry of the execution record."""
        return {"name": self.name, "alias": self.alias, "version": self.version, "uri": self.uri}


def _resolved(path: str, name: str, alias: str | None, version: str, uri: str) -> ResolvedModel:
    return ResolvedModel(path, name=name, alias=alias, version=version, uri=uri)


@dataclass(frozen=True)
class ModelRef:
    """A registered model's version, by alias (or number), resolved when the task runs.

    Airflow resolves any templated value with a ``resolve(context)`` method when it renders the
    task's templated fields, so ``parameters={"model_path": ModelRef("churn", alias="champion")}``
    reaches the job as the model's local path.

    :param name: the registered model.
    :param alias: the alias (``champion``); or give ``version``.
    :param version: a version number instead of an alias.
    :param mlflow_conn_id: the ``mlflow`` connection (none: the embedded store).
    """

    name: str
    alias: str | None = None
    version: int | str | None = None
    mlflow_conn_id: str = "mlflow_default"

    def __post_init__(self) -> None:
        check_model_name(self.name)
        if (self.alias is None) == (self.version is None):
            raise ParameterError(
                f"ModelRef({self.name!r}) needs exactly one of alias= (e.g. alias='champion') or version="
            )
        if self.alias is not None:
            check_alias(self.alias)

    def iter_references(self) -> Iterable[tuple[Any, str]]:
        """No upstream task: a model reference depends on the registry only."""
        return ()

    def resolve(self, context: Mapping[str, Any]) -> ResolvedModel:
        """The model's local path (a :class:`ResolvedModel`), noted for the record and XCom.

        A model, version or alias that does not exist fails the try before its job starts,
        with a stored ``failed`` execution record naming the model and its aliases.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform.exceptions import ModelRegistryError
        from airflow_mlplatform.hooks.mlflow import MLflowHook
        from airflow_mlplatform.models import registry, section

        try:
            resolved = registry.resolve(MLflowHook(self.mlflow_conn_id), self)
        except ModelRegistryError as e:  # the job never starts: its record says why it failed
            from airflow_mlplatform.jobs import record_failed_before_run

            record_failed_before_run(context, e)
            raise
        section.note(context, "used", resolved.used())
        return resolved

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"

    def __repr__(self) -> str:
        what = f"alias={self.alias!r}" if self.alias else f"version={self.version!r}"
        return f"ModelRef({self.name!r}, {what})"


_MODEL_URI = re.compile(r"^models:/([^/@]+)(?:@([^/@]+)|/(\d+))$")


def parse_model_uri(text: str, *, mlflow_conn_id: str = "mlflow_default") -> ModelRef | None:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` as a :class:`ModelRef`; None for other text.

    :param text: the URI.
    :param mlflow_conn_id: the ``mlflow`` connection of the reference.
    """
    m = _MODEL_URI.match(text.strip())
    if not m:
        if text.strip().startswith("models:/"):
            raise ParameterError(
                f"model URI {text!r} is not valid: write models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        return None
    name, alias, version = m.groups()
    return ModelRef(name, alias=alias, version=version, mlflow_conn_id=mlflow_conn_id)


__all__ = ["ModelRef", "ResolvedModel", "check_alias", "check_model_name", "parse_model_uri"]
