"""Validation: every error, each with file, line and column, what is wrong and what was expected."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from airflow_mlplatform.exceptions import MLPlatformError, WorkflowError, WorkflowValidationError
from airflow_mlplatform.workflow import read_workflow, validate_files
from airflow_mlplatform.workflow.registry import STEP_TYPES
from airflow_mlplatform.workflow.source import read_source
from airflow_mlplatform.workflow.validate import check_source

DATA = Path(__file__).parent / "data"


def check_text(text: str, tmp_path: Path, name: str = "wf.yaml") -> list[tuple[int | None, int | None, str]]:
    path = tmp_path / name
    path.write_text(text)
    return [(e.line, e.column, e.message) for e in validate_files([path])]


def test_every_error_of_a_bad_file_with_line_and_column():
    errors = validate_files([DATA / "bad.yaml"])
    found = [(e.line, e.column, e.message) for e in errors]
    expected = [
        (4, 30, "default of parameter 'C' must be of type number"),
        (9, 15, "file 'missing.ipynb' does not exist"),
        (14, 14, "compute profile 'no-such-profile' is "),  # unknown, or not defined in the configured file
        (16, 15, "parameter 'epochs' of step 'train' must be of type integer"),
        (17, 13, "step 'prep' has no output 'nope'; declared outputs: data"),
        (18, 14, "reference to unknown step 'ghost'"),
        (19, 11, "reference to unknown parameter 'lr'"),
        (20, 9, "duplicate step id 'train' (first used on line 11)"),
        (21, 11, "unknown step type 'flink' in step 'train'; expected one of: notebook, r, tfjob"),
        (22, 9, "dependency cycle: a -> b -> a"),
        (29, 14, "retries must be an integer, got a string ('many')"),
        (30, 5, "unknown field 'colour' in step 'b' of type bash; expected one of: id, type"),
    ]
    assert len(found) == len(expected), "\n".join(map(str, found))
    for (line, col, msg), (eline, ecol, emsg) in zip(found, expected, strict=True):
        assert (line, col) == (eline, ecol), msg
        assert emsg in msg
    assert all(e.file == str(DATA / "bad.yaml") for e in errors)
    assert str(errors[0]).startswith(f"{DATA / 'bad.yaml'}:4:30: ")


def test_validation_error_is_a_provider_error_listing_all():
    with pytest.raises(WorkflowValidationError) as info:
        read_workflow(DATA / "bad.yaml")
    assert isinstance(info.value, MLPlatformError)
    assert len(info.value.errors) == 12
    assert str(info.value).count("\n") == 11


def test_cli_validate_prints_every_error_and_exits_non_zero():
    cli = [sys.executable, "-m", "airflow_mlplatform.cli", "workflow", "validate"]
    bad = subprocess.run(
        [*cli, str(DATA / "bad.yaml"), str(DATA / "mixed.yaml")], capture_output=True, text=True
    )
    assert bad.returncode == 1
    lines = [line for line in bad.stderr.splitlines() if line.startswith(str(DATA / "bad.yaml"))]
    assert len(lines) == 12
    assert "12 error(s) in 1 of 2 file(s)" in bad.stderr
    good = subprocess.run([*cli, str(DATA / "mixed.yaml")], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert "1 workflow file(s) valid" in good.stdout
    folder = subprocess.run([*cli, str(DATA.parents[2] / "example_dags" / "workflows")], capture_output=True,
                            text=True, cwd=DATA.parents[2] / "example_dags")  # fmt: skip
    assert folder.returncode == 0, folder.stderr
    assert "2 workflow file(s) valid" in folder.stdout


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    errors = check_text("version: 1\nid: x\nsteps:\n  - id: a\n    type: [bash\n", tmp_path)
    assert len(errors) == 1
    line, col, msg = errors[0]
    assert msg.startswith("not valid YAML/JSON")
    assert line == 6 and col == 1


def test_duplicate_keys_are_errors_not_silently_overwritten(tmp_path):
    errors = check_text("version: 1\nid: x\nid: y\nsteps: []\n", tmp_path)
    assert errors == [(3, 1, "duplicate key 'id' (first written on line 2); each key may appear once")]


def test_json_is_accepted_with_positions(tmp_path):
    doc = {
        "version": 1,
        "id": "j",
        "steps": [{"id": "a", "type": "bash", "command": "echo 1", "retries": "x"}],
    }
    text = json.dumps(doc, indent=2)
    errors = check_text(text, tmp_path, "wf.json")
    assert [(line, msg) for line, _, msg in errors] == [(9, "retries must be an integer, got a string ('x')")]
    doc["steps"][0]["retries"] = 1
    (tmp_path / "ok.json").write_text(json.dumps(doc))
    assert read_workflow(tmp_path / "ok.json").steps[0].task_kwargs == {"retries": 1}


def test_top_level_problems(tmp_path):
    errors = check_text("version: 2\nid: 'bad id'\nschedule: sometimes\nsteps: []\nowner: me\n", tmp_path)
    msgs = [m for _, _, m in errors]
    assert any(m.startswith("version must be 1") for m in msgs)
    assert any(m.startswith("id (the DAG id) must be") for m in msgs)
    assert any(m.startswith("schedule must be null, a cron expression") for m in msgs)
    assert any(m.startswith("steps must be a non-empty list") for m in msgs)
    assert any(m.startswith("unknown field 'owner' in the workflow") for m in msgs)


def test_references_only_in_templated_fields_and_well_formed(tmp_path):
    text = """\
version: 1
id: x
steps:
  - id: a
    type: notebook
    notebook: ../nb.ipynb
    kernel_name: ${{ params.k }}
    parameters: {p: "${{ steps.a.output.x }}", q: "${{ steps.a.outputs.x }}"}
