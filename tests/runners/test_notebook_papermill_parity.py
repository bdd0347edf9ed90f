"""The runner behaves as papermill does on papermill's own test notebooks and assertions
(papermill/tests/test_execute.py), with real kernels."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from airflow_mlplatform.exceptions import (
    InvalidNotebookError,
    KernelDiedError,
    NotebookExecutionError,
    NotebookStoppedError,
    ParameterError,
)
from airflow_mlplatform.runners.kernel import OwnedKernel
from airflow_mlplatform.runners.notebook import (
    NotebookRunner,
    NotebookSpec,
    format_output_path,
    prepare,
    run_notebook,
)
from nbtools import write_notebook

PAPERMILL_NBS = Path(__file__).parent / "data" / "papermill"


def _spec(tmp_path: Path, nb: Path, **kw) -> NotebookSpec:
    return NotebookSpec(notebook=str(nb), output_path=str(tmp_path / "out" / nb.name), **kw)


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "in" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PAPERMILL_NBS / name, target)
    return target


def test_executed_notebook_metadata_is_what_papermill_writes(tmp_path):
    source = _copy(tmp_path, "simple_execute.ipynb")
    theirs_path = tmp_path / "papermill" / "simple_execute.ipynb"
    theirs_path.parent.mkdir()
    papermill.execute_notebook(str(source), str(theirs_path), {"msg": "Hello"}, progress_bar=False)
    spec = _spec(tmp_path, source, parameters={"msg": "Hello"})
    run_notebook(spec)
    theirs = nbformat.read(str(theirs_path), as_version=4)
    ours = nbformat.read(spec.output_path, as_version=4)

    mine, pm = dict(ours.metadata.papermill), dict(theirs.metadata.papermill)
    assert mine["input_path"] == str(source) == pm["input_path"]  # the path, not a copy
    assert mine["output_path"] == spec.output_path
    assert pm["output_path"] == str(theirs_path)
    assert set(mine) == set(pm)
    for key in ("parameters", "default_parameters", "environment_variables", "version", "exception"):
        assert mine[key] == pm[key], key
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]
    assert [c.metadata.tags for c in ours.cells] == [c.metadata.tags for c in theirs.cells]
    assert [set(c.metadata.papermill) for c in ours.cells] == [
        set(c.metadata.papermill) for c in theirs.cells
    ]
    assert [c.get("outputs") for c in ours.cells] == [c.get("outputs") for c in theirs.cells]
    # no copy of the notebook inside itself
    assert Path(spec.output_path).stat().st_size < 2 * theirs_path.stat().st_size


def test_output_path_metadata_is_the_output_notebooks_uri_and_braces_stay_literal(tmp_path):
    source = _copy(tmp_path, "simple_execute.ipynb")
    odd = source.with_name("exp-{msg}.ipynb")  # papermill formats paths: braces must reach it doubled
    source.rename(odd)
    spec = _spec(tmp_path, odd, parameters={"msg": "x"}, output_uri="s3://reports/run-1/simple.ipynb")
    run_notebook(spec)
    saved = json.loads(Path(spec.output_path).read_text())
    assert saved["metadata"]["papermill"]["output_path"] == "s3://reports/run-1/simple.ipynb"
    assert saved["metadata"]["papermill"]["input_path"] == str(odd)


@pytest.mark.parametrize("name", ["nb_version_4.4.ipynb", "blank-vscode.ipynb"])
def test_papermills_version_and_minimal_notebooks_run_and_validate(tmp_path, name):
    # papermill's TestNotebookValidation / TestMinimalNotebook: execute, then nbformat.validate
    source = _copy(tmp_path, name)
    spec = _spec(tmp_path, source, parameters={"var": "It works"}, language="python")
    run_notebook(spec)
    nbformat.validate(nbformat.read(spec.output_path, as_version=4))


def test_cell_ids_in_4_4_files_and_odd_cell_metadata_run_with_a_warning(tmp_path, caplog):
    raw = {
        "nbformat": 4,
        "nbformat_minor": 4,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {  # VS Code / jupytext write ids into 4.4 files
                "cell_type": "code",
                "id": "a1b2c3",
                "metadata": {"tags": ["parameters"], "nteract": {"transient": {"deleting": False}}},
                "source": "n = 1",
                "outputs": [],
                "execution_count": None,
            },
            {  # wrong types for schema-known keys: papermill logs and runs
                "cell_type": "code",
                "id": "d4e5f6",
                "metadata": {"collapsed": "yes", "execution": {"iopub.status.busy": 5}},
                "source": "from airflow_mlplatform.runtime import record\nrecord('n', n + 1)",
                "outputs": [],
                "execution_count": None,
            },
        ],
    }
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(raw))
    with caplog.at_level(logging.INFO):
        result = run_notebook(_spec(tmp_path, path, parameters={"n": 41}))
    assert result.outputs.values == {"n": 42}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    finding = next(w for w in warnings if "does not follow the nbformat schema" in w)
    assert "iopub.status.busy" in finding and "running it anyway" in finding
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [{"cell_type": "sql", "source": "x", "metadata": {}}],
            },
            "cell_type 'sql'",
        ),
        (
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [{"cell_type": "code", "metadata": {}, "outputs": []}],
            },
            "cell 1 has no source",
        ),
        (
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [{"cell_type": "code", "source": "1", "outputs": []}],
            },
            "missing an expected key: metadata",
        ),
    ],
)
def test_what_papermill_cannot_execute_is_refused_before_a_kernel_starts(tmp_path, content, why):
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(content))
    with pytest.raises(InvalidNotebookError, match=why):
        prepare(_spec(tmp_path, path))


def test_kernel_python_and_non_finite_parameters_as_papermill_runs_them(tmp_path):
    nb = write_notebook(
        tmp_path / "nan.ipynb",
        [
            ("parameters", "a = 0.0\nb = 0.0\nc = 0.0"),
            "import math\nfrom airflow_mlplatform.runtime import record\n"
            "record('seen', [math.isnan(a), b == math.inf, c == -math.inf, type(a).__name__])",
        ],
        kernel="python",  # jupyter_client's name for the native kernel
    )
    spec = _spec(tmp_path, nb, parameters={"a": math.nan, "b": math.inf, "c": -math.inf})
    prepared = prepare(spec)
    assert prepared.kernel_name == "python"
    result = NotebookRunner(prepared).run()
    assert result.outputs.values == {"seen": [True, True, True, "float"]}
    injected = nbformat.read(spec.output_path, as_version=4).cells[1]
    assert "injected-parameters" in injected.metadata.tags
    assert "a = float('nan')" in injected.source and "c = float('-inf')" in injected.source


@pytest.mark.r
@pytest.mark.skipif(shutil.which("R") is None, reason="R is installed by .ci/run")
def test_non_finite_parameters_reach_r_as_nan_and_inf(tmp_path):
    nb = write_notebook(
        tmp_path / "nan_r.ipynb",
        [
            ("parameters", "a <- 0\nb <- 0\nc <- 0"),
            'cat(sprintf("::mlplatform::record {\\"name\\": \\"seen\\", \\"value\\": \\"%s %s %s\\"}\\n", is.nan(a), b == Inf, c == -Inf))',
        ],
        kernel="ir",
        language="R",
    )
    result = run_notebook(_spec(tmp_path, nb, parameters={"a": math.nan, "b": math.inf, "c": -math.inf}))
    assert result.outputs.values == {"seen": "TRUE TRUE TRUE"}


def test_report_mode_hides_inputs_as_papermill_does(tmp_path):
    source = _copy(tmp_path, "report_mode_test.ipynb")
    spec = _spec(tmp_path, source, parameters={"a": 0}, report_mode=True)
    run_notebook(spec)
    cells = nbformat.read(spec.output_path, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    assert code and all(c.metadata.get("jupyter", {}).get("source_hidden") is True for c in code)


def test_prepare_only_injects_without_running_even_a_broken_notebook(tmp_path):
    # papermill's test_prepare_only, on its broken1.ipynb
    source = _copy(tmp_path, "broken1.ipynb")
    spec = _spec(tmp_path, source, parameters={"foo": r"do\ not\ crash"}, prepare_only=True)
    runner = NotebookRunner(prepare(spec))
    result = runner.run()
    assert result.outputs.values == {}
    nb = nbformat.read(spec.output_path, as_version=4)
    assert nb.cells[0].cell_type == "code"
    assert nb.cells[0].source.split("\n") == ["# Parameters", r'foo = "do\\ not\\ crash"', ""]
    assert not nb.metadata.papermill.get("start_time")  # nothing ran


def test_language_for_a_notebook_without_metadata(tmp_path):
    nb = write_notebook(
        tmp_path / "bare.ipynb",
        ["from airflow_mlplatform.runtime import record\nrecord('x', x)"],
        kernel=None,
    )
    assert run_notebook(_spec(tmp_path, nb, parameters={"x": 3}, language="python")).outputs.values == {
        "x": 3
    }


# --- how a run stops, said as it happened ---


def test_cell_timeout_interrupts_the_cell_and_the_saved_notebook_shows_it(tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb", ["x = 1", "import time\ntime.sleep(60)", "never = 1"])
    spec = _spec(tmp_path, nb, cell_timeout=2)
    with pytest.raises(NotebookStoppedError) as info:
        run_notebook(spec)
    message = str(info.value)
    assert message.startswith(f"stopped: cell 2 of {nb} ran longer than cell_timeout=2 s and was interrupted")
    assert info.value.cell_number == 2
    saved = nbformat.read(spec.output_path, as_version=4).cells
    cell = next(c for c in saved if "time.sleep(60)" in c.source)
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "KeyboardInterrupt"
    assert any(o.output_type == "stream" and o.text.startswith("stopped: cell 2") for o in cell.outputs)


def test_a_cell_that_ignores_the_interrupt_is_killed_after_a_second_timeout(tmp_path):
    nb = write_notebook(
        tmp_path / "stubborn.ipynb",
        ["import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"],
    )
    with pytest.raises(
        NotebookStoppedError, match=r"did not stop when interrupted, and its kernel was killed"
    ):
        run_notebook(_spec(tmp_path, nb, cell_timeout=1))


def test_kernel_killed_by_sigkill_on_its_own_says_so(tmp_path):
    nb = write_notebook(tmp_path / "oom.ipynb", ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    with pytest.raises(KernelDiedError) as info:
        run_notebook(_spec(tmp_path, nb))
    assert not isinstance(info.value, NotebookStoppedError)
    message = str(info.value)
    assert message.startswith(f"the kernel died on its own while running cell 1 of {nb}")
    assert "killed by SIGKILL" in message and "OOM killer" in message


def test_kernel_exit_status_is_told_apart_from_a_signal(tmp_path):
    nb = write_notebook(tmp_path / "exit.ipynb", ["import os\nos._exit(3)"])
    with pytest.raises(KernelDiedError, match=r"its process exited with status 3") as info:
        run_notebook(_spec(tmp_path, nb))
    assert "SIGKILL" not in str(info.value)


def test_iopub_timeout_says_the_output_did_not_arrive(tmp_path):
    from nbclient.exceptions import CellTimeoutError

    nb = write_notebook(tmp_path / "big.ipynb", ["print('x' * 10)"])
    runner = NotebookRunner(prepare(_spec(tmp_path, nb)))
    runner._on_cell_execute(nbformat.v4.new_code_cell("print('x' * 10**9)"), 0)

    error = CellTimeoutError.error_from_timeout_and_cell(
        "Timeout waiting for IOPub output", 4, nbformat.v4.new_code_cell("print('x' * 10**9)")
    )
    translated = runner._translate(error, OwnedKernel("python3"))
    assert isinstance(translated, NotebookExecutionError) and not isinstance(translated, NotebookStoppedError)
    assert "cell 1 of" in str(translated) and "finished, but its output did not all arrive" in str(translated)
    assert "cell_timeout" not in str(translated)


def test_failure_in_the_injected_parameters_cell_says_so(tmp_path):
    nb = write_notebook(tmp_path / "p.ipynb", [("parameters", "a = 1"), "print(a)"])
    with pytest.raises(NotebookExecutionError) as info:
        run_notebook(_spec(tmp_path, nb, parameters={"class": 1}))  # `class = 1`: SyntaxError
    message = str(info.value)
    assert message.startswith("cell 2 (the injected-parameters cell")
    assert "SyntaxError" in message and info.value.cell_number == 2


# --- parameters and the log ---


def test_only_undeclared_local_parameters_are_logged_once(tmp_path, caplog):
    nb = write_notebook(tmp_path / "decl.ipynb", [("parameters", "alpha = 1"), "print(alpha)"])
    spec = _spec(
        tmp_path, nb, parameters={"alpha": 2, "global_c": 3, "typo": 4}, global_parameters=["global_c"]
    )
    with caplog.at_level(logging.INFO):
        run_notebook(spec)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "Passed unknown parameter" in m]
    undeclared = [m for m in messages if "not assigned in the parameters cell" in m]
    assert len(undeclared) == 1 and "typo" in undeclared[0] and "global_c" not in undeclared[0]
    injected = nbformat.read(spec.output_path, as_version=4).cells[1].source
    assert "global_c = 3" in injected and "typo = 4" in injected  # all are injected, by design


def test_output_path_placeholders_are_filled_as_papermill_does():
    assert (
        format_output_path("s3://b/out-{alpha}-{n}.ipynb", {"alpha": 0.5, "n": 2}) == "s3://b/out-0.5-2.ipynb"
    )
    assert "run_uuid" not in format_output_path("/o/{pm[run_uuid]}.ipynb", {})
    assert format_output_path("/o/plain.ipynb", {}) == "/o/plain.ipynb"
    with pytest.raises(ParameterError, match=r"'/o/\{missing\}.ipynb'.*parameters: alpha"):
        format_output_path("/o/{missing}.ipynb", {"alpha": 1})
