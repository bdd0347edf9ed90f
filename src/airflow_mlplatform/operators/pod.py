"""Run any command in a pod picked by compute profile, with the provider's value contract.

The job receives its parameters (DAG params overlaid with ``parameters``) as JSON in the
environment variable ``MLPLATFORM_PARAMETERS``; whatever it prints with ``record(name, value)``
and as JSON metric lines comes back as XComs, like every operator of this provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_mlplatform.compute import ComputeProfile, resolve_compute
from airflow_mlplatform.exceptions import ConfigurationError

PARAMETERS_ENV = "MLPLATFORM_PARAMETERS"


def _default_deferrable() -> bool:
    from airflow.sdk import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


class MLPlatformPodOperator(BaseOperator):
    """Run ``command`` in a Kubernetes pod built from the compute profile ``compute``.

    :param command: the container's command (templated), e.g. ``["python", "-c", "..."]``.
    :param compute: name of a compute profile with backend kubernetes (checked at parse time).
    :param compute_overrides: single profile fields to override (``image``, ``gpus``...).
    :param parameters: job parameters (templated); sent as JSON in ``MLPLATFORM_PARAMETERS``.
    :param include_dag_params: whether DAG-level params are passed too (operator ones win).
    :param env: extra environment variables (templated).
    :param args: the container's args (templated).
    :param kubernetes_conn_id: the Kubernetes connection (templated).
    :param namespace: overrides the profile's namespace.
    :param delete_policy: after a normal end: ``always``, ``on_success`` or ``never``.
    :param startup_timeout: seconds the pod may stay Pending.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = (
        "command",
        "args",
        "parameters",
        "env",
        "kubernetes_conn_id",
        "namespace",
    )
    template_fields_renderers = {"parameters": "json", "env": "json"}
    ui_color = "#d5e8f7"

    def __init__(
        self,
        *,
        command: Sequence[str],
        compute: str | ComputeProfile,
        compute_overrides: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        include_dag_params: bool = True,
        env: Mapping[str, Any] | None = None,
        args: Sequence[str] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        namespace: str | None = None,
        delete_policy: str = "always",
        startup_timeout: float = 600,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.compute = compute
        self.compute_overrides = dict(compute_overrides or {})
        self.parameters = parameters
        self.include_dag_params = include_dag_params
        self.env = env
        self.args = args
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.delete_policy = delete_policy
        self.startup_timeout = startup_timeout
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        # Cheap (cached file): an unknown profile or a bad override fails when the DAG is parsed.
        profile = resolve_compute(compute, self.compute_overrides)
        if profile is None or not profile.is_kubernetes:
            raise ConfigurationError(
                f"{type(self).__name__} {self.task_id!r}: compute {compute!r} is not a kubernetes profile; "
                "name a profile with backend: kubernetes"
            )
        self._runner: Any = None

    def _make_runner(self, context: Any) -> Any:
        from airflow_mlplatform.parameters import merge_parameters
        from airflow_mlplatform.runners.pod import PodJobRunner

        profile = resolve_compute(self.compute, self.compute_overrides)
        assert profile is not None
        self._parameters = merge_parameters(
            context, self.parameters, include_dag_params=self.include_dag_params
        )
        env = {str(k): str(v) for k, v in (self.env or {}).items()}
        env[PARAMETERS_ENV] = json.dumps(self._parameters)
        self._profile = profile
        return PodJobRunner(
            profile=profile,
            command=list(self.command),
            args=list(self.args or []),
            env=env,
            kubernetes_conn_id=self.kubernetes_conn_id,
            namespace=self.namespace,
            delete_policy=self.delete_policy,
            startup_timeout=self.startup_timeout,
            log=self.log,
        )

    def execute(self, context: Any) -> Any:
        from airflow_mlplatform.execution_record import utcnow

        self._started = utcnow()
        self._runner = self._make_runner(context)
        if self.deferrable:
            self._runner.defer(self, context, method_name="execute_complete")
        try:
            result = self._runner.run(context)
        finally:
            runner, self._runner = self._runner, None
        return self._finish(context, result, runner)

    def execute_complete(self, context: Any, event: dict[str, Any], reattached: bool = False) -> Any:
        """Resume after the trigger: read the log, clean up, push the outputs.

        :param context: the task's Airflow context.
        :param event: the trigger's event.
        :param reattached: whether the pod was adopted from an earlier try.
        """
        from airflow_mlplatform.execution_record import utcnow

        self._started = utcnow()
        runner = self._make_runner(context)
        result = runner.complete(context, event)
        result.reattached = reattached
        return self._finish(context, result, runner)

    def _finish(self, context: Any, result: Any, runner: Any) -> Any:
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.values import push_outputs

        folder = storage.OutputFolder(storage.task_output_location(context))
        record = er.build_record(
            task=er.task_identity(context),
            code={"command": [str(c) for c in self.command], "args": [str(a) for a in self.args or []]},
            environment={"image": self._profile.image, "profile": self._profile.name},
            parameters=self._parameters,
            values=result.outputs.values,
            metric_rows=result.outputs.metric_rows,
            metrics=result.outputs.metrics,
            outputs={"record": folder.uri(er.RECORD_FILE)},
            started=self._started,
            ended=er.utcnow(),
            ran_on={
                "backend": "kubernetes",
                "namespace": result.namespace,
                "pod": result.pod_name,
                "reattached": result.reattached,
                "exit_code": result.exit_code,
            },
            status="success" if result.succeeded else "failed",
        )
        (folder.path / er.RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        folder.publish()
        folder.cleanup()
        if not result.succeeded:
            context["ti"].xcom_push(key="execution_record", value=record)
        result.raise_for_status()
        return push_outputs(
            context, values=result.outputs.values, metrics=result.outputs.metrics, execution_record=record
        )

    def on_kill(self) -> None:
        """Delete the pod (sync mode; in deferrable mode the trigger's on_kill does it)."""
        runner = self._runner
        if runner is not None:
            runner.kill()
