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


class NotebookError(MLPlatformError):
    """Base for problems with a notebook given to NotebookOperator."""


class NotebookNotFoundError(NotebookError, FileNotFoundError):
    """The notebook path does not exist."""


class InvalidNotebookError(NotebookError, ValueError):
    """The file exists but is not a valid Jupyter notebook."""


class KernelNotFoundError(NotebookError, LookupError):
    """No installed Jupyter kernel has the requested name."""


class NotebookExecutionError(NotebookError):
    """A cell raised an error; the message holds the cell index, its source and the traceback."""

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
        self.source = source
        self.output_uri = output_uri


class KernelDiedError(NotebookExecutionError):
    """The kernel process died (for example it called ``os._exit`` or was OOM-killed)."""


class JobFailedError(MLPlatformError):
    """A job (script, pod, custom resource, remote execution) finished unsuccessfully."""


class ScriptNotFoundError(MLPlatformError, FileNotFoundError):
    """A script file given to an operator does not exist."""
