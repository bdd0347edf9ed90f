"""Entry point that runs a notebook inside a pod (or any container).

    MLPLATFORM_JOB_SPEC='{"notebook": ..., "output_location": ..., "parameters": {...}}' \\
        python -m airflow_mlplatform.runners.notebook_job

The cells' stdout is echoed to this process's stdout, so ``record()`` lines and metric
lines reach the pod log, where the operator reads them; the executed notebook is kept in
the try's output folder (shared storage), also when a cell fails. Exit status: 0 success, 1 the notebook failed, 2 bad input.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

SPEC_ENV = "MLPLATFORM_JOB_SPEC"


def _fields(spec: dict[str, Any], output_path: str) -> dict[str, Any]:
    allowed = (
        "notebook",
        "parameters",
        "kernel_name",
        "cwd",
        "cell_timeout",
        "start_timeout",
        "env",
        "language",
        "report_mode",
        "prepare_only",
        "progress_bar",
        "global_parameters",
    )
    fields = {k: spec[k] for k in allowed if spec.get(k) is not None}
    fields["output_path"] = output_path
    return fields


def main() -> int:
    """Run the notebook described by ``MLPLATFORM_JOB_SPEC``; returns the exit status.

    The spec's ``output_location`` is the try's output folder (a path on a shared volume or
    an ObjectStoragePath URI): the executed notebook and every file the notebook wrote under
    ``output_dir()`` end up there; ``output_uri`` optionally names another place for the
    executed notebook.
    """
    from airflow_mlplatform import storage
    from airflow_mlplatform.exceptions import MLPlatformError, NotebookExecutionError
    from airflow_mlplatform.runners.notebook import NotebookRunner, prepare, spec_from_mapping
    from airflow_mlplatform.runtime import OUTPUT_DIR_ENV, OUTPUT_URI_ENV

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    # The cells' stdout is echoed to stdout below; papermill would log it a second time (a
    # pod's log merges both streams), so keep only its progress lines.
    logging.getLogger("papermill").addFilter(lambda record: record.funcName != "log_output_message")
    spec = json.loads(os.environ[SPEC_ENV])
    shipped = None
    if spec.get("job_dir") and not storage.is_local(spec["job_dir"]):  # shipped through object storage
        import tempfile

        from airflow_mlplatform.job_files import fetch

        shipped = tempfile.TemporaryDirectory(prefix="mlplatform-job-")
        local = fetch(spec["job_dir"], Path(shipped.name))
        spec["notebook"] = str(local / Path(spec["notebook"]).name)
    folder = storage.OutputFolder(spec["output_location"])
    name = Path(spec["notebook"]).name
    output_path = str(folder.path / name)
    env = {**spec.get("env", {}), OUTPUT_DIR_ENV: str(folder.path), OUTPUT_URI_ENV: spec["output_location"]}
    fields = {
        **_fields(spec, output_path),
        "env": env,
        "output_uri": spec.get("output_uri") or folder.uri(name),
    }
    try:
        prepared = prepare(spec_from_mapping(fields))
    except MLPlatformError as e:
        print(f"bad input: {e}", file=sys.stderr)
        return 2
    runner = NotebookRunner(prepared, echo_stdout=lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    # the kubelet sends SIGTERM when the pod is deleted (on_kill), evicted or preempted
    signal.signal(
        signal.SIGTERM,
        lambda *_: runner.kill("the pod got SIGTERM (it was deleted, evicted or preempted)"),
    )
    status = 0
    try:
        runner.run()
    except NotebookExecutionError as e:
        print(str(e), file=sys.stderr)
        status = 1
    finally:
        folder.publish()
        if spec.get("output_uri") and spec["output_uri"] != folder.uri(name) and Path(output_path).exists():
            storage.copy_file(output_path, spec["output_uri"])
        folder.cleanup()
        if shipped is not None:
            shipped.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
