"""R scripts and R Markdown documents, run by real R."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import psutil
import pytest

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    JobFailedError,
    JobStoppedError,
    ParameterError,
    ScriptNotFoundError,
)
from airflow_mlplatform.runners.r_job import RJobRunner, RJobSpec, declared_parameters, prepare

pytestmark = [
    pytest.mark.r,
    pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is installed by make setup / .ci/run"),
]

TYPES = {
    "an_int": 42,
    "a_float": 2.5,
    "yes": True,
    "nothing": None,
    "text": 'it\'s "R"\nnew line ✓',
    "numbers": [1, 2, 3],
    "nested": {"a": 1, "b": ["x", "y"]},
}


def _run(tmp_path, script: Path, **kw):
    spec = prepare(RJobSpec(script=str(script), output_dir=str(tmp_path / "out"), **kw))
    return RJobRunner(spec).run()


def test_script_gets_typed_params_and_records(tmp_path):
    script = tmp_path / "job.R"
    script.write_text(
        'source(Sys.getenv("MLPLATFORM_R_RUNTIME"))\n'
        "for (n in names(params)) record(n, params[[n]])\n"
        "record('classes', lapply(params, class))\n"
        "record('is_null', is.null(params$nothing))\n"
        'cat(jsonlite::toJSON(list(step = 1, loss = 0.5), auto_unbox = TRUE), "\\n")\n'
        "log_metrics(step = 2, loss = 0.25)\n"
        'cat("::mlplatform::record", jsonlite::toJSON(list(name = "oneliner", value = 7), auto_unbox = TRUE), "\\n")\n'
    )
    result = _run(tmp_path, script, parameters=TYPES)
    values = result.outputs.values
    classes = values.pop("classes")
    assert values.pop("is_null") is True
    assert values.pop("oneliner") == 7
    assert values["nothing"] is None  # JSON null -> R NULL -> null
    assert values["an_int"] == 42 and values["a_float"] == 2.5 and values["yes"] is True
    assert values["text"] == TYPES["text"] and values["numbers"] == [1, 2, 3]
    assert values["nested"] == {"a": 1, "b": ["x", "y"]}
    assert classes["an_int"] == "integer" and classes["a_float"] == "numeric"
    assert classes["yes"] == "logical" and classes["numbers"] == "integer" and classes["nested"] == "list"
    assert result.outputs.metric_rows == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]
    assert result.report is None


def test_rmd_renders_with_declared_params_and_records(tmp_path):
    doc = tmp_path / "report.Rmd"
    doc.write_text(
        "---\ntitle: t\noutput: html_document\nparams:\n  count: 1\n  label: x\n---\n\n"
        "```{r}\nsource(Sys.getenv('MLPLATFORM_R_RUNTIME'))\nrecord('n_squared', params$count^2)\n"
        "record('label', params$label)\nprint('inside the report')\nlog_metrics(count = params$count)\n```\n"
    )
    assert declared_parameters(str(doc)) == ["count", "label"]
    result = _run(tmp_path, doc, parameters={"count": 6, "label": "héllo", "undeclared_global": 1})
    assert result.outputs.values == {"n_squared": 36, "label": "héllo"}
    assert result.outputs.metric_rows == [{"count": 6}]
    report = Path(result.report)
    assert report.name == "report.html" and report.parent == tmp_path / "out"
    assert "inside the report" in report.read_text()


def test_r_error_fails_with_r_last_lines(tmp_path):
    script = tmp_path / "bad.R"
    script.write_text('x <- 1\nstop("the input table is empty")\n')
    with pytest.raises(
        JobFailedError, match=r"(?s)failed on its own: R exited with status 1.*the input table is empty"
    ):
        _run(tmp_path, script)


def test_kill_stops_r(tmp_path):
    script = tmp_path / "slow.R"
    script.write_text("cat('started\\n'); flush(stdout()); Sys.sleep(120)\n")
    runner = RJobRunner(prepare(RJobSpec(script=str(script), output_dir=str(tmp_path / "o"))))
    errors: list[BaseException] = []

    def target():
        try:
            runner.run()
        except JobFailedError as e:
            errors.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 30
    while runner._process is None or runner._process._proc is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = runner._process._proc.pid
    time.sleep(1)
    runner.kill("the task was killed by this test")
    thread.join(20)
    assert not thread.is_alive()
    assert isinstance(errors[0], JobStoppedError)
    assert str(errors[0]).startswith("stopped: the task was killed by this test")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_r_killed_by_a_signal_nobody_in_the_task_sent_is_a_failure_naming_it(tmp_path):
    script = tmp_path / "oom.R"
    script.write_text('cat("allocating\\n")\ntools::pskill(Sys.getpid(), tools::SIGKILL)\n')
    with pytest.raises(JobFailedError) as info:
        RJobRunner(prepare(RJobSpec(script=str(script), output_dir=str(tmp_path / "out")))).run()
    assert not isinstance(info.value, JobStoppedError)
    assert "failed on its own: R was killed by SIGKILL" in str(info.value)
    assert "OOM killer" in str(info.value) and "allocating" in str(info.value)


def test_bad_input_before_r_starts(tmp_path):
    with pytest.raises(ScriptNotFoundError, match="does not exist"):
        prepare(RJobSpec(script=str(tmp_path / "missing.R"), output_dir=str(tmp_path)))
    py = tmp_path / "job.py"
    py.write_text("print(1)")
    with pytest.raises(ConfigurationError, match=r"neither an R script \(.R\) nor an R Markdown"):
        prepare(RJobSpec(script=str(py), output_dir=str(tmp_path)))
    script = tmp_path / "ok.R"
    script.write_text("1")
    with pytest.raises(ParameterError, match="'when'"):
        prepare(RJobSpec(script=str(script), output_dir=str(tmp_path), parameters={"when": object()}))
    with pytest.raises(ConfigurationError, match="was not found on PATH"):
        prepare(RJobSpec(script=str(script), output_dir=str(tmp_path), rscript="Rscript-9.9"))


def test_inline_command_needs_only_r(tmp_path):
    """What a pod runs: the wrapper as `Rscript -e` text and the runtime in the environment."""
    import json
    import os

    from airflow_mlplatform.runners.process import ProcessRunner
    from airflow_mlplatform.runners.r_job import inline_env, r_command, report_path

    doc = tmp_path / "doc.Rmd"
    doc.write_text(
        "---\ntitle: t\noutput: html_document\nparams:\n  k: 1\n---\n\n"
        "```{r}\nsource(Sys.getenv('MLPLATFORM_R_RUNTIME'))\nrecord('k', params$k)\n```\n"
    )
    spec = prepare(RJobSpec(script=str(doc), output_dir=str(tmp_path / "out"), parameters={"k": 3}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPLATFORM_")}
    env |= inline_env() | {"MLPLATFORM_PARAMETERS": json.dumps(spec.parameters)}
    result = ProcessRunner(r_command(spec, inline=True), env=env, cwd=str(tmp_path)).run()
    assert result.returncode == 0, result.tail
    assert result.outputs.values == {"k": 3}
    assert report_path(result.tail) == str(tmp_path / "out" / "doc.html")


def test_r_record_rejects_bad_names(tmp_path):
    script = tmp_path / "bad_name.R"
    script.write_text('source(Sys.getenv("MLPLATFORM_R_RUNTIME"))\nrecord("metrics", 1)\n')
    with pytest.raises(JobFailedError, match="cannot record a value named 'metrics'"):
        _run(tmp_path, script)


def test_a_bad_record_line_does_not_block_the_job(tmp_path):
    """Written without the runtime: the job goes on printing; the task fails at the end."""
    script = tmp_path / "raw.R"
    script.write_text(
        'cat("::mlplatform::record {\\"name\\": \\"return_value\\", \\"value\\": 1}\\n")\n'
        'for (i in 1:20000) cat(strrep("x", 100), "\\n")\n'
    )
    from airflow_mlplatform.exceptions import RecordError

    with pytest.raises(RecordError, match="reserved"):
        _run(tmp_path, script)
