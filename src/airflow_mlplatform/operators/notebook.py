"""NotebookOperator: run a parameterized Jupyter notebook (papermill) as an Airflow task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.links import OutputNotebookLink
from airflow_mlplatform.operators._pod_job import PodJobMixin, PodPlan

#: why on_kill stops a notebook: Airflow calls it on SIGTERM from the supervisor
KILLED = (
    "the task was killed: Airflow asked it to stop (SIGTERM; a user marked it failed or "
    "success, or its run was stopped or cleared)"
)


class NotebookOperator(LineageMixin, PodJobMixin, BaseOperator):
    """Run a Jupyter notebook with papermill and push what it recorded.

    DAG-level params are the global parameters; ``parameters`` are local and win. Values the
    notebook records with ``airflow_mlplatform.runtime.record(name, value)`` (or scrapbook's
    ``glue``) become the XCom ``return_value`` (a dict) and one XCom per name, so
    ``op.output["name"]`` hands the next task the value with its type. JSON-object lines
    printed on stdout are metrics (XCom ``metrics``: last value per key). The execution
    record (XCom ``execution_record``) and the executed notebook are kept under
    ``[mlplatform] output_base``, one folder per dag/run/task/try.

    :param notebook: path of the input notebook (templated); relative paths are taken from
        the DAG file's folder.
    :param parameters: local parameters (templated; Jinja and XComArg values work).
    :param output_notebook: where the executed notebook goes (path or ObjectStoragePath URI);
        templated with Jinja (``{{ run_id }}``), then, as papermill does, ``{name}`` placeholders
        are filled from the parameters (``{pm[run_uuid]}`` too); default:
        ``{output_base}/{dag}/{run}/{task}/try-{n}/{name}.ipynb``.
    :param kernel_name: Jupyter kernel (``python3``, ``ir``, ``apache_toree_scala``, ...);
        default: the notebook's own.
    :param compute: name of a compute profile; None (or a ``local`` profile) runs the notebook
        in the worker, a ``kubernetes`` profile in a pod (``python -m
        airflow_mlplatform.runners.notebook_job`` in the profile's image). Unknown names fail
        when the DAG file is parsed.
        A profile's ``spark: {master, conf}`` gives the notebook's Spark session (pyspark or
        Toree) its master and configuration.
    :param compute_overrides: single profile fields to override (``image``, ``gpus``, ...).
    :param kubernetes_conn_id: the Kubernetes connection, for pods (templated).
    :param deferrable: for pods, wait in the triggerer; default ``[operators] default_deferrable``.
    :param cell_timeout: seconds one cell may run; then it is interrupted (the saved notebook
        shows the interrupt in that cell) and the task fails as stopped (None: no limit).
    :param start_timeout: seconds the kernel may take to start.
    :param include_dag_params: pass the DAG-level params to the notebook (default True). All
        of them are injected, declared in the notebook's parameters cell or not (a notebook
        reads the ones it needs); only a local parameter the parameters cell does not assign
        is logged, as a likely typo.
    :param language: language of the parameters cell, for notebooks without kernel metadata
        (papermill's ``language``).
    :param report_mode: hide the code cells' inputs in the executed notebook (papermill's
        ``report_mode``).
    :param prepare_only: inject the parameters and save the notebook without running it
        (papermill's ``prepare_only``); nothing is recorded.
    :param progress_bar: papermill's progress bar (default False: it is written to stderr,
        which Airflow logs at ERROR level; the log has papermill's cell progress lines anyway).
    :param env: extra environment variables for the kernel (templated).
    :param cwd: working folder of the kernel; default: the notebook's folder.
    :param ship: in a pod, where the notebook comes from: ``file`` (default: copied to the pod
        through the try's output folder), ``folder`` (its whole folder, at most ``[mlplatform]
        ship_max_bytes``) or ``image`` (in the image at the same path as in the worker).
    """

    template_fields: Sequence[str] = (
        "notebook",
        "parameters",
        "output_notebook",
        "env",
        "cwd",
        "kubernetes_conn_id",
    )
    template_ext: Sequence[str] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json", "env": "json"}
    operator_extra_links = (OutputNotebookLink(),)
    ui_color = "#f9e0c7"

    def __init__(
        self,
        *,
        notebook: str,
        parameters: Mapping[str, Any] | None = None,
        output_notebook: str | None = None,
        kernel_name: str | None = None,
        compute: str | None = None,
        compute_overrides: Mapping[str, Any] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        deferrable: bool | None = None,
        cell_timeout: float | None = None,
        start_timeout: float = 60,
        include_dag_params: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        language: str | None = None,
        report_mode: bool = False,
        prepare_only: bool = False,
        progress_bar: bool = False,
        ship: str = "file",
        **kwargs: Any,
    ) -> None:
        from airflow_mlplatform.job_files import check_mode

        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.notebook = notebook
        self.parameters = parameters
        self.output_notebook = output_notebook
        self.kernel_name = kernel_name
        self._store_compute(
            compute=compute,
            compute_overrides=compute_overrides,
            kubernetes_conn_id=kubernetes_conn_id,
            deferrable=deferrable,
        )
        self.cell_timeout = cell_timeout
        self.start_timeout = start_timeout
        self.include_dag_params = include_dag_params
        self.env = env
        self.cwd = cwd
        self.language = language
        self.report_mode = report_mode
        self.prepare_only = prepare_only
        self.progress_bar = progress_bar
        self.ship = check_mode(ship)

    def _papermill_options(self, context: Any, parameters: dict[str, Any]) -> dict[str, Any]:
        """Spec fields shared by the worker and the pod: papermill's options, the names of the
        DAG-level parameters, and the output notebook's ``{param}`` placeholders filled in."""
        from airflow_mlplatform.parameters import dag_params
        from airflow_mlplatform.runners.notebook import format_output_path

        local = set(self.parameters or {})
        dag_level = set(dag_params(context)) if self.include_dag_params else set()
        return {
            "language": self.language,
            "report_mode": self.report_mode,
            "prepare_only": self.prepare_only,
            "progress_bar": self.progress_bar,
            "global_parameters": sorted(dag_level - local),
            "output_notebook": format_output_path(self.output_notebook, parameters)
            if self.output_notebook
            else None,
        }

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the notebook in the worker and push values, metrics and the execution record.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.runners.notebook import NotebookRunner, NotebookSpec, prepare
        from airflow_mlplatform.runtime import (
            OUTPUT_DIR_ENV,
            OUTPUT_URI_ENV,
            R_RUNTIME_ENV,
            SCALA_RUNTIME_ENV,
            r_runtime_path,
            scala_runtime_path,
        )
        from airflow_mlplatform.spark_settings import spark_env

        profile = self._profile()
        if profile is not None and profile.is_kubernetes:
            return self._execute_in_pod(context, profile)
        notebook, parameters, folder = self._job_inputs(context, self.notebook)
        options = self._papermill_options(context, parameters)
        name = Path(notebook).name
        local_output = str(folder.path / name)
        output_uri = options.pop("output_notebook") or folder.uri(name)
        spec = NotebookSpec(
            notebook=notebook,
            output_path=local_output,
            parameters=parameters,
            kernel_name=self.kernel_name,
            cwd=self.cwd,
            cell_timeout=self.cell_timeout,
            start_timeout=self.start_timeout,
            env={
                **spark_env(profile.spark if profile else None, in_worker=True),
                OUTPUT_DIR_ENV: str(folder.path),
                OUTPUT_URI_ENV: folder.location,
                R_RUNTIME_ENV: r_runtime_path(),
                SCALA_RUNTIME_ENV: scala_runtime_path(),
                **{str(k): str(v) for k, v in (self.env or {}).items()},
            },
            output_uri=output_uri,
            **options,
        )
        prepared = prepare(spec)  # every input check, before any kernel starts
        self.log.info(
            "Running notebook %s with kernel %s; output notebook: %s",
            notebook,
            prepared.kernel_name,
            output_uri,
        )
        self._runner = NotebookRunner(prepared)

        def job() -> JobRun:
            try:
                result = self._runner.run()
            finally:
                self._runner = None
            return JobRun(outputs=result.outputs, environment={"language_info": result.language_info})

        def copy_notebook() -> None:
            if output_uri != folder.uri(name) and Path(local_output).exists():
                storage.copy_file(local_output, output_uri)

        return run_recorded(
            context,
            job=job,
            folder=folder,
            parameters=parameters,
            code={
                "notebook": notebook,
                "sha256": er.file_sha256(notebook),
                "git_commit": er.git_commit(notebook),
            },
            environment={
                "kernel": prepared.kernel_name,
                "kernel_argv0": prepared.kernel_argv[0] if prepared.kernel_argv else None,
                "language": prepared.language,
            },
            outputs={"notebook": output_uri},
            after_store=copy_notebook,
        )

    def _pod_plan(self, context: Any, profile: Any) -> PodPlan:
        """The notebook as a pod job; the notebook and parameters are checked here first."""
        import json

        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.job_files import ShipPlan
        from airflow_mlplatform.runners.notebook import NotebookSpec, prepare
        from airflow_mlplatform.runners.notebook_job import SPEC_ENV
        from airflow_mlplatform.spark_settings import spark_env

        notebook, parameters, folder = self._job_inputs(context, self.notebook)
        options = self._papermill_options(context, parameters)
        output_notebook = options.pop("output_notebook")
        ship = ShipPlan(source=notebook, location=folder.location, mode=self.ship)
        name = Path(notebook).name
        # the kernel lives in the image: check everything else before a pod exists
        prepared = prepare(
            NotebookSpec(
                notebook=notebook,
                output_path=name,
                parameters=parameters,
                kernel_name=self.kernel_name,
                language=self.language,
            ),
            check_kernel=False,
        )
        spec = {
            **options,
            "notebook": ship.target,
            "job_dir": ship.job_dir,
            "output_location": folder.location,
            "output_uri": output_notebook,
            "parameters": parameters,
            "kernel_name": prepared.kernel_name,
            "cell_timeout": self.cell_timeout,
            "start_timeout": self.start_timeout,
            "cwd": self.cwd,
            "env": {str(k): str(v) for k, v in (self.env or {}).items()},
        }
        return PodPlan(
            command=["python", "-m", "airflow_mlplatform.runners.notebook_job"],
            env={**spark_env(profile.spark, in_worker=False), "PYTHONUNBUFFERED": "1"},
            provider_env={SPEC_ENV: json.dumps(spec)},
            folder=folder,
            parameters=parameters,
            code={
                "notebook": notebook,
                "sha256": er.file_sha256(notebook),
                "git_commit": er.git_commit(notebook),
                "shipped": self.ship,
            },
            outputs={"notebook": output_notebook or folder.uri(name)},
            environment={"kernel": prepared.kernel_name, "language": prepared.language},
            ship=ship,
        )

    def on_kill(self) -> None:
        """Kill the notebook's kernel (its whole process group), or delete its pod."""
        self._stop(KILLED)
