"""Run a parameterized notebook with papermill, in this process, with a kernel we own.

Used by NotebookOperator in the worker, and inside a pod by ``python -m
airflow_mlplatform.runners.notebook_job``. Owning the kernel (runners/kernel.py) lets us
start it with the job's environment and working folder, kill it on ``on_kill``, and shut it
down on every exit path (success, cell error, dead kernel, timeout).

papermill gets the notebook's path, so the executed notebook's ``metadata.papermill`` is
what papermill writes for the same input (``input_path`` the path; ``output_path`` the output
notebook's URI). Cells are numbered as papermill logs them ("Executing Cell N", 1-based, the
injected-parameters cell included) in every message. How a run ended is said as it was:
a cell error, the task stopped (killed, ``execution_timeout``, ``cell_timeout``: a
:class:`NotebookStoppedError`, message ``stopped: ...``), or the kernel dying on its own
(:class:`KernelDiedError`, with its exit status or signal).

Everything that can be wrong with the input (missing file, not a notebook, unknown
kernel, parameters that are not JSON) is checked by :func:`prepare` before any kernel
starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import (
    KernelDiedError,
    KernelNotFoundError,
    NotebookExecutionError,
    NotebookStoppedError,
    ParameterError,
)
from airflow_mlplatform.parameters import check_json
from airflow_mlplatform.runners.kernel import OwnedKernel, describe_exit, kernel_name_for
from airflow_mlplatform.runners.notebook_load import load_notebook
from airflow_mlplatform.values import JobOutputs, StreamParser

__all__ = ["NotebookRunner", "NotebookSpec", "load_notebook", "prepare", "run_notebook"]

log = logging.getLogger(__name__)

#: Mimetypes under which scrapbook's ``glue`` stores scraps in a notebook's outputs.
SCRAP_MIMETYPES = ("application/scrapbook.scrap.json+json", "application/scrapbook.scrap.text+json")
INJECTED_TAG = "injected-parameters"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: papermill and nbformat log lines this runner replaces with its own (see _QuietFilter)
_REPLACED = (
    "Passed unknown parameter:",  # undeclared parameters: one line of ours, local ones only
    "does not support parameter introspection",
    "Notebook JSON is invalid",  # schema findings: logged once, as a warning, by load_notebook
    "Interrupting kernel",  # our kernel logs why it interrupts
)


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
    :param parameters: values injected into the notebook (every one, declared or not).
    :param kernel_name: kernel to use; default: the notebook's kernelspec.
    :param cwd: working folder of the kernel; default: the notebook's folder.
    :param cell_timeout: seconds a single cell may run before it is interrupted (None: no limit).
    :param start_timeout: seconds the kernel may take to start.
    :param env: extra environment variables for the kernel.
    :param language: language for the parameters cell, if the notebook does not say.
    :param output_uri: where the executed notebook is kept (its ``metadata.papermill.output_path``);
        default: ``output_path``.
    :param report_mode: hide code cells' inputs in the executed notebook (papermill's ``report_mode``).
    :param prepare_only: only inject the parameters and save the notebook; no kernel runs.
    :param progress_bar: papermill's tqdm progress bar (written to stderr).
    :param global_parameters: names of the DAG-level parameters in ``parameters``: injected
        like the others, without a warning when the notebook does not declare them.
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
    output_uri: str | None = None
    report_mode: bool = False
    prepare_only: bool = False
    progress_bar: bool = False
    global_parameters: list[str] = field(default_factory=list)


@dataclass
class PreparedNotebook:
    """A checked notebook, ready to run.

    :param declared: the names its parameters cell assigns (None: papermill cannot tell for
        this language, or there is no parameters cell).
    """

    spec: NotebookSpec
    nb: Any
    kernel_name: str
    language: str
    has_parameters_cell: bool
    kernel_argv: list[str]
    declared: list[str] | None = None


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


def installed_kernels() -> dict[str, str]:
    """Names of the installed Jupyter kernels and their folders."""
    from jupyter_client.kernelspec import KernelSpecManager

    return dict(KernelSpecManager().find_kernel_specs())


def _kernel_spec(name: str) -> Any:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(kernel_name_for(name))
    except NoSuchKernel as e:
        kernels = ", ".join(sorted(installed_kernels())) or "none"
        raise KernelNotFoundError(
            f"no Jupyter kernel named {name!r} is installed; installed kernels: {kernels}. "
            "Pass kernel_name= one of them, or install the kernel in the worker image "
            "(for R: the IRkernel package, then IRkernel::installspec(user = FALSE); for Scala: the "
            "provider's 'spark' extra, then `jupyter toree install --sys-prefix --spark_home=...`, see "
            "docs/spark.md)"
        ) from e


@lru_cache(maxsize=1)
def _register_translators() -> None:
    """papermill's R translator writes ``nan``/``inf`` for non-finite floats (not R): use
    R's ``NaN``/``Inf``/``-Inf``, as its Python translator writes ``float('nan')``; Scala strings
    with :func:`scala_string`."""
    from papermill.translators import RTranslator, ScalaTranslator, papermill_translators

    class _RTranslator(RTranslator):
        @classmethod
        def translate_float(cls, val: float) -> str:
            if math.isfinite(val):
                return str(RTranslator.translate_float(val))
            return "NaN" if math.isnan(val) else ("-Inf" if val < 0 else "Inf")

    for name in ("R", "sparkrkernel"):
        papermill_translators.register(name, _RTranslator)

    class _ScalaTranslator(ScalaTranslator):
        @classmethod
        def translate_str(cls, val: Any) -> str:
            return scala_string(str(val))

    papermill_translators.register("scala", _ScalaTranslator)


def declared_parameters(nb: Any, *, kernel_name: str, language: str) -> list[str] | None:
    """Names assigned in the notebook's ``parameters`` cell, as papermill infers them.

    :param nb: the notebook.
    :param kernel_name: its kernel.
    :param language: its language.
    :returns: None when there is no parameters cell or papermill cannot inspect the language.
    """
    from papermill.translators import papermill_translators

    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return None
    try:
        translator = papermill_translators.find_translator(kernel_name, language)
        return [p.name for p in translator.inspect(cell)]
    except (NotImplementedError, ValueError):
        return None


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
        declared=declared_parameters(nb, kernel_name=kernel_name, language=language),
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


class _QuietFilter(logging.Filter):
    """Drops the papermill/nbformat lines this runner says better itself (see ``_REPLACED``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _REPLACED)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    from traitlets.log import get_logger

    quiet = _QuietFilter()
    traitlets_log: Any = get_logger()
    loggers: list[logging.Logger] = [
        logging.getLogger("papermill"),
        getattr(traitlets_log, "logger", traitlets_log),
    ]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def _papermill_path(path: str) -> str:
    """``path`` as papermill must get it: papermill formats paths with the parameters
    (``{name}`` placeholders), so literal braces are doubled."""
    return path.replace("{", "{{").replace("}", "}}")


