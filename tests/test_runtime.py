"""runtime.record and friends, as a job would call them."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from airflow_mlplatform import runtime
from airflow_mlplatform.exceptions import RecordError
from airflow_mlplatform.values import parse_stdout


def test_record_round_trips_through_stdout(capsys):
    assert runtime.record("acc", 0.93) == 0.93
    runtime.record("text", 'quote " newline \n ✓')
    runtime.log_metrics(loss=0.1, bad=math.nan)
    out = parse_stdout(capsys.readouterr().out)
    assert out.values == {"acc": 0.93, "text": 'quote " newline \n ✓'}
    assert out.metric_rows == [{"loss": 0.1, "bad": None}]


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a/b", "x" * 251, 5, "metrics", "return_value"])
def test_bad_names_are_clear_errors(name):
    with pytest.raises(RecordError, match="cannot record a value named"):
        runtime.record(name, 1)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes"])
def test_non_json_values_are_clear_errors(value):
    with pytest.raises(RecordError, match="must be JSON-serializable"):
        runtime.record("v", value)


@pytest.mark.parametrize(
    ("value", "written"), [(math.inf, None), ({"nested": [1.0, math.nan]}, {"nested": [1.0, None]})]
)
def test_non_finite_floats_are_recorded_as_null_with_a_warning(value, written, capsys):
    assert runtime.record("v", value) is value
    out, err = capsys.readouterr()
    assert json.loads(out.split(" ", 1)[1]) == {"name": "v", "value": written}
    assert "'v' holds NaN or infinity" in err


def test_a_value_over_the_limit_says_to_write_a_file():
    with pytest.raises(
        RecordError, match=r"over the limit of 1048576; write it to a file under output_dir\(\)"
    ):
        runtime.record("big", "x" * (runtime.MAX_VALUE_BYTES + 1))


def test_numpy_values_get_a_hint():
    np = pytest.importorskip("numpy")
    with pytest.raises(RecordError, match=r"\.item\(\)"):
        runtime.record("v", np.float32(1.5))


def test_runtime_imports_only_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); import airflow_mlplatform.runtime; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['airflow_mlplatform']"


def test_output_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.OUTPUT_DIR_ENV, str(tmp_path / "out"))
    assert runtime.output_dir() == tmp_path / "out"
    assert (tmp_path / "out").is_dir()


def test_output_uri_names_where_files_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.OUTPUT_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(runtime.OUTPUT_URI_ENV, raising=False)
    assert runtime.output_uri("model.pkl") == f"{tmp_path}/model.pkl"
    monkeypatch.setenv(runtime.OUTPUT_URI_ENV, "s3://bucket/dag/run/task/try-1/")
    assert runtime.output_uri("model.pkl") == "s3://bucket/dag/run/task/try-1/model.pkl"
    assert runtime.output_uri() == "s3://bucket/dag/run/task/try-1/"
