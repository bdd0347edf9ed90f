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
from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.operators._pod_job import PodJobMixin, PodPlan, default_deferrable

PARAMETERS_ENV = "MLPLATFORM_PARAMETERS"


class MLPlatformPodOperator(LineageMixin, PodJobMixin, BaseOperator):
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
        kwargs.setdefault("multiple_outputs", True)
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
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        # Cheap (cached file): an unknown profile or a bad override fails when the DAG is parsed.
        profile = resolve_compute(compute, self.compute_overrides)
        if profile is None or not profile.is_kubernetes:
            raise ConfigurationError(
                f"{type(self).__name__} {self.task_id!r}: compute {compute!r} is not a kubernetes profile; "
                "name a profile with backend: kubernetes"
            )
        self._runner: Any = None

    def _pod_plan(self, context: Any, profile: Any) -> PodPlan:
        """The command as a pod job; parameters go in ``MLPLATFORM_PARAMETERS``."""
        from airflow_mlplatform import storage
        from airflow_mlplatform.parameters import merge_parameters

        parameters = merge_parameters(context, self.parameters, include_dag_params=self.include_dag_params)
        return PodPlan(
            command=[str(c) for c in self.command],
            args=[str(a) for a in self.args or []],
            env={str(k): str(v) for k, v in (self.env or {}).items()},
            provider_env={PARAMETERS_ENV: json.dumps(parameters)},
            folder=storage.OutputFolder(storage.task_output_location(context)),
            parameters=parameters,
            code={"command": [str(c) for c in self.command], "args": [str(a) for a in self.args or []]},
            namespace=self.namespace,
            delete_policy=self.delete_policy,
            startup_timeout=self.startup_timeout,
        )

    def execute(self, context: Any) -> Any:
        """Run the command in a pod (or defer to the triggerer) and push the outputs.

        :param context: the task's Airflow context.
        """
        return self._execute_in_pod(context, self._profile())

    def on_kill(self) -> None:
        """Delete the pod (sync mode; in deferrable mode the trigger's on_kill does it)."""
        runner = self._runner
        if runner is not None:
            runner.kill()
