"""Run a parameterized notebook with papermill, in this process, with a kernel we own.

Used by NotebookOperator in the worker, and inside a pod by ``python -m
airflow_mlplatform.runners.notebook_job``. Owning the kernel manager lets us start the
kernel with the job's environment and working folder, kill it on ``on_kill``, and shut it
down on every exit path (success, cell error, dead kernel, timeout).

Everything that can be wrong with the input (missing file, not a notebook, unknown
kernel, parameters that are not JSON) is checked by :func:`prepare` before any kernel
starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import (
    InvalidNotebookError,
    KernelDiedError,
    KernelNotFoundError,
    NotebookExecutionError,
    NotebookNotFoundError,
)
from airflow_mlplatform.parameters import check_json
from airflow_mlplatform.values import JobOutputs, StreamParser

log = logging.getLogger(__name__)

#: Mimetypes under which scrapbook's ``glue`` stores scraps in a notebook's outputs.
SCRAP_MIMETYPES = ("application/scrapbook.scrap.json+json", "application/scrapbook.scrap.text+json")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (tracebacks from IPython carry them).

    :param text: text with ANSI escape sequences.
    """
    return _ANSI.sub("", text)


@dataclass
class NotebookSpec:
    """What to run.

    :param notebook: path of the input notebook.
    :param output_path: local path where the executed notebook is written.
    :param parameters: values injected into the notebook.
    :param kernel_name: kernel to use; default: the notebook's kernelspec.
    :param cwd: working folder of the kernel; default: the notebook's folder.
    :param cell_timeout: seconds a single cell may run (None: no limit).
    :param start_timeout: seconds the kernel may take to start.
    :param env: extra environment variables for the kernel.
    :param language: language for the parameters cell, if the notebook does not say.
    """

    notebook: str
    output_path: str
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel_name: str | None = None
    cwd: str | None = None
    cell_timeout: float | None = None
    start_timeout: float = 60
    env: dict[str, str] = field(default_factory=dict)
    language: str | None = None


@dataclass
class PreparedNotebook:
    """A checked notebook, ready to run."""

    spec: NotebookSpec
    nb: Any
    kernel_name: str
    language: str
    has_parameters_cell: bool
    kernel_argv: list[str]


@dataclass
class NotebookResult:
    """What a run produced: values, metrics, the executed notebook and kernel facts."""

    outputs: JobOutputs
    nb: Any
    kernel_name: str
    language_info: dict[str, Any]
    duration_s: float


