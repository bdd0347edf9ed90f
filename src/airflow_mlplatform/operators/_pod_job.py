"""Shared by operators whose job can run in the worker or, by compute profile, in a pod.

An operator using :class:`PodJobMixin` builds a :class:`PodPlan` (command, environment and
what to record) from its context; the mixin runs it with the PodJobRunner, in the worker
process or deferred to the triggerer, and records it with the value contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.config import default_deferrable
from airflow_mlplatform.parameters import FiniteRenderedParameters

__all__ = ["PodJobMixin", "PodPlan", "default_deferrable"]


@dataclass
class PodPlan:
    """What to run in the pod and what to record about it.

    :param command: the container's command.
    :param env: the container's environment (job spec, parameters...).
    :param folder: the try's output folder (the record goes there).
    :param parameters: the job's parameters, for the record.
    :param code: what ran, for the record.
    :param outputs: URIs of the job's files, for the record.
    :param environment: extra environment facts, for the record.
    :param args: the container's args.
    :param namespace: overrides the profile's namespace.
    :param delete_policy: after a normal end: ``always``, ``on_success`` or ``never``.
    :param startup_timeout: seconds the pod may stay Pending.
    :param provider_env: the provider's own variables (``MLPLATFORM_*``): they win over ``env``
        and the profile's env (the one environment rule of every job kind).
    :param ship: how the job's file gets to the pod (a ``job_files.ShipPlan``), or None.
    """

    command: list[str]
    env: dict[str, str]
    folder: Any
    parameters: dict[str, Any]
    code: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    namespace: str | None = None
    delete_policy: str = "always"
    startup_timeout: float = 600
    provider_env: dict[str, str] = field(default_factory=dict)
    ship: Any = None


class PodJobMixin(FiniteRenderedParameters):
    """Run a :class:`PodPlan` in a pod of the operator's compute profile.

    The operator provides ``compute``, ``compute_overrides``, ``kubernetes_conn_id``,
    ``deferrable``, ``_runner`` and ``_pod_plan(context, profile)``; operators whose job is
    a file (notebook, script) also use :meth:`_job_inputs`.
    """

    compute: Any
    compute_overrides: Mapping[str, Any] | None
    kubernetes_conn_id: str
    deferrable: bool
    _runner: Any
    log: Any

    def _pod_plan(self, context: Any, profile: Any) -> PodPlan:
        raise NotImplementedError

    def _store_compute(
        self,
        *,
        compute: Any,
        compute_overrides: Mapping[str, Any] | None,
        kubernetes_conn_id: str,
        deferrable: bool | None,
    ) -> None:
        """Store the compute arguments and check the profile (unknown names fail at parse time).

        :param compute: a compute profile name, or None for the worker.
        :param compute_overrides: single profile fields to override.
        :param kubernetes_conn_id: the Kubernetes connection, for pods.
        :param deferrable: wait for pods in the triggerer; None: ``[operators] default_deferrable``.
        """
        self.compute = compute
        self.compute_overrides = dict(compute_overrides or {})
        self.kubernetes_conn_id = kubernetes_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._runner = None
        self._profile()

    def _dag_relative(self, path: str) -> str:
        """``path`` itself if absolute (or a URI), else relative to the DAG file's folder."""
        import os
        from pathlib import Path

        if os.path.isabs(path) or "://" in path:
            return path
        operator: Any = self
        fileloc = getattr(operator.dag, "fileloc", None) if operator.has_dag() else None
        base = Path(fileloc).parent if fileloc else Path.cwd()
        return str((base / path).resolve())

    def _job_inputs(self, context: Any, path: str) -> tuple[str, dict[str, Any], Any]:
        """The job file's path, the merged parameters and this try's output folder.

        :param context: the task's Airflow context.
        :param path: the (rendered) notebook or script path.
        """
        from airflow_mlplatform import storage
        from airflow_mlplatform.parameters import merge_parameters

        operator: Any = self
        parameters = merge_parameters(
            context, operator.parameters, include_dag_params=operator.include_dag_params
        )
        folder = storage.OutputFolder(storage.task_output_location(context))
        return self._dag_relative(path), parameters, folder

    def _profile(self) -> Any:
        """The compute profile (None: run in the worker); unknown names fail at parse time."""
        from airflow_mlplatform.compute import resolve_compute

        return resolve_compute(self.compute, dict(self.compute_overrides or {}))

    def _pod_runner(self, profile: Any, plan: PodPlan) -> Any:
        from airflow_mlplatform.runners.pod import PodJobRunner

        return PodJobRunner(
            profile=profile,
            command=plan.command,
            args=plan.args,
            env=plan.env,
            provider_env=plan.provider_env,
            kubernetes_conn_id=self.kubernetes_conn_id,
            namespace=plan.namespace,
            delete_policy=plan.delete_policy,
            startup_timeout=plan.startup_timeout,
            log=self.log,
        )

    def _execute_in_pod(self, context: Any, profile: Any) -> dict[str, Any]:
        plan = self._pod_plan(context, profile)
        if plan.ship is not None and plan.ship.mode != "image":  # before the pod exists
            shipped = plan.ship.copy()
            self.log.info(
                "shipped %s to the pod: %d file(s), %d bytes, in %s",
                plan.ship.source,
                shipped["files"],
                shipped["bytes"],
                shipped["to"],
            )
        runner = self._pod_runner(profile, plan)
        if self.deferrable:
            runner.defer(self, context, method_name="execute_complete")
        self._runner = runner
        try:
            return self._record_pod(context, profile, plan, lambda: runner.run(context, self))
        finally:
            self._runner = None

    def execute_complete(
        self, context: Any, event: dict[str, Any], reattached: bool = False
    ) -> dict[str, Any]:
        """Resume after the trigger: read the pod's log once, clean up, push the outputs.

        :param context: the task's Airflow context.
        :param event: the trigger's event.
        :param reattached: whether the pod was adopted from an earlier try.
        """
        profile = self._profile()
        plan = self._pod_plan(context, profile)
        runner = self._pod_runner(profile, plan)

        return self._record_pod(
            context, profile, plan, lambda: runner.complete(context, event, reattached=reattached)
        )

    def _record_pod(
        self, context: Any, profile: Any, plan: PodPlan, fetch: Callable[[], Any]
    ) -> dict[str, Any]:
        from airflow_mlplatform.jobs import JobRun, run_recorded

        def job() -> JobRun:
            result = fetch()
            result.raise_for_status()
            return JobRun(
                outputs=result.outputs,
                ran_on={
                    "backend": "kubernetes",
                    "namespace": result.namespace,
                    "pod": result.pod_name,
                    "reattached": result.reattached,
                    "exit_code": result.exit_code,
                },
            )

        return run_recorded(
            context,
            job=job,
            folder=plan.folder,
            parameters=plan.parameters,
            code=plan.code,
            environment={"image": profile.image, "profile": profile.name, **plan.environment},
            outputs=plan.outputs,
            in_worker=False,
        )
