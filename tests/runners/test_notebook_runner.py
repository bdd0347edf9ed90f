"""The notebook runner with real papermill and real kernels (Python and R)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time

import nbformat
import psutil
import pytest

from airflow_mlplatform.exceptions import (
    InvalidNotebookError,
    KernelDiedError,
    KernelNotFoundError,
    NotebookExecutionError,
    NotebookNotFoundError,
    NotebookStoppedError,
    ParameterError,
)
from airflow_mlplatform.runners.notebook import NotebookRunner, NotebookSpec, prepare, run_notebook
from nbtools import write_notebook

ROUND_TRIP = {
    "an_int": 42,
    "negative": -7,
    "a_float": 3.25,
    "tiny": 1e-12,
    "yes": True,
    "no": False,
    "nothing": None,
    "quotes": "it's \"quoted\" and 'single'",
    "newlines": "line one\nline two\n\ttabbed \\ backslash",
    "unicode": "héllo wörld ✓ 日本語 🚀",
    "empty": "",
    "a_list": [1, 2.5, "three", None, True, [4, {"five": 5}]],
    "a_dict": {"nested": {"deep": [1, 2, {"x": "y"}]}, "flag": False, "none": None},
}


def _spec(tmp_path, nb, **kw):
    return NotebookSpec(notebook=str(nb), output_path=str(tmp_path / "out" / nb.name), **kw)


def test_parameters_round_trip_with_their_types(tmp_path):
    nb = write_notebook(
        tmp_path / "types.ipynb",
        [
            ("parameters", "placeholder = 1"),
            "from airflow_mlplatform.runtime import record\n"
            f"for _name in {sorted(ROUND_TRIP)!r}:\n"
            "    record(_name, globals()[_name])\n"
            "record('types', {n: type(globals()[n]).__name__ for n in " + repr(sorted(ROUND_TRIP)) + "})",
        ],
    )
    result = run_notebook(_spec(tmp_path, nb, parameters=ROUND_TRIP))
    values = result.outputs.values
    types = values.pop("types")
    assert values == ROUND_TRIP
    assert types["an_int"] == "int" and types["a_float"] == "float" and types["yes"] == "bool"
    assert types["nothing"] == "NoneType" and types["a_list"] == "list" and types["a_dict"] == "dict"


def test_records_scraps_and_metrics(tmp_path):
    nb = write_notebook(
        tmp_path / "outputs.ipynb",
        [
            "import json, scrapbook as sb\nfrom airflow_mlplatform.runtime import record, log_metrics",
            "for epoch in range(3):\n    print(json.dumps({'epoch': epoch, 'loss': 1.0 / (epoch + 1)}))",
            "print('not json {')\nprint('[1, 2]')\nlog_metrics(final=True)",
            "record('model', 's3://bucket/model.pkl')\nsb.glue('glued', {'k': [1, 2]})\nsb.glue('model', 'overridden?')",
            "record('model', 's3://bucket/model-v2.pkl')",
        ],
    )
    result = run_notebook(_spec(tmp_path, nb))
    assert result.outputs.values == {"model": "s3://bucket/model-v2.pkl", "glued": {"k": [1, 2]}}
    assert result.outputs.metric_rows == [
        {"epoch": 0, "loss": 1.0},
        {"epoch": 1, "loss": 0.5},
        {"epoch": 2, "loss": pytest.approx(1 / 3)},
        {"final": True},
    ]
    assert result.outputs.metrics == {"epoch": 2, "loss": pytest.approx(1 / 3), "final": True}
    assert result.language_info["name"] == "python"


def test_notebook_without_parameters_cell_still_runs_and_log_says_so(tmp_path, caplog):
    nb = write_notebook(
        tmp_path / "noparams.ipynb", ["from airflow_mlplatform.runtime import record\nrecord('x', x * 2)"]
    )
    with caplog.at_level(logging.INFO):
        result = run_notebook(_spec(tmp_path, nb, parameters={"x": 21}))
    assert result.outputs.values == {"x": 42}
    assert "no cell tagged 'parameters'" in caplog.text


def test_cell_progress_and_stdout_are_logged(tmp_path, caplog):
    nb = write_notebook(
        tmp_path / "progress.ipynb", ["print('hello from cell one')", "print('and from cell two')"]
    )
    with caplog.at_level(logging.INFO):
        run_notebook(_spec(tmp_path, nb))
    text = caplog.text
    assert "Executing Cell 1" in text and "Ending Cell 2" in text
    assert (
        text.index("hello from cell one") < text.index("Executing Cell 2") < text.index("and from cell two")
    )


def test_failing_cell_names_index_source_and_traceback_and_keeps_notebook(tmp_path):
    nb = write_notebook(
        tmp_path / "fails.ipynb",
        ["a = 1", "def explode():\n    raise ValueError('the data is bad')\n\nexplode()", "never = True"],
    )
    spec = _spec(tmp_path, nb)
    with pytest.raises(NotebookExecutionError) as info:
        run_notebook(spec)
    message = str(info.value)
    assert info.value.cell_index == 1 and info.value.cell_number == 2  # papermill's "Executing Cell 2"
    assert message.startswith(f"cell 2 of {nb} (In [2]) raised ValueError: the data is bad")
    assert "--- cell source ---\ndef explode():\n    raise ValueError('the data is bad')" in message
    tb = message.split("--- traceback ---")[1]
    assert "ValueError: the data is bad" in tb and "explode()" in tb
    assert "\x1b[" not in message
    saved = nbformat.read(spec.output_path, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in saved.cells for o in c.get("outputs", []))


def test_kernel_death_fails_fast(tmp_path):
    nb = write_notebook(tmp_path / "dies.ipynb", ["x = 1", "import os\nos._exit(1)", "y = 2"])
    spec = _spec(tmp_path, nb)
    with pytest.raises(KernelDiedError) as info:
        run_notebook(spec)
    assert "os._exit(1)" in str(info.value)
    assert info.value.cell_index == 1
    assert os.path.exists(spec.output_path)


def test_cell_timeout_stops_the_cell(tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb", ["import time\ntime.sleep(60)"])
    with pytest.raises(NotebookExecutionError, match="cell_timeout=2"):
        run_notebook(_spec(tmp_path, nb, cell_timeout=2))


def test_kill_stops_the_kernel_and_leaves_nothing_running(tmp_path):
    nb = write_notebook(
        tmp_path / "long.ipynb",
        ["import os\nprint('pid', os.getpid(), flush=True)", "import time\ntime.sleep(120)"],
    )
    runner = NotebookRunner(prepare(_spec(tmp_path, nb)))
    errors: list[BaseException] = []

    def target():
        try:
            runner.run()
        except BaseException as e:
            errors.append(e)

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 60
    while runner._km is None or not runner._km.has_kernel:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    kernel_pid = runner._km.provisioner.process.pid
    time.sleep(3)  # let it reach the sleeping cell
    runner.kill()
    thread.join(30)
    assert not thread.is_alive()
    assert errors and isinstance(errors[0], NotebookStoppedError)
    assert str(errors[0]).startswith("stopped: the task was killed")
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE
    leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert all(psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in leftover if psutil.pid_exists(p))


# --- bad input: each is a clear error raised by prepare(), before any kernel starts ---


def test_missing_notebook(tmp_path):
    with pytest.raises(NotebookNotFoundError, match=r"does not exist"):
        prepare(NotebookSpec(notebook=str(tmp_path / "nope.ipynb"), output_path=str(tmp_path / "o.ipynb")))


@pytest.mark.parametrize(
    "content",
    [
        "this is not json",
        json.dumps({"cells": "wrong", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}),
        "{}",
    ],
)
def test_invalid_notebook(tmp_path, content):
    bad = tmp_path / "bad.ipynb"
    bad.write_text(content)
    with pytest.raises(InvalidNotebookError, match="not a valid Jupyter notebook"):
        prepare(NotebookSpec(notebook=str(bad), output_path=str(tmp_path / "o.ipynb")))


def test_unknown_kernel_lists_installed_ones(tmp_path):
    nb = write_notebook(tmp_path / "k.ipynb", ["1"])
    with pytest.raises(KernelNotFoundError) as info:
        prepare(_spec(tmp_path, nb, kernel_name="julia-9.9"))
    assert "'julia-9.9'" in str(info.value) and "python3" in str(info.value)


def test_parameter_that_is_not_json(tmp_path):
    nb = write_notebook(tmp_path / "p.ipynb", ["1"])
    import datetime

    with pytest.raises(ParameterError, match=r"'when'.*datetime.*not JSON-serializable"):
        prepare(_spec(tmp_path, nb, parameters={"when": datetime.datetime.now()}))


def test_notebook_without_kernel_metadata_defaults_to_python(tmp_path):
    nb = write_notebook(
        tmp_path / "bare.ipynb",
        ["from airflow_mlplatform.runtime import record\nrecord('ok', 1)"],
        kernel=None,
    )
    assert prepare(_spec(tmp_path, nb)).kernel_name == "python3"
    assert run_notebook(_spec(tmp_path, nb)).outputs.values == {"ok": 1}


@pytest.mark.r
@pytest.mark.skipif(shutil.which("R") is None, reason="R is installed by .ci/run")
def test_r_kernel_parameters_and_one_line_record(tmp_path):
    nb = write_notebook(
        tmp_path / "r.ipynb",
        [
            ("parameters", "n <- 1L\nlabel <- 'x'"),
            'source(Sys.getenv("MLPLATFORM_R_RUNTIME"))\n'
            'record("n_plus_one", n + 1)\nrecord("label", label)\nrecord("flags", flags)\nrecord("nested", nested)',
            'cat(jsonlite::toJSON(list(rmse = 0.5), auto_unbox = TRUE), "\\n")',
            'cat("::mlplatform::record", jsonlite::toJSON(list(name = "oneliner", value = 2.5), auto_unbox = TRUE), "\\n")',
        ],
        kernel="ir",
        language="R",
    )
    from pathlib import Path

    runtime_r = Path(__file__).resolve().parents[2] / "src/airflow_mlplatform/runtime/mlplatform.R"
    result = run_notebook(
        _spec(
            tmp_path,
            nb,
            parameters={
                "n": 41,
                "label": 'it\'s "R"\n✓',
                "flags": [True, False],
                "nested": {"a": 1, "b": "two"},
            },
            env={"MLPLATFORM_R_RUNTIME": str(runtime_r)},
        )
    )
    assert result.kernel_name == "ir"
    assert result.outputs.values == {
        "n_plus_one": 42,
        "label": 'it\'s "R"\n✓',
        "flags": [True, False],
        "nested": {"a": 1, "b": "two"},
        "oneliner": 2.5,
    }
    assert result.outputs.metrics == {"rmse": 0.5}
    assert result.language_info["name"] == "R"
