"""Register model versions in MLflow's registry with their lineage, and promote them by alias."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.models import check_alias, check_model_name


def _identity(context: Any) -> dict[str, Any]:
    from airflow_mlplatform import execution_record as er

    return er.task_identity(context)


def _run(context: Any, *, job: Any, parameters: Mapping[str, Any], operator: str) -> dict[str, Any]:
    """Run ``job`` through :func:`~airflow_mlplatform.jobs.run_recorded` into this try's folder."""
    from airflow_mlplatform import storage
    from airflow_mlplatform.jobs import run_recorded

    folder = storage.OutputFolder(storage.task_output_location(context))
    return run_recorded(
        context,
        job=job,
        folder=folder,
        parameters=parameters,
        code={"operator": f"{__name__}.{operator}"},
        environment={},
        outputs={},
    )


class RegisterModelOperator(LineageMixin, BaseOperator):
    """Upload a model's file or folder and create a version of a registered model in MLflow.

    The version's tags and description carry its lineage: the registering dag/run/task/try,
    the source task's execution record URI, its code sha256 / git commit, parameters and final
    metrics (tags ``param.NAME`` and ``metric.NAME``; promotion gates read the latter). Pushes
    XCom ``version`` (an int), ``model_uri`` (``models:/name/version``) and ``model_name``; the
    execution record gets ``models.registered``. Idempotent: a retry of this task over the same
    source try returns the version its earlier try created.

    :param model_name: the registered model (created on first use).
    :param artifact: the model's file or folder (templated): a local path, any ObjectStoragePath
        URI, or a Valohai ``datum://`` output (downloaded through the Valohai connection).
    :param source_task: the task that produced the model; its execution record (XCom) gives the
        lineage. Default: none (only this task's identity is recorded).
    :param mlflow_conn_id: the ``mlflow`` connection (none configured: the embedded store).
    :param valohai_conn_id: the Valohai connection, for ``datum://`` artifacts.
    :param tags: extra version tags (templated).
    """

    template_fields: Sequence[str] = ("artifact", "model_name", "tags", "mlflow_conn_id", "valohai_conn_id")
    ui_color = "#d7e8f9"

    def __init__(
        self,
        *,
        model_name: str,
        artifact: Any,
        source_task: str | None = None,
        mlflow_conn_id: str = "mlflow_default",
        valohai_conn_id: str = "valohai_default",
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        if "{{" not in str(model_name):
            check_model_name(model_name)
        self.model_name = model_name
        self.artifact = artifact
        self.source_task = source_task
        self.mlflow_conn_id = mlflow_conn_id
        self.valohai_conn_id = valohai_conn_id
        self.tags = tags

    def _source_record(self, context: Any) -> dict[str, Any] | None:
        if not self.source_task:
            return None
        record = context["ti"].xcom_pull(task_ids=self.source_task, key="execution_record")
        return dict(record) if isinstance(record, Mapping) else None

    def execute(self, context: Any) -> dict[str, Any]:
        """Register the version (or find the one an earlier try registered) and push ``version``.

        :param context: the task's Airflow context.
        """
        import tempfile
        from pathlib import Path

        from airflow_mlplatform.hooks.mlflow import MLflowHook
        from airflow_mlplatform.jobs import JobRun
        from airflow_mlplatform.models import registry, section
        from airflow_mlplatform.models.artifacts import local_artifact
        from airflow_mlplatform.values import JobOutputs

        name = check_model_name(self.model_name)
        task = _identity(context)
        source_record = self._source_record(context)
        if self.source_task and source_record is None:
            self.log.warning(
                "source task %r pushed no execution record: the version gets this task's lineage only",
                self.source_task,
            )
        artifact = str(self.artifact)
        source = ((source_record or {}).get("outputs") or {}).get("record") or artifact

        def job() -> JobRun:
            with tempfile.TemporaryDirectory(prefix="mlplatform-model-") as tmp:
                local = local_artifact(artifact, workdir=Path(tmp), valohai_conn_id=self.valohai_conn_id)
                tags = registry.lineage_tags(
                    task=task, source_task=self.source_task, source_record=source_record
                )
                tags.update({str(k): str(v) for k, v in (self.tags or {}).items()})
                done = registry.register(
                    MLflowHook(self.mlflow_conn_id),
                    name=name,
                    artifact=local,
                    experiment=task["dag_id"],
                    key=registry.idempotency_key(task, model_name=name, source=source),
                    tags=tags,
                    description=registry.describe(task=task, source_task=self.source_task, tags=tags),
                )
            self.log.info(
                "%s version %s of model %r (%s)",
                "Reused" if done.reused else "Registered",
                done.version,
                name,
                done.source,
            )
            section.note(context, "registered", done.entry())
            values = {"version": int(done.version), "model_uri": done.uri, "model_name": name}
            return JobRun(outputs=JobOutputs(values=values), environment={"mlflow_reused": done.reused})

        return _run(
            context,
            job=job,
            parameters={"model_name": name, "artifact": artifact, "source_task": self.source_task},
            operator=type(self).__name__,
        )


class PromoteModelOperator(LineageMixin, BaseOperator):
    """Point an alias (``champion``) at a model version when a gate passes; emit the alias's Asset event.

    The gate compares the candidate's metrics with those of the version holding the alias now
    (see :mod:`airflow_mlplatform.models.gate`); with no holder the candidate is promoted. The
    holder is read again just before the alias is set (under a file lock on the embedded store).
    Pushes XCom ``promoted`` (bool), ``reason``, ``version`` and ``previous``; on promotion an
    event for ``model_asset(model_name, alias)`` (extra: version, previous, metrics) triggers
    the DAGs scheduled on it.

    :param model_name: the registered model.
    :param version: the candidate version (templated, e.g. ``register.output["version"]``).
    :param alias: the alias to move (aliases only; stages are never used).
    :param gate: the gate expression, e.g. ``accuracy >= champion.accuracy`` (None: always promote);
        checked when the DAG file is parsed.
    :param mlflow_conn_id: the ``mlflow`` connection (none configured: the embedded store).
    """

    template_fields: Sequence[str] = ("version", "mlflow_conn_id")
    ui_color = "#d7f9e0"

    def __init__(
        self,
        *,
        model_name: str,
        version: Any,
        alias: str = "champion",
        gate: str | None = None,
        mlflow_conn_id: str = "mlflow_default",
        **kwargs: Any,
    ) -> None:
        from airflow_mlplatform.models.assets import model_asset_alias
        from airflow_mlplatform.models.gate import parse_gate

        kwargs.setdefault("multiple_outputs", True)
        outlets = list(kwargs.pop("outlets", None) or [])
        outlets.append(model_asset_alias(model_name, alias))
        super().__init__(outlets=outlets, **kwargs)
        self.model_name = check_model_name(model_name)
        self.alias = check_alias(alias)
        self.gate = gate
        if gate is not None:
            parse_gate(gate, alias=alias)  # a bad gate fails when the DAG file is parsed
        self.version = version
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Decide, move the alias when the gate passes, and push ``promoted`` and ``reason``.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform.exceptions import ParameterError
        from airflow_mlplatform.hooks.mlflow import MLflowHook
        from airflow_mlplatform.jobs import JobRun
        from airflow_mlplatform.models import registry, section
        from airflow_mlplatform.models.assets import model_asset, model_asset_alias
        from airflow_mlplatform.models.gate import parse_gate
        from airflow_mlplatform.values import JobOutputs

        try:
            version = str(int(str(self.version)))
        except ValueError as e:
            raise ParameterError(
                f"version {self.version!r} is not a model version number: pass e.g. register.output['version']"
            ) from e
        gate = parse_gate(self.gate, alias=self.alias) if self.gate is not None else None

        def job() -> JobRun:
            decision = registry.promote(
                MLflowHook(self.mlflow_conn_id),
                name=self.model_name,
                version=version,
                alias=self.alias,
                gate=gate,
            )
            self.log.info("%s: %s", "Promoted" if decision.promoted else "Not promoted", decision.reason)
            uri = f"models:/{self.model_name}/{version}"
            section.note(
                context, "used", {"name": self.model_name, "alias": None, "version": version, "uri": uri}
            )
            if decision.promoted:
                events = context["outlet_events"][model_asset_alias(self.model_name, self.alias)]
                events.add(
                    model_asset(self.model_name, self.alias),
                    extra={
                        "model": self.model_name,
                        "alias": self.alias,
                        "version": int(version),
                        "previous": decision.previous,
                        "metrics": decision.metrics,
                    },
                )
            values = {
                "promoted": decision.promoted,
                "reason": decision.reason,
                "version": int(version),
                "previous": int(decision.previous) if decision.previous else None,
            }
            return JobRun(outputs=JobOutputs(values=values), metrics=dict(decision.metrics))

        return _run(
            context,
            job=job,
            parameters={
                "model_name": self.model_name,
                "version": version,
                "alias": self.alias,
                "gate": self.gate,
            },
            operator=type(self).__name__,
        )