def format_output_path(path: str, parameters: Mapping[str, Any]) -> str:
    """Fill papermill's ``{name}`` placeholders of an output path from the parameters (and
    papermill's built-in ``pm``: ``{pm[run_uuid]}``...), as ``papermill in.ipynb 'out-{alpha}.ipynb'`` does.

    :param path: the output path, already rendered by Jinja.
    :param parameters: the notebook's parameters.
    :raises ParameterError: a placeholder names no parameter.
    """
    if "{" not in path:
        return path
    from papermill.exceptions import PapermillMissingParameterException
    from papermill.parameterize import add_builtin_parameters, parameterize_path

    try:
        return str(parameterize_path(path, add_builtin_parameters(dict(parameters))))
    except (PapermillMissingParameterException, IndexError, ValueError, AttributeError) as e:
        raise ParameterError(
            f"output_notebook {path!r} has a {{placeholder}} that the parameters cannot fill ({e}); "
            f"parameters: {', '.join(sorted(parameters)) or 'none'}. Use Jinja ({{{{ ... }}}}) for "
            "Airflow values, or double the braces for a literal one"
        ) from e


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


@dataclass
class _Cell:
    """The cell running now, as papermill numbers it."""

    index: int
    source: str
    injected: bool
    id: str | None = None

    @property
    def number(self) -> int:
        return self.index + 1


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
        self._kernel: OwnedKernel | None = None
        self._current: _Cell | None = None
        self._stop_reason: str | None = None
        self.cells_executed = 0

    @property
    def _km(self) -> Any:
        """The running kernel's manager (None when no kernel runs)."""
        return self._kernel.km if self._kernel is not None else None

    def _on_cell_execute(self, cell: Any, cell_index: int) -> None:
        """nbclient hook: remember which cell runs, to name it if the run stops there."""
        tags = cell.get("metadata", {}).get("tags", [])
        self.cells_executed += 1
        self._current = _Cell(cell_index, cell.get("source", ""), INJECTED_TAG in tags, cell.get("id"))

    def kill(self, reason: str | None = None) -> None:
        """Kill the kernel now (safe to call from a signal handler or another thread).

        :param reason: what stopped the task, for the error and the record
            (default: "the task was killed").
        """
        self._stop_reason = reason or "the task was killed"
        kernel = self._kernel
        if kernel is not None and kernel.km is not None:
            log.warning("Killing the notebook's kernel: %s", self._stop_reason)
            kernel.kill()

    def _warn_undeclared(self) -> None:
        prepared, spec = self.prepared, self.prepared.spec
        if spec.parameters and not prepared.has_parameters_cell:
            log.info(
                "Notebook %s has no cell tagged 'parameters': papermill injects the parameters "
                "in a new cell at the top",
                spec.notebook,
            )
        if prepared.declared is None:
            return
        undeclared = sorted(set(spec.parameters) - set(prepared.declared) - set(spec.global_parameters))
        if undeclared:
            log.warning(
                "Parameter(s) %s are not assigned in the parameters cell of %s: injected anyway "
                "(check the names)",
                ", ".join(undeclared),
                spec.notebook,
            )

    def run(self) -> NotebookResult:
        """Execute the notebook; the executed notebook is saved even when a cell fails.

        :raises NotebookExecutionError: a cell raised; the message has its number, source
            and traceback.
        :raises NotebookStoppedError: the run was stopped (kill, ``cell_timeout``).
        :raises KernelDiedError: the kernel process died on its own.
        """
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        _register_translators()
        prepared, spec = self.prepared, self.prepared.spec
        self._warn_undeclared()
        parser = StreamParser()
        sink = _StdoutSink(parser, self.echo_stdout)
        Path(spec.output_path).parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self._kernel = kernel = OwnedKernel(prepared.kernel_name)
        nb = None
        stopped: str | None = None
        cell_failed = False
        try:
            km = None
            if not spec.prepare_only:
                km = kernel.start(
                    env={**_environ(), **spec.env},
                    cwd=spec.cwd or str(Path(spec.notebook).resolve().parent),
                )
            with _quiet_logs():
                nb = pm.execute_notebook(
                    _papermill_path(spec.notebook),
                    _papermill_path(spec.output_path),
                    parameters=spec.parameters,
                    kernel_name=prepared.kernel_name,
                    language=prepared.language,
                    progress_bar=spec.progress_bar,
                    report_mode=spec.report_mode,
                    prepare_only=spec.prepare_only,
                    log_output=True,
                    stdout_file=sink,
                    start_timeout=int(spec.start_timeout),
                    execution_timeout=spec.cell_timeout,
                    interrupt_on_timeout=True,
                    km=km,
                    on_cell_execute=self._on_cell_execute,
                )
        except PapermillExecutionError as e:
            cell_failed = True
            error = self._cell_error(e)
            stopped = str(error) if isinstance(error, NotebookStoppedError) else None
            raise error from None
        except BaseException as e:
            translated = self._translate(e, kernel)
            if type(e).__name__ == "AirflowTaskTimeout":
                stopped = "stopped: the task ran past its execution_timeout"
            elif isinstance(translated, NotebookStoppedError):
                stopped = str(translated)
            if translated is None:
                raise
            raise translated from e
        finally:
            kernel.shutdown()
            self._finish_saved_notebook(stopped)
            _count_cells(prepared.kernel_name, self.cells_executed, cell_failed)
        outputs = JobOutputs(values=read_scraps(nb))
        outputs.merge(parser.close())
        return NotebookResult(
            outputs=outputs,
            nb=nb,
            kernel_name=prepared.kernel_name,
            language_info=dict(nb.metadata.get("language_info", {})),
            duration_s=time.monotonic() - started,
        )

    def _where(self, cell: _Cell | None) -> str:
        nb = self.prepared.spec.notebook
        if cell is None:
            return f"the notebook {nb}"
        injected = (
            " (the injected-parameters cell, which papermill added with this task's parameters: "
            "check the parameter values)"
            if cell.injected
            else ""
        )
        return f"cell {cell.number}{injected} of {nb}"

    def _saved(self) -> str:
        spec = self.prepared.spec
        return f"The executed notebook is at {spec.output_uri or spec.output_path}"

    def _error(self, cls: type[NotebookExecutionError], message: str, cell: _Cell | None) -> Any:
        source = cell.source if cell is not None else None
        body = f"{message}\n--- cell source ---\n{source}\n" if source is not None else f"{message}\n"
        return cls(
            body + self._saved(),
            cell_index=cell.index if cell is not None else None,
            source=source,
            output_uri=self.prepared.spec.output_uri or self.prepared.spec.output_path,
        )

    def _cell_error(self, e: Any) -> NotebookExecutionError:
        current = self._current
        injected = current is not None and current.index == e.cell_index and current.injected
        cell = _Cell(e.cell_index, e.source, injected)
        kernel = self._kernel
        if kernel is not None and kernel.interrupts:
            return self._error(
                NotebookStoppedError,
                f"stopped: {self._where(cell)} ran longer than cell_timeout="
                f"{self.prepared.spec.cell_timeout:g} s and was interrupted "
                f"({e.ename} in the saved notebook's cell)",
                cell,
            )
        traceback = strip_ansi("\n".join(e.traceback or []))
        message = (
            f"{self._where(cell)} (In [{e.exec_count}]) raised {e.ename}: {e.evalue}\n"
            f"--- cell source ---\n{e.source}\n--- traceback ---\n{traceback}\n"
            f"The executed notebook, with the error, is at "
            f"{self.prepared.spec.output_uri or self.prepared.spec.output_path}"
        )
        return NotebookExecutionError(
            message,
            cell_index=e.cell_index,
            source=e.source,
            output_uri=self.prepared.spec.output_uri or self.prepared.spec.output_path,
        )

    def _translate(self, e: BaseException, kernel: OwnedKernel) -> NotebookExecutionError | None:
        """What an nbclient/kernel failure really was (None: leave ``e`` as it is)."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        spec, cell = self.prepared.spec, self._current
        if self._stop_reason is not None:
            return self._error(NotebookStoppedError, f"stopped: {self._stop_reason}", cell)
        if isinstance(e, CellTimeoutError):
            if "Timeout waiting for IOPub output" in str(e):
                return self._error(
                    NotebookExecutionError,
                    f"{self._where(cell)} finished, but its output did not all arrive within "
                    "nbclient's iopub_timeout (4 s): usually one very large output (a huge printed "
                    "line or object). Print less, or write it to a file under output_dir() and "
                    "record its path; the saved notebook may lack the end of that output",
                    cell,
                )
            return self._error(
                NotebookStoppedError,
                f"stopped: {self._where(cell)} ran longer than cell_timeout={spec.cell_timeout} s",
                cell,
            )
        if isinstance(e, DeadKernelError):
            if kernel.interrupts > kernel.max_interrupts:
                return self._error(
                    NotebookStoppedError,
                    f"stopped: {self._where(cell)} ran longer than cell_timeout="
                    f"{spec.cell_timeout:g} s, did not stop when interrupted, and its kernel was killed",
                    cell,
                )
            return self._died(cell, kernel, "while running " + self._where(cell))
        if isinstance(e, RuntimeError) and "Kernel didn't respond" in str(e):
            return self._error(
                NotebookExecutionError,
                f"the kernel {self.prepared.kernel_name!r} did not answer within start_timeout="
                f"{spec.start_timeout:g} s; raise start_timeout, or check the kernel's stderr above",
                None,
            )
        if isinstance(e, RuntimeError) and "Kernel died before replying" in str(e):
            return self._died(None, kernel, "as it started")
        return None

    def _died(self, cell: _Cell | None, kernel: OwnedKernel, when: str) -> KernelDiedError:
        returncode = kernel.returncode()
        exit_status = "its process " + describe_exit(returncode)
        if returncode is not None and returncode > 0:
            exit_status += " (os._exit() or sys.exit() from a thread in a cell, or a crash in native code)"
        tail = "\n".join(kernel.stderr_tail)
        stderr = f"\n--- the kernel's last stderr lines ---\n{tail}" if tail else ""
        return self._error(KernelDiedError, f"the kernel died on its own {when}: {exit_status}{stderr}", cell)

    def _finish_saved_notebook(self, stopped: str | None) -> None:
        """Say in the saved notebook where it is kept and, for a stopped run, why it stopped
        (in the cell that was running)."""
        import nbformat

        spec = self.prepared.spec
        path = Path(spec.output_path)
        relabel = spec.output_uri is not None and spec.output_uri != spec.output_path
        if not path.is_file() or not (relabel or stopped):
            return
        try:
            nb = nbformat.read(str(path), as_version=4)
            if relabel:
                nb.metadata.setdefault("papermill", {})["output_path"] = spec.output_uri
            cell = self._current
            # papermill may have added error-marker cells: find the cell by its id
            target = next((c for c in nb.cells if cell is not None and c.get("id") == cell.id), None)
            if stopped and target is not None and target.get("cell_type") == "code":
                target.setdefault("outputs", []).append(
                    nbformat.v4.new_output("stream", name="stderr", text=stopped.splitlines()[0] + "\n")
                )
            with _quiet_logs():
                nbformat.write(nb, str(path))
        except Exception as e:  # never hide the run's own outcome behind this
            log.warning("Could not finish the saved notebook %s: %s", path, e)


def _environ() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("PYDEVD_USE_FRAME_EVAL", None)
    return env


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


def _count_cells(kernel: str, executed: int, failed: bool) -> None:
    """Metrics ``mlplatform.notebook.cells_executed`` / ``cells_failed`` of one run."""
    from airflow_mlplatform import metrics
    from airflow_mlplatform.usage import current_tags

    tags = {"kernel": kernel, **current_tags()}
    if executed:
        metrics.incr("mlplatform.notebook.cells_executed", count=executed, tags=tags)
    if failed:
        metrics.incr("mlplatform.notebook.cells_failed", tags=tags)