_SCALA_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def scala_string(text: str) -> str:
    """A Scala string literal (expression) for ``text``.

    papermill's own Scala translator writes Python's ``\\xNN``/``\\UNNNNNNNN`` escapes for
    non-ASCII characters, which Scala rejects; Scala 2.12 reads ``\\uNNNN`` anywhere in the
    source (even inside a literal), so other control characters are concatenated as ``.toChar``.

    :param text: the string.
    """
    parts, current = [], []
    for char in text:
        if char in _SCALA_ESCAPES:
            current.append(_SCALA_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            parts.append('"' + "".join(current) + '"')
            parts.append(f"{ord(char)}.toChar.toString")
            current = []
        else:
            current.append(char)
    parts.append('"' + "".join(current) + '"')
    return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"


def _register_scala_translator() -> None:
    """Make papermill write Scala parameters with :func:`scala_string` (once per process)."""
    from papermill.translators import ScalaTranslator, papermill_translators

    if getattr(papermill_translators.find_translator("", "scala"), "escapes_unicode", False):
        return

    class _ScalaTranslator(ScalaTranslator):
        escapes_unicode = True

        @classmethod
        def translate_str(cls, val: Any) -> str:
            return scala_string(str(val))

    papermill_translators.register("scala", _ScalaTranslator)


def installed_kernels() -> dict[str, str]:
    """Names of the installed Jupyter kernels and their folders."""
    from jupyter_client.kernelspec import KernelSpecManager

    return dict(KernelSpecManager().find_kernel_specs())


def _kernel_spec(name: str) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel as e:
        kernels = ", ".join(sorted(installed_kernels())) or "none"
        raise KernelNotFoundError(
            f"no Jupyter kernel named {name!r} is installed; installed kernels: {kernels}. "
            "Pass kernel_name= one of them, or install the kernel in the worker image "
            "(for R: the IRkernel package, then IRkernel::installspec(user = FALSE); for Scala: the "
            "provider's 'spark' extra, then `jupyter toree install --sys-prefix --spark_home=...`, see "
            "docs/spark.md)"
        ) from e


def load_notebook(path: str) -> Any:
    """Read and validate an ipynb file.

    :param path: the notebook's path.
    :raises NotebookNotFoundError: the path does not exist.
    :raises InvalidNotebookError: the file is not a valid notebook.
    """
    import nbformat

    p = Path(path)
    if not p.is_file():
        raise NotebookNotFoundError(
            f"notebook {path!r} does not exist (working directory {os.getcwd()!r}); give an absolute "
            "path or one relative to the DAG file's folder"
        )
    try:
        nb = nbformat.read(str(p), as_version=4)
        nbformat.validate(nb)
    except (ValueError, KeyError, TypeError, nbformat.ValidationError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidNotebookError(
            f"{path!r} is not a valid Jupyter notebook (nbformat 4): {first}. Open and save it in "
            "Jupyter, or check that the file is an .ipynb JSON document"
        ) from e
    return nb


def prepare(spec: NotebookSpec, *, check_kernel: bool = True) -> PreparedNotebook:
    """Check everything about ``spec`` that can be checked without a kernel.

    :param spec: what to run.
    :param check_kernel: look the kernel up here (False when it runs in another image).
    """
    nb = load_notebook(spec.notebook)
    check_json(spec.parameters)
    meta = nb.metadata
    kernel_name = spec.kernel_name or meta.get("kernelspec", {}).get("name")
    language = (
        spec.language
        or meta.get("kernelspec", {}).get("language")
        or meta.get("language_info", {}).get("name")
    )
    if not kernel_name:
        kernel_name = "ir" if (language or "").lower() == "r" else "python3"
    argv: list[str] = []
    if check_kernel:
        kspec = _kernel_spec(kernel_name)
        language, argv = kspec.language or language, list(kspec.argv)
    language = language or "python"
    has_params = any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)
    return PreparedNotebook(
        spec=spec,
        nb=nb,
        kernel_name=kernel_name,
        language=language,
        has_parameters_cell=has_params,
        kernel_argv=argv,
    )


class _StdoutSink:
    """File-like object papermill writes every stdout chunk of every cell to."""

    def __init__(self, parser: StreamParser, echo: Callable[[str], Any] | None) -> None:
        self.parser = parser
        self.echo = echo

    def write(self, text: str) -> int:
        self.parser.feed(text)
        if self.echo is not None:
            self.echo(text)
        return len(text)

    def flush(self) -> None:
        pass


def read_scraps(nb: Any) -> dict[str, Any]:
    """Values glued with scrapbook (``sb.glue(name, value)``) in an executed notebook.

    :param nb: the executed notebook.
    """
    scraps: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for mime in SCRAP_MIMETYPES:
                if mime in data:
                    item = data[mime]
                    if isinstance(item, str):
                        item = json.loads(item)
                    if isinstance(item, dict) and item.get("name"):
                        scraps[item["name"]] = item.get("data")
    return scraps


class NotebookRunner:
    """Runs one prepared notebook; ``kill()`` may be called from a signal handler.

    :param prepared: the result of :func:`prepare`.
    :param echo_stdout: called with every chunk of the cells' stdout (None: not echoed).
    """

    def __init__(
        self, prepared: PreparedNotebook, *, echo_stdout: Callable[[str], Any] | None = None
    ) -> None:
        self.prepared = prepared
        self.echo_stdout = echo_stdout
        self._km: Any = None
        self._current: tuple[int | None, str | None] = (None, None)

    def _on_cell_execute(self, cell: Any, cell_index: int) -> None:
        """nbclient hook: remember which cell runs, to name it if the kernel dies."""
        self._current = (cell_index, cell.get("source", ""))

    def _start_kernel(self) -> Any:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        spec = self.prepared.spec
        km = AsyncKernelManager(kernel_name=self.prepared.kernel_name)
        env = {**os.environ, **spec.env}
        env.pop("PYDEVD_USE_FRAME_EVAL", None)
        self._km = km
        run_sync(km.start_kernel)(env=env, cwd=spec.cwd or str(Path(spec.notebook).resolve().parent))
        return km

    def _shutdown_kernel(self) -> None:
        km, self._km = self._km, None
        if km is None:
            return
        from jupyter_core.utils import run_sync

        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # the kernel may already be gone; make sure of it
            self._kill_process(km)

    @staticmethod
    def _kill_process(km: Any) -> None:
        provisioner = getattr(km, "provisioner", None)
        pid = getattr(getattr(provisioner, "process", None), "pid", None)
        if pid:
            # kernels run in their own session: kill the whole process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)

    def kill(self) -> None:
        """Kill the kernel now (safe to call from a signal handler or another thread)."""
        if self._km is not None:
            log.warning("Killing the notebook's kernel")
            self._kill_process(self._km)

    def run(self) -> NotebookResult:
        """Execute the notebook; the executed notebook is saved even when a cell fails.

        :raises NotebookExecutionError: a cell raised; the message has its index, source
            and traceback.
        :raises KernelDiedError: the kernel process died.
        """
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        prepared, spec = self.prepared, self.prepared.spec
        if spec.parameters and not prepared.has_parameters_cell:
            log.info(
                "Notebook %s has no cell tagged 'parameters': papermill injects the parameters "
                "in a new cell at the top",
                spec.notebook,
            )
        if prepared.language.lower() == "scala":
            _register_scala_translator()
        parser = StreamParser()
        sink = _StdoutSink(parser, self.echo_stdout)
        Path(spec.output_path).parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        km = self._start_kernel()
        nb = None
        try:
            nb = pm.execute_notebook(
                prepared.nb,
                spec.output_path,
                parameters=spec.parameters,
                kernel_name=prepared.kernel_name,
                language=prepared.language,
                progress_bar=False,
                log_output=True,
                stdout_file=sink,
                start_timeout=int(spec.start_timeout),
                execution_timeout=spec.cell_timeout,
                km=km,
                on_cell_execute=self._on_cell_execute,
            )
        except PapermillExecutionError as e:
            raise self._cell_error(e) from None
        except Exception as e:
            self._raise_if_dead(e)
            raise
        finally:
            self._shutdown_kernel()
        outputs = JobOutputs(values=read_scraps(nb))
        outputs.merge(parser.close())
        return NotebookResult(
            outputs=outputs,
            nb=nb,
            kernel_name=prepared.kernel_name,
            language_info=dict(nb.metadata.get("language_info", {})),
            duration_s=time.monotonic() - started,
        )

    def _cell_error(self, e: Any) -> NotebookExecutionError:
        traceback = strip_ansi("\n".join(e.traceback or []))
        message = (
            f"cell {e.cell_index} (In [{e.exec_count}]) of {self.prepared.spec.notebook} raised "
            f"{e.ename}: {e.evalue}\n--- cell source ---\n{e.source}\n--- traceback ---\n{traceback}\n"
            f"The executed notebook, with the error, is at {self.prepared.spec.output_path}"
        )
        return NotebookExecutionError(
            message, cell_index=e.cell_index, source=e.source, output_uri=self.prepared.spec.output_path
        )

    def _raise_if_dead(self, e: Exception) -> None:
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        if not isinstance(e, (DeadKernelError, CellTimeoutError)):
            return
        index, source = self._current
        where = f"cell {index} of {self.prepared.spec.notebook}" if index is not None else "the notebook"
        if isinstance(e, CellTimeoutError):
            raise NotebookExecutionError(
                f"{where} ran longer than cell_timeout={self.prepared.spec.cell_timeout}s and was "
                f"stopped\n--- cell source ---\n{source}\nThe executed notebook is at "
                f"{self.prepared.spec.output_path}",
                cell_index=index,
                source=source,
                output_uri=self.prepared.spec.output_path,
            ) from e
        raise KernelDiedError(
            f"the kernel died while running {where} (it exited, crashed or was killed, e.g. out of "
            f"memory)\n--- cell source ---\n{source}\nThe executed notebook is at "
            f"{self.prepared.spec.output_path}",
            cell_index=index,
            source=source,
            output_uri=self.prepared.spec.output_path,
        ) from e


def run_notebook(spec: NotebookSpec, *, echo_stdout: Callable[[str], Any] | None = None) -> NotebookResult:
    """Prepare and run ``spec`` (convenience for scripts and the in-pod entrypoint).

    :param spec: what to run.
    :param echo_stdout: called with every chunk of the cells' stdout.
    """
    return NotebookRunner(prepare(spec), echo_stdout=echo_stdout).run()


def spec_from_mapping(data: Mapping[str, Any]) -> NotebookSpec:
    """Build a NotebookSpec from its JSON form (used by the in-pod entrypoint).

    :param data: the spec's fields.
    """
    return NotebookSpec(**dict(data))
