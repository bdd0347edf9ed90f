"""Deploy a registered model version to KServe, and remove a deployment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.lineage import LineageMixin

#: The gate's name for the revision that served before a canary (``latency_ms <= prev.latency_ms * 2``).
GATE_ALIAS = "prev"


def redact_uri(uri: str) -> str:
    """``uri`` without the user and password of its authority (``https://u:p@host/m`` ->
    ``https://host/m``), for logs, XCom and the record.

    :param uri: a storage URI.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def check_smoke_request(request: Any, *, task_id: str) -> None:
    """A ``smoke_request`` that is None or a v2 inference request (``inputs``, a non-empty list of
    named tensors), else a DeploymentDefinitionError naming the fix.

    :param request: the request as given (or rendered).
    :param task_id: the task, for the message.
    """
    from airflow_mlplatform.exceptions import DeploymentDefinitionError

    if request is None:
        return
    inputs = request.get("inputs") if isinstance(request, Mapping) else None
    if (
        not isinstance(inputs, list)
        or not inputs
        or not all(isinstance(i, Mapping) and i.get("name") for i in inputs)
    ):
        raise DeploymentDefinitionError(
            f"task {task_id!r}: smoke_request must be a v2 inference request with named inputs, e.g. "
            '{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]}]}'
        )


def _connection_exists(conn_id: str) -> bool:
    """Whether the Airflow connection ``conn_id`` is configured."""
    from airflow_mlplatform.config import optional_connection

    return optional_connection(conn_id) is not None


def _skip_without(conn_id: str, log: Any, what: str) -> None:
    """Skip the task (AirflowSkipException) when ``conn_id`` is not configured, saying so."""
    if not _connection_exists(conn_id):
        from airflow.sdk.exceptions import AirflowSkipException

        log.info(
            "No Kubernetes connection %r is configured: skipping the %s (configure the connection, e.g. "
            "AIRFLOW_CONN_%s, to deploy to KServe)",
            conn_id,
            what,
            conn_id.upper(),
        )
        raise AirflowSkipException(f"no Kubernetes connection {conn_id!r}: {what} skipped")


class DeployModelOperator(LineageMixin, BaseOperator):
    """Roll a model version out to a KServe InferenceService and wait until it serves.

    Creates the ``serving.kserve.io/v1beta1`` InferenceService, or patches its predictor
    (``modelFormat`` + ``storageUri`` of the model version; resources, placement, service account,
    tenant labels and the restricted security context from the compute profile), then waits until
    the new revision serves: ``Ready`` True **and** ``observedGeneration`` reached (in the
    triggerer when deferrable). With ``canary_traffic_percent`` the new revision first takes that
    share; the smoke test (``smoke_request``, the open inference protocol v2) and the
    ``canary_gate`` decide whether it is promoted to 100% or rolled back. ``FailedToLoad``, a
    revision not ready within ``startup_timeout``, a failed smoke test or gate roll back to the
    previous predictor (whose revision keeps serving) and fail the task with the reason; so does
    killing the task mid-rollout. Nothing is deleted on success. Re-running with the same model
    version changes nothing; a retried task re-attaches to its rollout.

    Pushes XCom ``url``, ``revision``, ``model_name``, ``model_version``, ``changed`` and
    ``previous_model``; the execution record has them too (``where``: the InferenceService,
    namespace, revision, URL) and the smoke test's figures as metrics.

    :param model: a :class:`~airflow_mlplatform.models.ModelRef` (``ModelRef("churn",
        alias="champion")``), ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``, or a storage URI
        KServe can read (``s3://``, ``gs://``, ``pvc://``, ``https://``...); templated when a string.
    :param name: the InferenceService's name (templated).
    :param model_format: ``spec.predictor.model.modelFormat.name`` (``sklearn``, ``xgboost``...).
    :param compute: a compute profile (size, node selector, tolerations, service account, labels).
    :param compute_overrides: single profile fields to override (as the profile allows).
    :param namespace: the namespace; default the profile's, else the connection's (templated).
    :param canary_traffic_percent: the new revision's share (1..99) until it is promoted; None:
        all traffic once ready. A first deployment has no canary (nothing to split with).
    :param smoke_request: a v2 inference request (``{"inputs": [...]}``) the new revision must
        answer (HTTP 200, ``outputs``) before it takes all traffic (templated).
    :param smoke_count: how many times the smoke request is sent.
    :param canary_gate: an expression over the smoke test's figures of the new revision
        (``latency_ms``, ``errors``, ``error_rate``) and of the previous one (``prev.NAME``), e.g.
        ``latency_ms <= prev.latency_ms * 2``; needs ``smoke_request``.
    :param protocol_version: ``v2`` (open inference protocol) or ``v1``.
    :param runtime: a ServingRuntime name (needed for formats without a stock runtime).
    :param format_version: ``modelFormat.version``.
    :param min_replicas: ``minReplicas`` (0: scale to zero).
    :param max_replicas: ``maxReplicas``.
    :param storage_uri_map: storage URI prefix -> replacement, for registries whose artifacts the
        cluster reads elsewhere (``{"file:///mnt/mlflow/": "pvc://mlflow/"}``); default
        ``[mlplatform] deploy_storage_map``.
    :param startup_timeout: seconds a new revision may take to become ready.
    :param kubernetes_conn_id: the Kubernetes connection (templated).
    :param serving_conn_id: an HTTP connection for the smoke test (ingress host, Bearer token).
    :param mlflow_conn_id: the ``mlflow`` connection of a ``models:/`` URI (a ModelRef brings its own).
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param skip_without_kubernetes: skip the task (with a log line) when ``kubernetes_conn_id``
        is not configured (the quickstart's deploy step).
    """

    template_fields: Sequence[str] = (
        "model",
        "name",
        "namespace",
        "smoke_request",
        "kubernetes_conn_id",
        "serving_conn_id",
        "mlflow_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"smoke_request": "json"}
    ui_color = "#e3d7f9"

    def __init__(
        self,
        *,
        model: Any,
        name: str,
        model_format: str = "sklearn",
        compute: str | None = None,
        compute_overrides: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        canary_traffic_percent: int | None = None,
        smoke_request: Mapping[str, Any] | None = None,
        smoke_count: int = 3,
        canary_gate: str | None = None,
        protocol_version: str = "v2",
        runtime: str | None = None,
        format_version: str | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        storage_uri_map: Mapping[str, str] | None = None,
        startup_timeout: float = 600,
        kubernetes_conn_id: str = "kubernetes_default",
        serving_conn_id: str | None = None,
        mlflow_conn_id: str = "mlflow_default",
        deferrable: bool | None = None,
        skip_without_kubernetes: bool = False,
        **kwargs: Any,
    ) -> None:
        from airflow_mlplatform.compute import resolve_compute
        from airflow_mlplatform.config import default_deferrable
        from airflow_mlplatform.exceptions import DeploymentDefinitionError
        from airflow_mlplatform.models import ModelRef, parse_model_uri
        from airflow_mlplatform.models.gate import parse_gate
        from airflow_mlplatform.specs import inference as isvc

        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        if isinstance(model, ModelRef):  # kept as its URI: a templated string, resolved when the task runs
            mlflow_conn_id = model.mlflow_conn_id
            model = str(model)
        if not isinstance(model, str) or not model.strip():
            raise DeploymentDefinitionError(
                f"task {self.task_id!r}: model is {model!r}; pass ModelRef('churn', alias='champion'), "
                "'models:/churn@champion' or a storage URI"
            )
        if "{{" not in model:
            parse_model_uri(model)  # a malformed models:/ URI fails when the DAG file is parsed
        self.model = model
        self.mlflow_conn_id = mlflow_conn_id
        self.name = name
        if "{{" not in name:
            isvc.check_name(name)
        self.model_format = model_format
        self.compute = compute
        self.compute_overrides = dict(compute_overrides or {})
        resolve_compute(compute, self.compute_overrides)  # unknown profiles fail at parse time
        self.namespace = namespace
        self.canary_traffic_percent = isvc.check_canary(canary_traffic_percent)
        if not (isinstance(smoke_request, str) and "{{" in smoke_request):
            check_smoke_request(smoke_request, task_id=self.task_id)
        self.smoke_request = smoke_request
        if isinstance(smoke_count, bool) or not isinstance(smoke_count, int) or smoke_count < 1:
            raise DeploymentDefinitionError(
                f"task {self.task_id!r}: smoke_count is {smoke_count!r}; give 1 or more"
            )
        self.smoke_count = smoke_count
        if canary_gate is not None:
            if smoke_request is None or canary_traffic_percent is None:
                raise DeploymentDefinitionError(
                    f"task {self.task_id!r}: canary_gate compares the new revision's smoke test with the "
                    "previous revision's: give smoke_request and canary_traffic_percent too"
                )
            parse_gate(canary_gate, alias=GATE_ALIAS)  # a bad gate fails when the DAG file is parsed
        self.canary_gate = canary_gate
        self.protocol_version = protocol_version
        self.runtime = runtime
        self.format_version = format_version
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self._predictor("s3://check/model", None)  # every check of the predictor's own fields, at parse time
        self.storage_uri_map = dict(storage_uri_map) if storage_uri_map is not None else None
        if (
            isinstance(startup_timeout, bool)
            or not isinstance(startup_timeout, (int, float))
            or startup_timeout <= 0
        ):
            raise DeploymentDefinitionError(
                f"task {self.task_id!r}: startup_timeout is {startup_timeout!r}; give seconds, more than 0"
            )
        self.startup_timeout = startup_timeout
        self.kubernetes_conn_id = kubernetes_conn_id
        self.serving_conn_id = serving_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.skip_without_kubernetes = skip_without_kubernetes
        self._rollout: Any = None

    # ---- pieces -------------------------------------------------------------------------------
    def _predictor(self, storage_uri: str, profile: Any) -> dict[str, Any]:
        """``spec.predictor`` of this operator's fields for ``storage_uri``."""
        from airflow_mlplatform.specs import inference as isvc

        return isvc.build_predictor(
            storage_uri=storage_uri,
            model_format=self.model_format,
            profile=profile,
            canary_traffic_percent=self.canary_traffic_percent,
            protocol_version=self.protocol_version,
            runtime=self.runtime,
            format_version=self.format_version,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
        )

    def _profile(self) -> Any:
        from airflow_mlplatform.compute import resolve_compute

        return resolve_compute(self.compute, self.compute_overrides)

    def _model(self, context: Any) -> tuple[str, dict[str, Any]]:
        """The storage URI to serve and the record's ``models.used`` entry."""
        from airflow_mlplatform.config import deploy_storage_map
        from airflow_mlplatform.models import parse_model_uri
        from airflow_mlplatform.specs import inference as isvc

        ref = parse_model_uri(str(self.model), mlflow_conn_id=self.mlflow_conn_id)
        mapping = self.storage_uri_map if self.storage_uri_map is not None else deploy_storage_map()
        if ref is None:
            uri = isvc.map_storage_uri(str(self.model).strip(), mapping)
            shown = redact_uri(uri)
            return isvc.check_storage_uri(uri, what=f"model {shown}", from_registry=False), {"uri": shown}
        from airflow_mlplatform.hooks.mlflow import MLflowHook
        from airflow_mlplatform.models import registry

        version = registry.lookup(MLflowHook(ref.mlflow_conn_id), ref)
        source = registry.files_uri(version)
        uri = isvc.map_storage_uri(source, mapping)
        used = {
            "name": ref.name,
            "alias": ref.alias,
            "version": str(version.version),
            "uri": f"models:/{ref.name}/{version.version}",
        }
        return isvc.check_storage_uri(uri, what=f"model {ref.name!r} version {version.version}"), used

    def _plan(self, context: Any) -> dict[str, Any]:
        """Everything the rollout needs, decided once per try (kept across a deferral)."""
        import json

        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.exceptions import DeploymentDefinitionError
        from airflow_mlplatform.specs import inference as isvc
        from airflow_mlplatform.specs import pod as podspec

        profile = self._profile()
        storage_uri, used = self._model(context)
        model = f"{used['name']}/{used['version']}" if used.get("name") else used["uri"]
        smoke = self.smoke_request
        if isinstance(smoke, str):  # rendered from a template
            try:
                smoke = json.loads(smoke)
            except ValueError as e:
                raise DeploymentDefinitionError(
                    f"task {self.task_id!r}: smoke_request rendered to text that is not JSON ({e}): {smoke[:200]!r}"
                ) from e
            check_smoke_request(smoke, task_id=self.task_id)
        if self.serving_conn_id and not _connection_exists(self.serving_conn_id):
            raise DeploymentDefinitionError(
                f"task {self.task_id!r}: serving_conn_id {self.serving_conn_id!r} is not a configured "
                "connection; add it (an http connection: host = your ingress, password = the token) or drop it"
            )
        identity = er.task_identity(context)
        labels = {**dict(podspec.MANAGED_BY), **(dict(profile.labels) if profile is not None else {})}
        if used.get("name"):
            labels[isvc.MODEL_LABEL] = podspec.label_value(used["name"])
            labels[isvc.MODEL_VERSION_LABEL] = podspec.label_value(used["version"])
        predictor = self._predictor(storage_uri, profile)
        by = "/".join(str(identity.get(k)) for k in ("dag_id", "task_id", "run_id", "try_number"))
        return {
            "name": isvc.check_name(self.name),
            "namespace": self.namespace or (profile.namespace if profile is not None else None),
            "predictor": predictor,
            "model": model,
            "used": used,
            "labels": labels,
            "annotations": podspec.identity_annotations(identity),
            "by": by,
            "smoke_request": smoke,
            "profile": profile.name if profile is not None else None,
        }

    def _make_rollout(self, context: Any, plan: Mapping[str, Any]) -> Any:
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.models.gate import parse_gate
        from airflow_mlplatform.runners.kube_job import job_deadline
        from airflow_mlplatform.runners.rollout import Rollout

        hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        return Rollout(
            name=plan["name"],
            namespace=plan["namespace"] or hook.default_namespace(),
            predictor=plan["predictor"],
            model=plan["model"],
            by=plan["by"],
            labels=plan["labels"],
            annotations=plan["annotations"],
            kubernetes_conn_id=self.kubernetes_conn_id,
            hook=hook,
            log=self.log,
            startup_timeout=self.startup_timeout,
            deadline=job_deadline(operator=self, context=context),
            smoke_request=plan["smoke_request"],
            smoke_count=self.smoke_count,
            canary_gate=parse_gate(self.canary_gate, alias=GATE_ALIAS) if self.canary_gate else None,
            serving_conn_id=self.serving_conn_id,
        )

    # ---- execute ------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        """Roll the model version out (or defer while the new revision starts) and push the endpoint.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform.exceptions import MLPlatformError
        from airflow_mlplatform.jobs import record_failed_before_run
        from airflow_mlplatform.specs.inference import INFERENCESERVICE_KIND

        if self.skip_without_kubernetes:
            _skip_without(self.kubernetes_conn_id, self.log, "deployment")
        try:
            plan = self._plan(context)
        except MLPlatformError as e:  # nothing was created: the try's record says why it failed
            record_failed_before_run(context, e)
            raise
        rollout = self._rollout = self._make_rollout(context, plan)
        if not self.deferrable:
            return self._record(context, plan, rollout, rollout.run)
        obj = rollout.start()
        if INFERENCESERVICE_KIND.is_done(obj):  # already serving it (or failed at once): finish here
            return self._record(context, plan, rollout, lambda: rollout.finish(obj))
        self.log.info("Deferring: the triggerer waits until %s serves %s", rollout.what, plan["model"])
        self.defer(
            trigger=rollout.trigger(obj),
            method_name="execute_complete",
            kwargs={"plan": {**plan, "namespace": rollout.namespace}, "reattached": rollout.reattached},
        )
        raise AssertionError("defer() returned")  # pragma: no cover

    def execute_complete(
        self,
        context: Any,
        event: dict[str, Any],
        plan: dict[str, Any] | None = None,
        reattached: bool = False,
    ) -> dict[str, Any]:
        """Resume after the trigger fired: smoke test, gate, promote (or roll back), push the endpoint.

        :param context: the task's Airflow context.
        :param event: the trigger's event.
        :param plan: the rollout's plan (decided before the deferral). Airflow 3.3's ``dag.test()``
            resumes with the event only (it replaces the deferral's kwargs): the plan is then made
            again, the same unless the alias moved meanwhile (then the rollout reports it was replaced).
        :param reattached: an earlier try's rollout was re-attached to.
        """
        if plan is None:
            plan = self._plan(context)
            plan["namespace"] = event.get("namespace") or plan["namespace"]
        rollout = self._rollout = self._make_rollout(context, plan)
        rollout.reattached = reattached
        return self._record(context, plan, rollout, lambda: rollout.complete(event), deferred=True)

    def _record(
        self, context: Any, plan: Mapping[str, Any], rollout: Any, step: Any, *, deferred: bool = False
    ) -> dict[str, Any]:
        """Run ``step`` (the rollout or its end) through the value contract into the try's record."""
        from airflow_mlplatform import storage
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.models import section
        from airflow_mlplatform.values import JobOutputs

        if plan["used"].get("name"):
            section.note(context, "used", plan["used"])
        seen: dict[str, Any] = {}

        def ran_on() -> dict[str, Any]:
            return {
                "backend": "kubernetes",
                "kind": "InferenceService",
                "namespace": rollout.namespace,
                "inferenceservice": rollout.name,
                "reattached": rollout.reattached,
                "deferred": deferred or bool(self.deferrable),
                "api_requests": rollout.requests,
                **seen,
            }

        def job() -> JobRun:
            result = step()  # on_kill can still stop it until the task ends (a done rollout: no-op)
            seen.update(revision=result.revision, url=result.url)
            values = {
                "url": result.url,
                "revision": result.revision,
                "name": result.name,
                "namespace": result.namespace,
                "model": result.model,
                "model_name": plan["used"].get("name"),
                "model_version": int(plan["used"]["version"]) if plan["used"].get("version") else None,
                "changed": result.changed,
                "canary_traffic_percent": result.canary,
                "previous_model": result.previous_model,
                "gate": result.gate,
            }
            return JobRun(
                outputs=JobOutputs(values=values), ran_on=ran_on(), metrics=dict(result.metrics) or None
            )

        return run_recorded(
            context,
            job=job,
            folder=storage.OutputFolder(storage.task_output_location(context)),
            parameters={
                "model": plan["model"],
                "name": plan["name"],
                "model_format": self.model_format,
                "canary_traffic_percent": self.canary_traffic_percent,
                "canary_gate": self.canary_gate,
            },
            code={"operator": f"{__name__}.{type(self).__name__}"},
            environment={
                "profile": plan.get("profile"),
                "storage_uri": plan["predictor"]["model"]["storageUri"],
            },
            outputs={},
            in_worker=False,
            ran_on=ran_on,
        )

    def on_kill(self) -> None:
        """Stop the rollout: the previous predictor is restored (a first rollout is deleted)."""
        rollout = self._rollout
        if rollout is not None:
            rollout.kill()


class DeleteDeploymentOperator(LineageMixin, BaseOperator):
    """Delete a KServe InferenceService (undeploy); one that does not exist is success.

    Pushes XCom ``deleted`` (False when there was none).

    :param name: the InferenceService (templated).
    :param namespace: its namespace; default the connection's (templated).
    :param kubernetes_conn_id: the Kubernetes connection (templated).
    :param skip_without_kubernetes: skip (with a log line) when the connection is not configured.
    """

    template_fields: Sequence[str] = ("name", "namespace", "kubernetes_conn_id")
    ui_color = "#f9d7d7"

    def __init__(
        self,
        *,
        name: str,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        skip_without_kubernetes: bool = False,
        **kwargs: Any,
    ) -> None:
        from airflow_mlplatform.specs.inference import check_name

        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        if "{{" not in name:
            check_name(name)
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.skip_without_kubernetes = skip_without_kubernetes

    def execute(self, context: Any) -> dict[str, Any]:
        """Delete the InferenceService.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform import storage
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.specs import inference as isvc
        from airflow_mlplatform.values import JobOutputs

        if self.skip_without_kubernetes:
            _skip_without(self.kubernetes_conn_id, self.log, "undeployment")
        name = isvc.check_name(self.name)
        hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        namespace = self.namespace or hook.default_namespace()

        def job() -> JobRun:
            deleted = bool(hook.delete_object(isvc.RESOURCE, namespace, name))
            self.log.info(
                "%s InferenceService %s in namespace %s",
                "Deleted" if deleted else "There was no",
                name,
                namespace,
            )
            return JobRun(
                outputs=JobOutputs(values={"deleted": deleted, "name": name, "namespace": namespace}),
                ran_on={
                    "backend": "kubernetes",
                    "kind": "InferenceService",
                    "namespace": namespace,
                    "inferenceservice": name,
                },
            )

        return run_recorded(
            context,
            job=job,
            folder=storage.OutputFolder(storage.task_output_location(context)),
            parameters={"name": name},
            code={"operator": f"{__name__}.{type(self).__name__}"},
            environment={},
            outputs={},
            in_worker=False,
        )
