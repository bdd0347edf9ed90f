"""Run an R script (Rscript) or render an R Markdown document (rmarkdown::render) locally.

Parameters reach R as JSON in ``MLPLATFORM_PARAMETERS``: plain scripts see them as the
list ``params`` (as R Markdown documents do), documents get those declared in their YAML
header. Values and metrics come back through the R runtime (``record()``,
``log_metrics()``) or JSON lines on stdout, in the same contract as notebooks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    JobFailedError,
    JobStoppedError,
    ParameterError,
    ScriptNotFoundError,
)
from airflow_mlplatform.parameters import check_json
from airflow_mlplatform.runners.process import ProcessRunner
from airflow_mlplatform.runtime import OUTPUT_DIR_ENV, R_RUNTIME_ENV, r_runtime_path
from airflow_mlplatform.values import JobOutputs

log = logging.getLogger(__name__)

SCRIPT_SUFFIXES = (".r",)
DOCUMENT_SUFFIXES = (".rmd",)
REPORT_PREFIX = "::mlplatform::report "


@dataclass
class RJobSpec:
    """What to run.

    :param script: an ``.R`` script or an ``.Rmd`` document.
    :param output_dir: local folder for outputs (the rendered report goes here).
    :param parameters: values for the job.
    :param output_format: rmarkdown output format (``html_document``, ``pdf_document``...);
        ``default``: the document's own.
    :param env: extra environment variables.
    :param cwd: working folder; default: the script's folder.
    :param rscript: the Rscript executable.
    """

    script: str
    output_dir: str
    parameters: dict[str, Any] = field(default_factory=dict)
    output_format: str = "default"
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    rscript: str = "Rscript"

    @property
    def is_document(self) -> bool:
        """Whether the job renders an R Markdown document."""
        return Path(self.script).suffix.lower() in DOCUMENT_SUFFIXES


@dataclass
class RJobResult:
    """What the job produced: values, metrics, the report (documents) and R's version."""

    outputs: JobOutputs
    report: str | None


def declared_parameters(document: str) -> list[str] | None:
    """Names of the ``params`` declared in an R Markdown document's YAML header.

    :param document: the ``.Rmd`` file.
    """
    import yaml

    text = Path(document).read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    end = text.find("\n---", 3)
    if end < 0:
        return []
    try:
        header = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as e:
        raise ParameterError(f"the YAML header of {document!r} does not parse: {e}") from e
    params = header.get("params") if isinstance(header, dict) else None
    return list(params) if isinstance(params, dict) else []


def prepare(spec: RJobSpec, *, check_rscript: bool = True) -> RJobSpec:
    """Check the job before anything starts; returns it with the parameters to pass.

    :param spec: what to run.
    :param check_rscript: look for Rscript here (False when R runs in another image).
    :raises ScriptNotFoundError: the script does not exist.
    :raises ConfigurationError: unsupported file type, or no Rscript.
    :raises ParameterError: a parameter that is not JSON-serializable.
    """
    path = Path(spec.script)
    if not path.is_file():
        raise ScriptNotFoundError(
            f"R script {spec.script!r} does not exist; give an absolute path or one relative to the "
            "DAG file's folder"
        )
    suffix = path.suffix.lower()
    if suffix not in SCRIPT_SUFFIXES + DOCUMENT_SUFFIXES:
        raise ConfigurationError(
            f"{spec.script!r} is neither an R script (.R) nor an R Markdown document (.Rmd); "
            "RStudioJobOperator runs only those"
        )
    if check_rscript and shutil.which(spec.rscript) is None:
        raise ConfigurationError(
            f"{spec.rscript!r} was not found on PATH: install R in the worker image "
            "(Debian: apt-get install r-base-core r-cran-jsonlite r-cran-rmarkdown pandoc) or run "
            "the job in a pod with compute=..."
        )
    parameters = check_json(spec.parameters)
    if spec.is_document:
        declared = declared_parameters(spec.script) or []
        dropped = sorted(set(parameters) - set(declared))
        if dropped:
            log.info(
                "Parameters not declared in %s's YAML header, not passed: %s", path.name, ", ".join(dropped)
            )
        parameters = {k: v for k, v in parameters.items() if k in declared}
    spec.parameters = parameters
    return spec


def wrapper_path() -> str:
    """Path of ``run_r.R``, the wrapper that runs scripts and renders documents."""
    return str(Path(r_runtime_path()).with_name("run_r.R"))


def r_command(spec: RJobSpec, *, inline: bool = False) -> list[str]:
    """The command that runs ``spec`` (pure).

    :param spec: what to run.
    :param inline: pass the wrapper's text with ``-e`` (for a container without this package;
        then set :func:`inline_env` too).
    """
    head = (
        [spec.rscript, "-e", Path(wrapper_path()).read_text()] if inline else [spec.rscript, wrapper_path()]
    )
    if spec.is_document:
        return [*head, "render", spec.script, spec.output_dir, spec.output_format]
    return [*head, "script", spec.script]


def inline_env() -> dict[str, str]:
    """Environment that carries the R runtime's text into a container (with ``inline=True``)."""
    return {"MLPLATFORM_R_RUNTIME_CODE": Path(r_runtime_path()).read_text()}


def report_path(lines: list[str]) -> str | None:
    """The rendered report's path announced by the wrapper, if any.

    :param lines: the job's last lines of output.
    """
    return next(
        (line[len(REPORT_PREFIX) :].strip() for line in lines if line.startswith(REPORT_PREFIX)), None
    )


class RJobRunner:
    """Runs one prepared R job; ``kill()`` stops R and its children.

    :param spec: a spec checked by :func:`prepare`.
    """

    def __init__(self, spec: RJobSpec) -> None:
        self.spec = spec
        self._process: ProcessRunner | None = None
        self._stop_reason: str | None = None

    def run(self) -> RJobResult:
        """Run the job.

        :raises JobFailedError: R exited with an error (or was killed by a signal nobody in
            this task sent); the message has R's last lines.
        :raises JobStoppedError: the job was stopped by :meth:`kill` (message ``stopped: ...``).
        """
        spec = self.spec
        Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **spec.env,
            "MLPLATFORM_PARAMETERS": json.dumps(spec.parameters),
            OUTPUT_DIR_ENV: spec.output_dir,
            R_RUNTIME_ENV: r_runtime_path(),
        }
        cwd = spec.cwd or str(Path(spec.script).resolve().parent)
        self._process = ProcessRunner(r_command(spec), env=env, cwd=cwd)
        try:
            result = self._process.run()
        finally:
            self._process = None
        if self._stop_reason is not None:
            raise JobStoppedError(f"stopped: {self._stop_reason} (R job {spec.script})")
        if result.returncode != 0:
            from airflow_mlplatform.runners.kernel import describe_exit

            tail = "\n".join(result.tail[-25:])
            raise JobFailedError(
                f"R job {spec.script} failed on its own: R {describe_exit(result.returncode)}; "
                f"R's last lines:\n{tail}"
            )
        return RJobResult(outputs=result.outputs, report=report_path(result.tail))

    def kill(self, reason: str | None = None) -> None:
        """Kill R (and pandoc, if rendering).

        :param reason: what stopped the task, for the error and the record.
        """
        self._stop_reason = reason or "the task was killed"
        if self._process is not None:
            self._process.kill()


def r_version(rscript: str = "Rscript") -> str | None:
    """The R version string, e.g. ``4.2.2``, or None.

    :param rscript: the Rscript executable.
    """
    import subprocess

    try:
        out = subprocess.run(
            [rscript, "-e", "cat(as.character(getRversion()))"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
