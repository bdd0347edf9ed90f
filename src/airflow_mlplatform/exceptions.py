"""One root error for the provider; every kind of bad input has its own subclass.

Each message names the problem and the fix. Errors raised for bad input are raised
before any kernel, pod or remote execution is started.
"""

from __future__ import annotations


class MLPlatformError(Exception):
    """Root of every error this provider raises on purpose."""


class ConfigurationError(MLPlatformError):
    """The provider's configuration (``[mlplatform]`` section, profiles file) is wrong."""


class ParameterError(MLPlatformError, TypeError):
    """A parameter cannot be passed to the job (for example, it is not JSON-serializable)."""


class RecordError(MLPlatformError, ValueError):
    """A recorded value or its name breaks the value contract."""


class NoRecordsError(MLPlatformError, LookupError):
    """No stored execution record matches what was asked for (``mlplatform runs compare``)."""


class NotebookError(MLPlatformError):
    """Base for problems with a notebook given to NotebookOperator."""


class NotebookNotFoundError(NotebookError, FileNotFoundError):
    """The notebook path does not exist."""


class InvalidNotebookError(NotebookError, ValueError):
    """The file exists but is not a valid Jupyter notebook."""


class KernelNotFoundError(NotebookError, LookupError):
    """No installed Jupyter kernel has the requested name."""


class NotebookExecutionError(NotebookError):
    """A cell raised an error; the message holds the cell's number, its source and the traceback.

    :param cell_index: the cell's 0-based position in the executed notebook (injected cell included).
    :param cell_number: the number papermill logs for it ("Executing Cell N"): ``cell_index + 1``.
    """

    def __init__(
        self,
        message: str,
        *,
        cell_index: int | None = None,
        source: str | None = None,
        output_uri: str | None = None,
    ) -> None:
        super().__init__(message)
        self.cell_index = cell_index
        self.cell_number = None if cell_index is None else cell_index + 1
        self.source = source
        self.output_uri = output_uri


class KernelDiedError(NotebookExecutionError):
    """The kernel process died (for example it called ``os._exit`` or was OOM-killed)."""


class JobFailedError(MLPlatformError):
    """A job (script, pod, custom resource, remote execution) finished unsuccessfully."""


class JobStoppedError(JobFailedError):
    """The job did not fail on its own: it was stopped (task killed, a timeout); the message
    starts with ``stopped:`` and says by what. Its execution record has ``status: killed``."""


class NotebookStoppedError(NotebookExecutionError, JobStoppedError):
    """A notebook run was stopped: the task was killed, or a cell ran past ``cell_timeout``."""


class JobKilledError(JobStoppedError):
    """The task was killed (``on_kill``) while its job's object was being created; what was created is deleted."""


class ScriptNotFoundError(MLPlatformError, FileNotFoundError):
    """A script file given to an operator does not exist."""


class ComputeProfileError(ConfigurationError):
    """Base for problems with compute profiles (the profiles file or a profile's fields)."""


class UnknownComputeProfileError(ComputeProfileError, LookupError):
    """``compute=`` names a profile the profiles file does not define; the message lists the known ones."""


class InvalidQuantityError(ComputeProfileError, ValueError):
    """A cpu/memory/GPU amount is not a Kubernetes quantity (``"2Gi"``, ``"500m"``, ``4``)."""


class ProfilesFileError(ComputeProfileError):
    """The compute profiles file is missing, not YAML, or has a malformed field (file and field named)."""


class ComputeOverrideError(ComputeProfileError, PermissionError):
    """A DAG author overrides a profile field the profile does not let them change, or beyond its bounds."""


class KubernetesError(MLPlatformError):
    """Base for errors talking to the Kubernetes API."""


class KubernetesApiError(KubernetesError):
    """The API refused a request (400/403/404/409/422...), or retries ran out; the object is named."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubernetesNotFoundError(KubernetesApiError, LookupError):
    """The named object does not exist (any more)."""


class KubernetesConflictError(KubernetesApiError):
    """The object already exists (409 AlreadyExists) or was changed concurrently."""


class KubernetesResourceTypeNotFoundError(KubernetesApiError):
    """A whole resource type is unknown to the cluster (for example a CRD that is not installed)."""


class KubernetesTimeoutError(KubernetesError, TimeoutError):
    """A wait on a Kubernetes object passed its deadline; the message says what to check."""


class KubernetesLogError(KubernetesError):
    """A job's log could not be read (whole): its values and metrics are unknown, so the task fails."""


