"""The one map from a workflow step ``type`` to the operator that runs it.

Each entry says which class builds the task (as an import path, imported only when a DAG is
built), how each type-specific field of the step maps onto an operator keyword, which
fields are files to check, which are templated (so they may hold references to other
steps' outputs), and which hold only strings (references there are rendered as Jinja).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Field:
    """One type-specific field of a step.

    :param kwarg: the operator keyword it maps to.
    :param kind: ``str``, ``int``, ``number``, ``bool``, ``list``, ``dict``, ``command``
        (a string or a list of strings), ``callable`` (``module:function``), ``path`` (a file
        relative to the workflow file, checked), ``dir`` (a folder, likewise), ``any``.
    :param required: the step must set it.
    :param templated: the operator renders it, so references may appear in it.
    :param strings: references inside it are rendered as Jinja strings (e.g. env vars).
    :param choices: allowed values, if limited.
    :param description: one line for the docs and the JSON Schema.
    """

    kwarg: str
    kind: str = "str"
    required: bool = False
    templated: bool = False
    strings: bool = False
    choices: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class StepType:
    """A step type of the workflow format.

    :param name: the ``type`` written in the workflow file.
    :param operator: ``module:Class`` of the operator.
    :param fields: type-specific field name -> :class:`Field` (``parameters`` included).
    :param compute: the operator takes a ``compute`` profile name.
    :param named_outputs: the operator pushes each recorded value under its own XCom key.
    :param one_of: groups of fields of which exactly one must be set.
    :param fixed: keywords always passed (e.g. ``append_env=True``).
    :param outputs_flag: keyword set to True when the step declares outputs (``multiple_outputs``).
    :param compute_overrides: ``compute`` may also be ``{profile: NAME, FIELD: VALUE...}``.
    :param cwd_default: without ``cwd``, run in the workflow file's folder (so relative paths in a
        command mean the same as everywhere else in the workflow).
    :param description: one line for the docs.
    """

    name: str
    operator: str
    fields: dict[str, Field] = field(default_factory=dict)
    compute: bool = False
    named_outputs: bool = True
    one_of: tuple[tuple[str, ...], ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    outputs_flag: str | None = None
    cwd_default: bool = False
    compute_overrides: bool = False
    description: str = ""

    @property
    def module(self) -> str:
        """The operator's module."""
        return self.operator.partition(":")[0]

    @property
    def class_name(self) -> str:
        """The operator's class name."""
        return self.operator.partition(":")[2]

    def available(self) -> bool:
        """Whether the operator's module can be imported here (without importing it)."""
        return _module_available(self.module)

    def load(self) -> type:
        """Import and return the operator class."""
        return getattr(importlib.import_module(self.module), self.class_name)