"""
    (tmp_path / "nb.ipynb").write_text("{}")
    (tmp_path / "sub").mkdir()
    errors = check_text(text, tmp_path / "sub")
    msgs = {(line, m.split(";")[0]) for line, _, m in errors}
    assert (
        7,
        "field 'kernel_name' of step 'a' is not templated, so it cannot hold references (${{ ... }})",
    ) in msgs
    assert (8, "bad reference '${{ steps.a.output.x }}'") in msgs
    assert (8, "step 'a' refers to its own output 'x'") in msgs
    assert len(errors) == 3


def test_step_type_whose_operator_is_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(
        STEP_TYPES, "r", replace(STEP_TYPES["r"], operator="airflow_mlplatform.operators.nope:X")
    )
    (tmp_path / "a.R").write_text("1\n")
    errors = check_text("version: 1\nid: x\nsteps:\n  - id: a\n    type: r\n    script: a.R\n", tmp_path)
    assert errors == [
        (
            5,
            11,
            "step type 'r' needs airflow_mlplatform.operators.nope.X, which cannot be imported here "
            "(install the provider extra for it, or a newer provider)",
        )
    ]


def test_known_compute_profile_passes(tmp_path, monkeypatch):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("profiles:\n  cpu-small:\n    backend: local\n")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(profiles))
    (tmp_path / "n.ipynb").write_text("{}")
    text = "version: 1\nid: x\nsteps:\n  - {id: a, type: notebook, notebook: n.ipynb, compute: %s}\n"
    assert check_text(text % "cpu-small", tmp_path) == []
    [(line, _, msg)] = check_text(text % "gpu-huge", tmp_path)
    assert line == 4 and "known profiles: cpu-small" in msg


def test_one_of_and_required_fields(tmp_path):
    text = "version: 1\nid: x\nsteps:\n  - {id: a, type: rapids}\n  - {id: b, type: valohai, project: p}\n"
    msgs = [m for _, _, m in check_text(text, tmp_path)]
    assert "step 'a' needs exactly one of: callable, script" in msgs
    assert any(m.startswith("step 'b' of type valohai needs field 'step'") for m in msgs)


def test_model_of_a_valid_workflow():
    wf = read_workflow(DATA / "mixed.yaml")
    assert [s.id for s in wf.steps] == ["make", "total", "double", "report"]
    report = wf.steps[-1]
    assert report.upstream == ["make", "total", "double"]
    assert report.kwargs["env"]["FIXED"] == "7"  # env values are strings
    assert wf.params["n"].type == "integer" and wf.params["n"].default == 4
    assert wf.groups["inner"].parent == "compute"


def test_read_source_keeps_marks_of_keys_and_values():
    src = read_source("a:\n  b: [1, {c: x}]\n", file="f.yaml")
    assert src.data == {"a": {"b": [1, {"c": "x"}]}}
    assert src.value_marks[("a", "b", 1, "c")] == (2, 14)
    assert src.key_marks[("a", "b")] == (2, 3)
    err = src.error(("a", "b", 1, "zzz"), "m")
    assert isinstance(err, WorkflowError) and (err.line, err.column) == (2, 10)


def test_check_source_rejects_non_mapping():
    with pytest.raises(WorkflowValidationError, match="a workflow must be a mapping"):
        check_source(read_source("- 1\n"))


def test_relative_folders_are_checked_and_tfjob_runs_in_the_workflow_folder(tmp_path):
    text = "version: 1\nid: x\nsteps:\n  - {id: a, type: bash, command: ls, cwd: nowhere}\n"
    [(line, _, msg)] = check_text(text, tmp_path)
    assert line == 4 and msg.startswith("field 'cwd' of step 'a': folder 'nowhere' does not exist")
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nid: x\nsteps:\n  - {id: t, type: tfjob, command: [python, t.py]}\n"
    )
    assert read_workflow(tmp_path / "wf.yaml").steps[0].kwargs["cwd"] == str(tmp_path.resolve())


def test_yaml_booleans_are_yaml_1_2_like_the_schema_sees_them():
    src = read_source("on: yes\nflags: [no, off, true, False]\n")
    assert src.data == {"on": "yes", "flags": ["no", "off", True, False]}


def test_compute_profile_with_overrides(tmp_path, monkeypatch):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("profiles:\n  cpu-small:\n    backend: local\n")
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(profiles))
    (tmp_path / "n.ipynb").write_text("{}")
    text = "version: 1\nid: x\nsteps:\n  - id: a\n    type: notebook\n    notebook: n.ipynb\n    compute:\n%s"
    good = "      profile: cpu-small\n      requests: {memory: 2Gi}\n"
    (tmp_path / "good.yaml").write_text(text % good)
    step = read_workflow(tmp_path / "good.yaml").steps[0]
    assert step.kwargs["compute"] == "cpu-small"
    assert step.kwargs["compute_overrides"] == {"requests": {"memory": "2Gi"}}
    [(line, _, msg)] = check_text(
        text % "      profile: cpu-small\n      requests: {memory: two gigs}\n", tmp_path
    )
    assert line == 8 and "two gigs" in msg
    [(line, _, msg)] = check_text(text % "      profile: nope\n", tmp_path)
    assert line == 8 and "compute profile 'nope' is not defined" in msg
    bash = "version: 1\nid: x\nsteps:\n  - {id: b, type: tfjob, command: x, compute: {profile: cpu-small}}\n"
    [(_, _, msg)] = check_text(bash, tmp_path)
    assert msg.startswith("compute must be a profile name, got a mapping")