class KubernetesCleanupError(KubernetesError):
    """A job ended badly and its object could not be deleted: it may still run; the message names it."""


class WorkflowError(MLPlatformError, ValueError):
    """One problem in a workflow file, with where it is (file, 1-based line and column).

    :param message: what is wrong and what was expected.
    :param file: the workflow file (or ``<string>``).
    :param line: 1-based line, or None when the problem has no single place.
    :param column: 1-based column, or None.
    """

    def __init__(
        self, message: str, *, file: str = "<string>", line: int | None = None, column: int | None = None
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(self.location() + ": " + message)

    def location(self) -> str:
        """``file:line:column`` (as far as known)."""
        parts = [self.file] + [str(n) for n in (self.line, self.column) if n is not None]
        return ":".join(parts)


class WorkflowValidationError(WorkflowError):
    """A workflow file has one or more problems; ``errors`` holds every one of them."""

    def __init__(self, errors: list[WorkflowError]) -> None:
        first = errors[0]
        self.errors = list(errors)
        super().__init__(first.message, file=first.file, line=first.line, column=first.column)
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return str(self.args[0])


class JobDefinitionError(MLPlatformError, ValueError):
    """A job is defined wrongly: no command, both or neither of ``python_callable``/``script``..."""


class ReplicaSpecError(JobDefinitionError):
    """``replicas`` of a distributed training job is wrong (unknown type, count < 1, PS without Workers)."""


class DaskSchedulerUnreachableError(MLPlatformError, ConnectionError):
    """No Dask scheduler answered at the given address; the message names the address and what to check."""


class ValohaiError(MLPlatformError):
    """Base for problems talking to Valohai's REST API."""


class ValohaiAPIError(ValohaiError):
    """Valohai answered an error (after retries, for 429/5xx); ``status_code`` tells which."""

    def __init__(self, message: str, *, status_code: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class ValohaiAuthError(ValohaiAPIError, PermissionError):
    """401/403: the API token in the ``valohai`` connection's password field is wrong or lacks access."""


class ValohaiNotFoundError(ValohaiAPIError, LookupError):
    """404, or a project/execution name that matches nothing."""


class ValohaiRequestError(ValohaiAPIError, ValueError):
    """400: Valohai rejected the request (unknown step, bad input, missing commit, ...)."""


class ValohaiConnectionError(ValohaiError, ConnectionError):
    """Valohai could not be reached (after retries): check the connection's host and the network."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or "no answer"


class ValohaiStepError(ValohaiError, ValueError):
    """The step, a parameter or an input is not declared in the repository's valohai.yaml."""


class ValohaiExecutionFailedError(JobFailedError):
    """A Valohai execution ended ``error``, ``crashed`` or ``stopped``, or timed out."""


class DesignerError(MLPlatformError):
    """A request to the workflow designer or the output viewer cannot be served."""


class DesignerPathError(DesignerError, ValueError):
    """A path outside the configured roots, or a file name that is not allowed."""


class DesignerNotFoundError(DesignerError, LookupError):
    """A workflow file, catalog file or output that does not exist."""


class DesignerReadOnlyError(DesignerError, PermissionError):
    """The workflows folder cannot be written (e.g. a git DAG bundle)."""


class DesignerConflictError(DesignerError):
    """The file changed since it was opened (ETag mismatch), or exists when creating it."""


class ModelRegistryError(MLPlatformError):
    """Base for problems with the model registry (MLflow) or a model reference."""


class ModelNotFoundError(ModelRegistryError, LookupError):
    """A registered model, one of its versions, or an alias does not exist."""


class ModelArtifactError(ModelRegistryError, ValueError):
    """The artifact given to RegisterModelOperator cannot be read or uploaded."""


class ModelGateError(ModelRegistryError, ValueError):
    """A promotion gate expression is malformed, or names a metric that is not there."""


class MLflowUnavailableError(ModelRegistryError, ConnectionError):
    """The MLflow tracking server or database cannot be reached, or mlflow-skinny is not installed."""


class TrackingError(MLflowUnavailableError):
    """Logging a task's run to MLflow failed (with ``[mlplatform] tracking_required = True``)."""


class DeploymentError(MLPlatformError):
    """A model deployment (KServe InferenceService) could not be rolled out."""


class DeploymentDefinitionError(DeploymentError, ValueError):
    """A deployment's definition is wrong (format, storage URI, canary share): nothing was created."""


class DeploymentFailedError(DeploymentError, JobFailedError):
    """A rollout failed (model failed to load, not ready in time, smoke test or gate failed) and
    was rolled back to the previous revision."""
