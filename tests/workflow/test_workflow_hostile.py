"""Hostile and broken workflow files: bounded, clear errors, one bad file never hides the others."""

from __future__ import annotations

import pytest

from airflow_mlplatform.exceptions import WorkflowError, WorkflowValidationError
from airflow_mlplatform.workflow import load_workflows, read_workflow, validate_files
from airflow_mlplatform.workflow import source as source_mod
from airflow_mlplatform.workflow.source import read_source

GOOD = "version: 1\nid: good\nsteps:\n  - {id: a, type: bash, command: 'echo a'}\n"


def _bomb(levels: int) -> str:
    """The billion-laughs shape: each level repeats the previous one nine times (693 bytes at 9 levels)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_cheaply():
    with pytest.raises(WorkflowError, match=r"aliases.*CVE-2019-11253") as info:
        read_source(_bomb(9))
    assert info.value.line is not None


def test_a_few_aliases_still_work():
    src = read_source("base: &b {image: x, retries: 2}\nuse: [*b, *b]\n")
    assert src.data["use"] == [{"image": "x", "retries": 2}] * 2


@pytest.mark.parametrize("depth", [500, 50_000])
def test_deep_nesting_is_a_clear_error_not_a_crash(depth):
    with pytest.raises(WorkflowError, match="nesting deeper than 64"):
        read_source("a: " + "[" * depth + "]" * depth)


def test_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(source_mod, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.yaml"
    path.write_text(GOOD + "# " + "x" * 2000 + "\n")
    with pytest.raises(WorkflowError, match=r"1000 are read"):
        read_workflow(path)


def test_step_count_limit(tmp_path, monkeypatch):
    from airflow_mlplatform.workflow import validate

    monkeypatch.setattr(validate, "MAX_STEPS", 5)
    steps = "".join(f"  - {{id: s{i}, type: bash, command: x}}\n" for i in range(6))
    [error] = validate_files([_write(tmp_path, "many.yaml", f"version: 1\nid: many\nsteps:\n{steps}")])
    assert "6 steps; a workflow holds at most 5" in error.message


def test_a_long_reversed_chain_sorts_without_recursion(tmp_path):
    n = 2000
    steps = "".join(
        f"  - {{id: s{i}, type: bash, command: x, depends_on: [s{i + 1}]}}\n" for i in range(n - 1)
    )
    steps += f"  - {{id: s{n - 1}, type: bash, command: x}}\n"
    wf = read_workflow(_write(tmp_path, "chain.yaml", f"version: 1\nid: chain\nsteps:\n{steps}"))
    assert [s.id for s in wf.steps[:2]] == [f"s{n - 1}", f"s{n - 2}"]


def test_cycle_still_reported(tmp_path):
    text = ("version: 1\nid: c\nsteps:\n  - {id: a, type: bash, command: x, depends_on: [b]}\n"
            "  - {id: b, type: bash, command: x, depends_on: [a]}\n")  # fmt: skip
    [error] = validate_files([_write(tmp_path, "c.yaml", text)])
    assert "dependency cycle: a -> b -> a" in error.message


def test_non_utf8_file_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nid: x\ndescription: caf\xe9\n")
    [error] = validate_files([path])
    assert "not UTF-8" in error.message and (error.line, error.column) == (3, 17)


def test_load_workflows_log_isolates_every_bad_file(tmp_path, monkeypatch, caplog):
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "bomb.yaml", _bomb(9))
    _write(tmp_path, "deep.yaml", "a: " + "[" * 50_000 + "]" * 50_000)
    (tmp_path / "latin1.yaml").write_bytes(b"id: caf\xe9\n")
    from airflow_mlplatform.workflow import validate

    def explode(*a, **k):
        raise RecursionError("maximum recursion depth exceeded")

    boom = _write(tmp_path, "zz-boom.yaml", GOOD.replace("good", "boom"))
    real = validate.check_source
    monkeypatch.setattr(
        validate, "check_source", lambda src, **k: explode() if src.file == str(boom) else real(src, **k)
    )
    dags = load_workflows(tmp_path, on_error="log")
    assert list(dags) == ["good"]
    logged = caplog.text
    for name in ("bomb.yaml", "deep.yaml", "latin1.yaml", "zz-boom.yaml"):
        assert name in logged
    assert "RecursionError" in logged
    with pytest.raises(WorkflowValidationError) as info:
        load_workflows(tmp_path, on_error="raise")
    assert len({e.file for e in info.value.errors}) == 4


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("id: '..'\nsteps: [{id: a, type: bash, command: x}]", "id \\(the DAG id\\)"),
        ("id: x\nschedule: '99 99 * * *'\nsteps: [{id: a, type: bash, command: x}]", "schedule must be"),
        ("id: x\nparams: {n: {type: integer, default: 1, minimum: 5}}\nsteps: [{id: a, type: bash, command: x}]",
         "violates its own minimum 5"),
        ("id: x\ndefault_args: {retries: -1}\nsteps: [{id: a, type: bash, command: x}]", "retries must be 0 or more"),
        ("id: x\nsteps: [{id: a, type: bash, command: x, retries: -3}]", "retries must be 0 or more"),
    ],
)  # fmt: skip
def test_validation_gaps(tmp_path, body, match):
    errors = validate_files([_write(tmp_path, "v.yaml", f"version: 1\n{body}\n")])
    assert any(__import__("re").search(match, e.message) for e in errors), [e.message for e in errors]


def test_output_paths_never_climb_out_of_the_base():
    from airflow_mlplatform.storage import _safe

    assert _safe("..") == "__" and _safe(".") == "_" and _safe("a..b") == "a..b"


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path
