"""Workflow files are code: the switches platform engineers have (allowed roots, callable modules)."""

from __future__ import annotations

from airflow_mlplatform.workflow import validate_files

STEP = "version: 1\nid: t\nsteps:\n  - {id: a, type: notebook, notebook: %s}\n"


def _files(tmp_path):
    tree = tmp_path / "dags" / "team"
    tree.mkdir(parents=True)
    (tree / "ok.ipynb").write_text("{}")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.ipynb").write_text("{}")
    (tree / ".git").mkdir()  # the workflow's folder tree: its git work tree here
    return tree, outside


def test_paths_outside_the_workflow_tree_are_refused_by_default(tmp_path):
    tree, outside = _files(tmp_path)
    for bad in (str(outside / "x.ipynb"), "../../elsewhere/x.ipynb", "/etc/hostname"):
        wf = tree / "wf.yaml"
        wf.write_text(STEP % bad)
        [error] = validate_files([wf])
        assert "is outside the folders workflow files may use" in error.message
        assert "workflow_allowed_roots" in error.message
    (tree / "link.ipynb").symlink_to(outside / "x.ipynb")  # a symlink does not escape either
    (tree / "wf.yaml").write_text(STEP % "link.ipynb")
    assert "outside" in validate_files([tree / "wf.yaml"])[0].message
    (tree / "wf.yaml").write_text(STEP % "ok.ipynb")
    assert validate_files([tree / "wf.yaml"]) == []


def test_configured_roots_and_callable_modules(tmp_path, monkeypatch):
    tree, outside = _files(tmp_path)
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__WORKFLOW_ALLOWED_ROOTS", f"{tree},{outside}")
    (tree / "wf.yaml").write_text(STEP % (outside / "x.ipynb"))
    assert validate_files([tree / "wf.yaml"]) == []
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__WORKFLOW_CALLABLE_MODULES", "team_steps")
    py = "version: 1\nid: p\nsteps:\n  - {id: a, type: python, callable: '%s'}\n"
    (tree / "p.yaml").write_text(py % "os:system")
    [error] = validate_files([tree / "p.yaml"])
    assert "module 'os' is not one workflow files may call" in error.message
    (tree / "p.yaml").write_text(py % "team_steps.sub:run")
    assert validate_files([tree / "p.yaml"]) == []