@functools.cache
def _module_available(module: str) -> bool:
    """Whether ``module`` can be imported (asked once per process: a validation of a 200-step
    workflow would otherwise search sys.path 200 times)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_PARAMS = Field("parameters", "dict", templated=True, description="local parameters; they win over globals")
_ENV = Field("env", "dict", templated=True, strings=True, description="extra environment variables")
_CWD = Field("cwd", "dir", templated=True, description="working folder (relative to the workflow file)")
_GLOBALS = Field("include_dag_params", "bool", description="pass the global parameters too (default true)")
_ARGS = Field("op_args", "list", templated=True, description="positional arguments")
_KWARGS = Field("op_kwargs", "dict", templated=True, description="keyword arguments")
_CALLABLE = Field("python_callable", "callable", description="module:function")
_K8S_CONN = Field("kubernetes_conn_id", templated=True, description="Kubernetes connection (pods)")
_DEFERRABLE = Field("deferrable", "bool", description="wait in the triggerer (pods)")

NOTEBOOK = StepType(
    "notebook",
    "airflow_mlplatform.operators.notebook:NotebookOperator",
    {
        "notebook": Field("notebook", "path", required=True, templated=True, description="the .ipynb file"),
        "parameters": _PARAMS,
        "output_notebook": Field("output_notebook", templated=True, description="where to save the result"),
        "kernel_name": Field("kernel_name", description="Jupyter kernel name"),
        "cell_timeout": Field("cell_timeout", "number", description="seconds one cell may run"),
        "include_dag_params": _GLOBALS,
        "env": _ENV,
        "cwd": _CWD,
        "kubernetes_conn_id": _K8S_CONN,
        "deferrable": _DEFERRABLE,
    },
    compute=True,
    compute_overrides=True,
    description="a Jupyter notebook run with papermill",
)
R = StepType(
    "r",
    "airflow_mlplatform.operators.rstudio:RStudioJobOperator",
    {
        "script": Field("script", "path", required=True, templated=True, description="an .R or .Rmd file"),
        "parameters": _PARAMS,
        "output_format": Field("output_format", templated=True, description="rmarkdown output format"),
        "include_dag_params": _GLOBALS,
        "env": _ENV,
        "cwd": _CWD,
        "kubernetes_conn_id": _K8S_CONN,
        "deferrable": _DEFERRABLE,
    },
    compute=True,
    compute_overrides=True,
    description="an R script (Rscript) or R Markdown document",
)
TFJOB = StepType(
    "tfjob",
    "airflow_mlplatform.operators.tfjob:TFJobOperator",
    {
        "command": Field("command", "command", required=True, templated=True, description="training command"),
        "image": Field("image", templated=True, description="container image (kubeflow)"),
        "replicas": Field("replicas", "dict", description="replica type -> count or {count, compute}"),
        "parameters": _PARAMS,
        "backend": Field("backend", choices=("kubeflow", "local"), description="where the replicas run"),
        "include_dag_params": _GLOBALS,
        "env": _ENV,
        "cwd": _CWD,
        "namespace": Field("namespace", templated=True, description="Kubernetes namespace"),
        "kubernetes_conn_id": Field(
            "kubernetes_conn_id", templated=True, description="Kubernetes connection"
        ),
        "clean_pod_policy": Field(
            "clean_pod_policy", choices=("All", "Running", "None"), description="runPolicy"
        ),
        "ttl_seconds_after_finished": Field("ttl_seconds_after_finished", "int", description="runPolicy"),
        "active_deadline_seconds": Field("active_deadline_seconds", "int", description="runPolicy"),
        "backoff_limit": Field("backoff_limit", "int", description="runPolicy"),
        "job_timeout": Field("job_timeout", "number", description="seconds local replicas may run"),
    },
    compute=True,
    cwd_default=True,
    description="TensorFlow training, distributed or single-node",
)
RAPIDS = StepType(
    "rapids",
    "airflow_mlplatform.operators.rapids:RapidsDaskOperator",
    {
        "callable": _CALLABLE,
        "script": Field("script", "path", templated=True, description="a Python script"),
        "args": _ARGS,
        "kwargs": _KWARGS,
        "parameters": _PARAMS,
        "cluster": Field("cluster", choices=("local", "address", "kubernetes"), description="which cluster"),
        "n_workers": Field("n_workers", "int", description="workers of a local cluster"),
        "threads_per_worker": Field("threads_per_worker", "int", description="threads per local worker"),
        "dask_conn_id": Field("dask_conn_id", templated=True, description="Airflow connection of type dask"),
        "address": Field("address", templated=True, description="scheduler address tcp://host:8786"),
        "include_dag_params": _GLOBALS,
        "env": _ENV,
        "cwd": _CWD,
    },
    compute=True,
    one_of=(("callable", "script"),),
    description="a Python callable or script on a Dask (RAPIDS) cluster",
)
VALOHAI = StepType(
    "valohai",
    "airflow_mlplatform.operators.valohai:ValohaiSubmitExecutionOperator",
    {
        "project": Field("project", templated=True, description="name or id (default: the connection's)"),
        "step": Field("step", required=True, templated=True, description="step of the valohai.yaml"),
        "commit": Field("commit", templated=True, description="commit or ref"),
        "inputs": Field("inputs", "dict", templated=True, description="input name -> URL(s) or datum://"),
        "parameters": _PARAMS,
        "environment": Field("environment", templated=True, description="environment slug or id"),
        "image": Field("image", templated=True, description="Docker image"),
        "environment_variables": Field(
            "environment_variables", "dict", templated=True, strings=True, description="environment variables"
        ),
        "tags": Field("tags", "list", templated=True, description="execution tags"),
        "title": Field("title", templated=True, description="execution title"),
        "time_limit": Field("time_limit", "int", templated=True, description="seconds"),
        "valohai_conn_id": Field("valohai_conn_id", templated=True, description="Airflow connection"),
        "deferrable": Field("deferrable", "bool", description="wait in the triggerer"),
        "fetch_repository": Field("fetch_repository", "bool", description="refresh the repository first"),
        "valohai_yaml": Field(
            "valohai_yaml", "path", templated=True, description="valohai.yaml to check against"
        ),
        "include_dag_params": _GLOBALS,
        "poll_interval": Field("poll_interval", "number", description="first poll interval, seconds"),
        "max_poll_interval": Field(
            "max_poll_interval", "number", description="longest poll interval, seconds"
        ),
    },
    description="an execution on Valohai",
)
SPARK = StepType(
    "spark",
    "airflow_mlplatform.operators.spark:SparkApplicationOperator",
    {
        "application": Field(
            "application",
            "path",
            required=True,
            templated=True,
            description="main file: .py, .R or .jar (a path here, or a local:// or other URI in the image)",
        ),
        "application_type": Field(
            "application_type",
            choices=("Python", "Scala", "Java", "R"),
            description="default: from the extension",
        ),
        "main_class": Field("main_class", templated=True, description="main class of a Scala or Java jar"),
        "arguments": Field("arguments", "list", templated=True, description="the application's arguments"),
        "parameters": _PARAMS,
        "executor_compute": Field("executor_compute", description="compute profile of the executors"),
        "executors": Field("executors", "int", description="number of executors (Kubernetes)"),
        "spark_conf": Field(
            "spark_conf",
            "dict",
            templated=True,
            strings=True,
            description="Spark properties (win over the profile's)",
        ),
        "include_dag_params": _GLOBALS,
        "env": _ENV,
        "namespace": Field("namespace", templated=True, description="Kubernetes namespace"),
        "kubernetes_conn_id": _K8S_CONN,
        "deferrable": _DEFERRABLE,
        "ttl_seconds": Field("ttl_seconds", "int", description="timeToLiveSeconds of the finished object"),
        "cwd": _CWD,
    },
    compute=True,
    compute_overrides=True,
    description="a Spark application: a SparkApplication on Kubernetes, or spark-submit in the worker",
)
DEPLOY = StepType(
    "deploy",
    "airflow_mlplatform.operators.deploy:DeployModelOperator",
    {
        "model": Field(
            "model",
            "any",
            required=True,
            templated=True,
            description="models:/NAME@ALIAS, models:/NAME/VERSION, ${{ models.NAME@ALIAS }} or a storage URI",
        ),
        "name": Field("name", required=True, templated=True, description="the InferenceService's name"),
        "model_format": Field("model_format", description="sklearn, xgboost, lightgbm, tensorflow, onnx..."),
        "canary_traffic_percent": Field(
            "canary_traffic_percent", "int", description="the new revision's share (1-99) until promoted"
        ),
        "smoke_request": Field(
            "smoke_request",
            "dict",
            templated=True,
            description="a v2 inference request the new revision must answer",
        ),
        "smoke_count": Field("smoke_count", "int", description="how many times the smoke request is sent"),
        "canary_gate": Field(
            "canary_gate", description="e.g. latency_ms <= prev.latency_ms * 2 (the smoke test's figures)"
        ),
        "protocol_version": Field("protocol_version", choices=("v2", "v1"), description="inference protocol"),
        "runtime": Field("runtime", description="ServingRuntime name (formats without a stock runtime)"),
        "min_replicas": Field("min_replicas", "int", description="minReplicas (0: scale to zero)"),
        "max_replicas": Field("max_replicas", "int", description="maxReplicas"),
        "startup_timeout": Field("startup_timeout", "number", description="seconds a new revision may take"),
        "namespace": Field("namespace", templated=True, description="Kubernetes namespace"),
        "kubernetes_conn_id": _K8S_CONN,
        "serving_conn_id": Field(
            "serving_conn_id", templated=True, description="HTTP connection for the smoke test"
        ),
        "deferrable": _DEFERRABLE,
        "skip_without_kubernetes": Field(
            "skip_without_kubernetes", "bool", description="skip when no Kubernetes connection is configured"
        ),
    },
    compute=True,
    compute_overrides=True,
    description="deploy a model version to KServe (canary, smoke test, rollback on failure)",
)
BASH = StepType(
    "bash",
    "airflow.providers.standard.operators.bash:BashOperator",
    {
        "command": Field("bash_command", required=True, templated=True, description="shell command"),
        "parameters": Field("env", "dict", templated=True, strings=True, description="environment variables"),
        "cwd": _CWD,
    },
    named_outputs=False,
    fixed={"append_env": True},
    description="a shell command (its last stdout line is return_value)",
)
PYTHON = StepType(
    "python",
    "airflow.providers.standard.operators.python:PythonOperator",
    {"callable": replace(_CALLABLE, required=True), "args": _ARGS, "parameters": _KWARGS},
    outputs_flag="multiple_outputs",
    description="a Python function in the worker (a returned dict's keys are its outputs)",
)

STEP_TYPES: dict[str, StepType] = {
    t.name: t for t in (NOTEBOOK, R, TFJOB, RAPIDS, SPARK, DEPLOY, VALOHAI, BASH, PYTHON)
}

COMMON_FIELDS: dict[str, str] = {
    "id": "step id, unique in the workflow (also the task id)",
    "type": "step type: " + ", ".join(STEP_TYPES),
    "description": "shown as the task's documentation",
    "depends_on": "step ids that must finish first (besides those inferred from references)",
    "outputs": "names of the values the step records (referenced as steps.ID.outputs.NAME)",
    "group": "task group id",
    "compute": "compute profile name (notebook, r, tfjob, rapids, spark, deploy); notebook, r, spark and deploy also take "
    "{profile: NAME, FIELD: VALUE...} to override single fields",
    "retries": "number of retries",
    "retry_delay": "seconds (or 30s, 5m, 1h) between retries",
    "timeout": "execution timeout: seconds (or 30s, 5m, 1h)",
    "trigger_rule": "Airflow trigger rule (default all_success)",
}


def load_callable(path: str) -> Any:
    """Import ``module:function`` (or ``module.function``) and return the function.

    :param path: the import path written in the workflow.
    """
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ImportError(f"{path!r} is not of the form module:function")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ImportError(f"{path!r} is not callable")
    return obj
