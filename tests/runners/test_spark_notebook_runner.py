"""Spark in the notebook runner: Scala (Apache Toree) parameters and failures; a PySpark
session's JVM killed with the kernel."""

from __future__ import annotations

import threading

import pytest

from airflow_mlplatform.exceptions import NotebookExecutionError, NotebookStoppedError
from airflow_mlplatform.runners.notebook import (
    NotebookRunner,
    NotebookSpec,
    prepare,
    run_notebook,
    scala_string,
)
from nbtools import write_notebook
from sparktools import needs_java, needs_toree, new_mark, wait_for_marked


def test_scala_string_literals_keep_quotes_unicode_and_control_characters():
    assert scala_string('it\'s "q" \\ é ✓ 🚀') == '"it\'s \\"q\\" \\\\ é ✓ 🚀"'
    assert scala_string("a\nb\tc") == '"a\\nb\\tc"'
    # Scala 2.12 reads \\uNNNN anywhere in the source, so a control character is concatenated
    assert scala_string("x\x01y") == '("x" + 1.toChar.toString + "y")'
    assert scala_string("\\u0041") == '"\\\\u0041"'


@needs_toree
@pytest.mark.slow
def test_scala_cell_failure_names_the_cell_and_leaves_no_jvm(tmp_path):
    nb = write_notebook(
        tmp_path / "fails.ipynb",
        [
            ("parameters", 'val reason = "x"'),
            'val ok = 1\nthrow new IllegalStateException("the data is bad: " + reason)',
            "val never = 2",
        ],
        kernel="apache_toree_scala",
        language="scala",
    )
    mark = new_mark()
    spec = NotebookSpec(
        notebook=str(nb),
        output_path=str(tmp_path / "out" / "fails.ipynb"),
        parameters={"reason": "négatif"},
        # no SparkContext: the failure case needs only the Scala interpreter
        env={"MLPLATFORM_TEST_MARK": mark, "TOREE_OPTS": "--nosparkcontext"},
        start_timeout=180,
    )
    with pytest.raises(NotebookExecutionError) as info:
        run_notebook(spec)
    message = str(info.value)
    assert info.value.cell_index == 2  # papermill's injected parameters cell is index 1
    assert "IllegalStateException" in message and "the data is bad: négatif" in message
    assert 'throw new IllegalStateException("the data is bad: " + reason)' in message
    wait_for_marked(mark, gone=True, timeout=20)


@needs_java
@pytest.mark.slow
def test_kill_takes_the_pyspark_sessions_jvm_down_with_the_kernel(tmp_path):
    nb = write_notebook(
        tmp_path / "long.ipynb",
        [
            "from airflow_mlplatform.runtime import spark_session\nspark = spark_session()",
            "import time\ntime.sleep(600)",
        ],
    )
    mark = new_mark()
    env = {
        "MLPLATFORM_TEST_MARK": mark,
        "MLPLATFORM_SPARK": '{"master": "local[1]", "conf": {"spark.ui.enabled": "false"}}',
    }
    runner = NotebookRunner(
        prepare(NotebookSpec(notebook=str(nb), output_path=str(tmp_path / "o.ipynb"), env=env))
    )
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        jvm = wait_for_marked(mark, gone=False, timeout=300)  # the session's JVM is up
        runner.kill()
        thread.join(60)
        assert not thread.is_alive()
        assert errors and isinstance(errors[0], NotebookStoppedError)  # killed, not died on its own
        wait_for_marked(mark, gone=True, timeout=30)
        assert jvm
    finally:
        runner.kill()
        thread.join(5)
