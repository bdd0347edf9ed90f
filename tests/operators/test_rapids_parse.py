"""RapidsDaskOperator: bad input at parse time, the callable's stdout stream, DaskJob start-up bound."""

from __future__ import annotations

import contextlib
import faulthandler
import subprocess
import sys

import pytest

from airflow_mlplatform.exceptions import ConfigurationError, UnknownComputeProfileError
from airflow_mlplatform.operators.rapids import RapidsDaskOperator, _Tee


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cluster": "k8s"}, ConfigurationError, "cluster 'k8s' is unknown"),
        ({"compute": "nope"}, UnknownComputeProfileError, "compute profile 'nope' is unknown"),
        ({"compute": "nope", "cluster": "k8s"}, ConfigurationError, "is unknown"),
    ],
)
def test_bad_input_fails_when_the_dag_file_is_parsed(kwargs, error, message):
    with pytest.raises(error, match=message):
        RapidsDaskOperator(task_id="t", python_callable=len, **kwargs)


def test_a_templated_cluster_is_checked_when_the_task_runs():
    op = RapidsDaskOperator(task_id="t", python_callable=len, cluster="{{ params.cluster }}")
    assert op.cluster == "{{ params.cluster }}"


def test_the_callables_stdout_is_a_real_text_stream_and_still_parsed(tmp_path):
    from airflow_mlplatform.values import StreamParser

    parser = StreamParser()
    out = tmp_path / "out.txt"
    with open(out, "w") as target, contextlib.redirect_stdout(_Tee(target, parser)):
        print('::mlplatform::record {"name": "n", "value": 3}', flush=True)
        assert sys.stdout.fileno() == target.fileno()
        assert sys.stdout.encoding == target.encoding and sys.stdout.isatty() is False
        sys.stdout.flush()
        subprocess.run([sys.executable, "-c", "print('from a subprocess')"], stdout=sys.stdout, check=True)
        faulthandler.dump_traceback(file=sys.stdout)
        sys.stdout.writelines(['{"loss": 0.5}\n'])
    text = out.read_text()
    assert "from a subprocess" in text and "test_the_callables_stdout" in text
    outputs = parser.close()
    assert outputs.values == {"n": 3}
    assert outputs.metrics == {"loss": 0.5}


def test_a_daskjob_start_up_is_bounded_by_startup_timeout_not_the_whole_job(k8s, tmp_path):
    import time

    from airflow_mlplatform.compute import build_profile
    from airflow_mlplatform.runners import kube_job

    profile = build_profile(
        "dask", {"backend": "kubernetes", "image": "dask", "namespace": "default"}, where="test"
    )
    script = tmp_path / "job.py"
    script.write_text("print('hi')\n")
    ti = type("TI", (), {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 1})()
    for startup_timeout, expected in ((None, kube_job.DEFAULT_STARTUP_TIMEOUT), (42, 42)):
        op = RapidsDaskOperator(
            task_id="t",
            script=str(script),
            cluster="kubernetes",
            compute=profile,
            startup_timeout=startup_timeout,
        )
        job = op._kube_daskjob({"ti": ti}, str(script), {})
        assert job.startup_timeout == expected
        # the run itself: only the deadline rule of every kind (no execution_timeout: no limit)
        assert job.remaining() == pytest.approx(kube_job.NO_LIMIT, abs=60)
        assert time.time() < job.deadline
