"""RStudioJobOperator: R scripts and R Markdown reports as Airflow tasks."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.links import OutputNotebookLink
from airflow_mlplatform.operators._pod_job import PodJobMixin, PodPlan


class RStudioJobOperator(LineageMixin, PodJobMixin, BaseOperator):
    """Run an R script (``.R``, with Rscript) or render an R Markdown report (``.Rmd``).

    Parameters reach R with their types: an R Markdown document gets them as its ``params``
    (those declared in its YAML header); a plain script sees them as the list ``params``
    (``params$C``), and as JSON in the environment variable ``MLPLATFORM_PARAMETERS``.
    Values recorded from R (``source(Sys.getenv("MLPLATFORM_R_RUNTIME")); record("rmse", 0.4)``)
    and JSON lines printed on stdout come back in the same contract as notebooks. The
    rendered report is saved beside the execution record, one folder per try.

    :param script: path of the ``.R`` or ``.Rmd`` file (templated; relative to the DAG file).
    :param parameters: local parameters (templated); DAG params are the global ones.
    :param compute: name of a compute profile; None (or a ``local`` profile) runs R in the
        worker, a ``kubernetes`` profile in a pod of the profile's image (it needs R, jsonlite
        and, for documents, rmarkdown and pandoc; not this Python package). In a pod, the
        script is read at the same path as in the worker (DAGs baked into the image or a
        shared volume) and reports go to ``[mlplatform] output_base``, which must be a
        volume the pod mounts at the same path.
    :param compute_overrides: single profile fields to override (``image``, ``gpus``, ...).
    :param kubernetes_conn_id: the Kubernetes connection, for pods (templated).
    :param deferrable: for pods, wait in the triggerer; default ``[operators] default_deferrable``.
    :param output_format: rmarkdown output format for documents (``html_document``,
        ``pdf_document``, ...); default: the document's own.
    :param include_dag_params: pass the DAG-level params to the job (default True).
    :param env: extra environment variables (templated).
    :param cwd: working folder; default: the script's folder.
    :param rscript: the Rscript executable.
    :param ship: in a pod, where the script comes from: ``file`` (default: copied to the pod
        through the try's output folder), ``folder`` (its whole folder, at most ``[mlplatform]
        ship_max_bytes``) or ``image`` (in the image at the same path as in the worker).
    """

    template_fields: Sequence[str] = (
        "script",
        "parameters",
        "env",
        "cwd",
        "output_format",
        "kubernetes_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json", "env": "json"}
    operator_extra_links = (OutputNotebookLink(),)
    ui_color = "#c6dbef"

    def __init__(
        self,
        *,
        script: str,
        parameters: Mapping[str, Any] | None = None,
        compute: str | None = None,
        compute_overrides: Mapping[str, Any] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        deferrable: bool | None = None,
        output_format: str = "default",
        include_dag_params: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        rscript: str = "Rscript",
        ship: str = "file",
        **kwargs: Any,
    ) -> None:
        from airflow_mlplatform.job_files import check_mode

        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.script = script
        self.parameters = parameters
        self._store_compute(
            compute=compute,
            compute_overrides=compute_overrides,
            kubernetes_conn_id=kubernetes_conn_id,
            deferrable=deferrable,
        )
        self.output_format = output_format
        self.include_dag_params = include_dag_params
        self.env = env
        self.cwd = cwd
        self.rscript = rscript
        self.ship = check_mode(ship)

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the R job in the worker and push values, metrics and the execution record.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.runners.r_job import RJobRunner, RJobSpec, prepare, r_version
        from airflow_mlplatform.runtime import OUTPUT_URI_ENV

        profile = self._profile()
        if profile is not None and profile.is_kubernetes:
            return self._execute_in_pod(context, profile)
        script, parameters, folder = self._job_inputs(context, self.script)
        spec = prepare(
            RJobSpec(
                script=script,
                output_dir=str(folder.path),
                parameters=parameters,
                output_format=self.output_format,
                env={
                    OUTPUT_URI_ENV: folder.location,
                    **{str(k): str(v) for k, v in (self.env or {}).items()},
                },
                cwd=self.cwd,
                rscript=self.rscript,
            )
        )
        self.log.info("Running R %s %s", "document" if spec.is_document else "script", script)
        self._runner = RJobRunner(spec)
        report: dict[str, str] = {}

        def job() -> JobRun:
            try:
                result = self._runner.run()
            finally:
                self._runner = None
            if result.report:
                report["report"] = folder.uri(os.path.relpath(result.report, folder.path))
            return JobRun(outputs=result.outputs, environment={"r_version": r_version(self.rscript)})

        return run_recorded(
            context,
            job=job,
            folder=folder,
            parameters=spec.parameters,
            code={"script": script, "sha256": er.file_sha256(script), "git_commit": er.git_commit(script)},
            environment={"language": "R", "rscript": self.rscript},
            outputs=report,
        )

    def _pod_plan(self, context: Any, profile: Any) -> PodPlan:
        """The R job as a pod job; the script and parameters are checked here first."""
        import dataclasses
        import json

        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.exceptions import ConfigurationError
        from airflow_mlplatform.job_files import ShipPlan
        from airflow_mlplatform.runners.r_job import RJobSpec, inline_env, prepare, r_command
        from airflow_mlplatform.runtime import OUTPUT_DIR_ENV, OUTPUT_URI_ENV

        script, parameters, folder = self._job_inputs(context, self.script)
        if not storage.is_local(folder.location):
            raise ConfigurationError(
                f"R jobs in pods write their report and files to [mlplatform] output_base, which is "
                f"{folder.location!r}: R cannot upload to object storage. Set output_base to a path "
                "on a volume mounted at the same path in the worker and in the profile's pods "
                "(profile fields volumes / volume_mounts), or run the job in the worker"
            )
        spec = prepare(
            RJobSpec(
                script=script,
                output_dir=str(folder.path),
                parameters=parameters,
                output_format=self.output_format,
                rscript=self.rscript,
            ),
            check_rscript=False,
        )
        provider_env = {
            **inline_env(),
            "MLPLATFORM_PARAMETERS": json.dumps(spec.parameters),
            OUTPUT_DIR_ENV: str(folder.path),
            OUTPUT_URI_ENV: folder.location,
        }
        name = Path(script).with_suffix(".html").name if spec.is_document else None
        ship = ShipPlan(source=script, location=folder.location, mode=self.ship)
        return PodPlan(
            command=r_command(dataclasses.replace(spec, script=ship.target), inline=True),
            env={str(k): str(v) for k, v in (self.env or {}).items()},
            provider_env=provider_env,
            folder=folder,
            parameters=spec.parameters,
            code={
                "script": script,
                "sha256": er.file_sha256(script),
                "git_commit": er.git_commit(script),
                "shipped": self.ship,
            },
            outputs={"report": folder.uri(name)}
            if name and self.output_format in ("default", "html_document")
            else {},
            environment={"language": "R"},
            ship=ship,
        )

    def on_kill(self) -> None:
        """Kill R and everything it started, or delete its pod."""
        from airflow_mlplatform.operators.notebook import KILLED

        self._stop(KILLED)
