"""NotebookOperator: run a parameterized Jupyter notebook (papermill) as an Airflow task."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.links import OutputNotebookLink


class NotebookOperator(BaseOperator):
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
    :param output_notebook: where the executed notebook goes (templated; path or
        ObjectStoragePath URI); default: ``{output_base}/{dag}/{run}/{task}/try-{n}/{name}.ipynb``.
    :param kernel_name: Jupyter kernel (``python3``, ``ir``, ...); default: the notebook's own.
    :param compute: name of a compute profile; None runs the notebook in the worker.
    :param cell_timeout: seconds one cell may run before the task fails (None: no limit).
    :param start_timeout: seconds the kernel may take to start.
    :param include_dag_params: pass the DAG-level params to the notebook (default True).
    :param env: extra environment variables for the kernel (templated).
    :param cwd: working folder of the kernel; default: the notebook's folder.
    """

    template_fields: Sequence[str] = ("notebook", "parameters", "output_notebook", "env", "cwd")
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
        cell_timeout: float | None = None,
        start_timeout: float = 60,
        include_dag_params: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.notebook = notebook
        self.parameters = parameters
        self.output_notebook = output_notebook
        self.kernel_name = kernel_name
        self.compute = compute
        self.cell_timeout = cell_timeout
        self.start_timeout = start_timeout
        self.include_dag_params = include_dag_params
        self.env = env
        self.cwd = cwd
        self._runner: Any = None

    def _resolve_path(self, path: str) -> str:
        """Relative notebook paths are relative to the DAG file's folder."""
        if os.path.isabs(path) or "://" in path:
            return path
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        base = Path(fileloc).parent if fileloc else Path.cwd()
        return str((base / path).resolve())

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the notebook in the worker and push values, metrics and the execution record.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.parameters import merge_parameters
        from airflow_mlplatform.runners.notebook import NotebookRunner, NotebookSpec, prepare
        from airflow_mlplatform.runtime import OUTPUT_DIR_ENV
        from airflow_mlplatform.values import push_outputs

        notebook = self._resolve_path(self.notebook)
        parameters = merge_parameters(context, self.parameters, include_dag_params=self.include_dag_params)
        folder = storage.OutputFolder(storage.task_output_location(context))
        name = Path(notebook).name
        local_output = str(folder.path / name)
        output_uri = self.output_notebook or folder.uri(name)
        env = {
            OUTPUT_DIR_ENV: str(folder.path),
            "MLPLATFORM_R_RUNTIME": str(Path(er.__file__).parent / "runtime" / "mlplatform.R"),
            **{str(k): str(v) for k, v in (self.env or {}).items()},
        }
        spec = NotebookSpec(
            notebook=notebook,
            output_path=local_output,
            parameters=parameters,
            kernel_name=self.kernel_name,
            cwd=self.cwd,
            cell_timeout=self.cell_timeout,
            start_timeout=self.start_timeout,
            env=env,
        )
        prepared = prepare(spec)  # every input check, before any kernel starts
        self.log.info(
            "Running notebook %s with kernel %s; output notebook: %s",
            notebook,
            prepared.kernel_name,
            output_uri,
        )
        self._runner = NotebookRunner(prepared)
        started = er.utcnow()
        result, error = None, None
        try:
            result = self._runner.run()
        except BaseException as e:  # AirflowTaskTimeout is a BaseException
            error = e
            raise
        finally:
            self._runner = None
            ended = er.utcnow()
            outputs = result.outputs if result is not None else None
            record = er.build_record(
                task=er.task_identity(context),
                code={
                    "notebook": notebook,
                    "sha256": er.file_sha256(notebook),
                    "git_commit": er.git_commit(notebook),
                },
                environment={
                    **er.python_environment(),
                    "kernel": prepared.kernel_name,
                    "kernel_argv0": prepared.kernel_argv[0] if prepared.kernel_argv else None,
                    "language": prepared.language,
                    "language_info": result.language_info if result is not None else {},
                },
                parameters=parameters,
                values=outputs.values if outputs else {},
                metric_rows=outputs.metric_rows if outputs else [],
                metrics=outputs.metrics if outputs else {},
                outputs={"notebook": output_uri, "record": folder.uri(er.RECORD_FILE)},
                started=started,
                ended=ended,
                ran_on=er.where(),
                status="success" if error is None else "failed",
                error=None if error is None else (str(error).splitlines() or [type(error).__name__])[0],
            )
            self._store(folder, record, local_output, output_uri)
            self.log.info("Output notebook: %s", output_uri)
            self.log.info("Execution record: %s", folder.uri(er.RECORD_FILE))
            if error is not None:
                context["ti"].xcom_push(key="execution_record", value=record)
        assert result is not None
        return push_outputs(
            context, values=result.outputs.values, metrics=result.outputs.metrics, execution_record=record
        )

    @staticmethod
    def _store(folder: Any, record: dict[str, Any], local_output: str, output_uri: str) -> None:
        """Write the record beside the notebook and publish both (copies for remote targets)."""
        import json

        from airflow_mlplatform.execution_record import RECORD_FILE

        (folder.path / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        folder.publish()
        if output_uri != folder.uri(Path(local_output).name) and Path(local_output).exists():
            from airflow.sdk import ObjectStoragePath

            target = ObjectStoragePath(
                output_uri if "://" in output_uri else f"file://{os.path.abspath(output_uri)}"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(local_output).read_bytes())
        folder.cleanup()

    def on_kill(self) -> None:
        """Kill the notebook's kernel (its whole process group)."""
        runner = self._runner
        if runner is not None:
            runner.kill()
