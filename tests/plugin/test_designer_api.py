"""The designer's JSON API over Airflow's api-server app, through the workflow validator,
code generator and loader."""

from __future__ import annotations

import difflib
import json
import os
import shutil

import pytest

from repo_paths import REPO

API = "/mlplatform/api/designer"


def _doc(**over):
    doc = {
        "version": 1,
        "id": "designer_wf",
        "params": {"C": {"type": "number", "default": 1.0}},
        "steps": [
            {"id": "prepare", "type": "notebook", "notebook": "../notebooks/prepare.ipynb",
             "outputs": ["train_path"]},
            {"id": "train", "type": "notebook", "notebook": "../notebooks/train.ipynb",
             "parameters": {"C": "${{ params.C }}", "train_path": "${{ steps.prepare.outputs.train_path }}"}},
        ],
    }  # fmt: skip
    doc.update(over)
    return doc


def test_palette_comes_from_the_registry_and_schema(client, as_viewer):
    from airflow_mlplatform.workflow.registry import STEP_TYPES
    from airflow_mlplatform.workflow.schema import build_schema

    body = client.get(f"{API}/palette", headers=as_viewer).json()
    assert [t["type"] for t in body["step_types"]] == list(STEP_TYPES)
    nb = next(t for t in body["step_types"] if t["type"] == "notebook")
    assert nb["schema"] == build_schema()["$defs"]["step_notebook"]
    assert nb["file_kinds"] == ["ipynb"] and nb["outputs_ports"] is True
    assert body["document_schema"]["properties"]["layout"]["type"] == "object"


def test_profiles_from_the_configured_file(client, as_viewer, tmp_path, monkeypatch):
    f = tmp_path / "profiles.yaml"
    f.write_text(
        "profiles:\n  gpu-small: {backend: kubernetes, image: img:1, gpus: 1, requests: {cpu: '2'}}\n"
    )
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__COMPUTE_PROFILES", str(f))
    body = client.get(f"{API}/profiles", headers=as_viewer).json()
    assert body == {"profiles": [{"name": "gpu-small", "backend": "kubernetes",
                                  "description": "kubernetes, image img:1, 1 GPU, cpu 2"}]}  # fmt: skip


def test_catalog_inspects_parameters_and_caches_by_mtime(client, as_viewer, designer_dirs):
    from airflow_mlplatform.plugin import catalog

    root = designer_dirs["root"]
    body = client.get(f"{API}/catalog", headers=as_viewer).json()
    assert body["roots"] == [root.resolve().as_posix()]
    files = {f["path"]: f for f in body["files"]}
    assert set(files) == {"notebooks/prepare.ipynb", "notebooks/train.ipynb", "notebooks/evaluate.ipynb",
                          "notebooks/score.ipynb", "r/fit_mpg.R", "r/mpg_report.Rmd"}  # fmt: skip
    train = files["notebooks/train.ipynb"]
    assert train["kind"] == "notebook" and train["step_type"] == "notebook"
    assert train["ref"] == "../notebooks/train.ipynb"
    assert {p["name"]: (p["type"], p["default"]) for p in train["parameters"]} == {
        "C": ("number", 1.0), "train_path": ("string", ""), "max_iter": ("integer", 500)
    }  # fmt: skip
    assert train["outputs"] == ["accuracy", "model_path"]
    rmd = files["r/mpg_report.Rmd"]
    assert (rmd["kind"], rmd["step_type"]) == ("rmd", "r")
    assert [(p["name"], p["default"]) for p in rmd["parameters"]] == [("model_path", ""), ("title", "mtcars")]
    assert [p["name"] for p in files["r/fit_mpg.R"]["parameters"]] == ["predictors", "seed", "train_fraction"]

    # cached: an unchanged file is not read again; a changed one is
    nb = root / "notebooks" / "train.ipynb"
    cached = catalog._cache[str(nb.resolve())][2]
    again = {f["path"]: f for f in client.get(f"{API}/catalog", headers=as_viewer).json()["files"]}
    assert again["notebooks/train.ipynb"] == cached
    data = json.loads(nb.read_text())
    cell = next(c for c in data["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = "alpha: float = 0.1  # regularisation\n"
    nb.write_text(json.dumps(data))
    os.utime(nb, ns=(1, 10**18))
    changed = {f["path"]: f for f in client.get(f"{API}/catalog", headers=as_viewer).json()["files"]}
    assert changed["notebooks/train.ipynb"]["parameters"] == [
        {"name": "alpha", "type": "number", "default": 0.1, "help": "regularisation"}
    ]


def test_catalog_skips_symlinks_out_of_the_root(client, as_viewer, designer_dirs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(REPO / "example_dags" / "notebooks" / "train.ipynb", outside / "secret.ipynb")
    (designer_dirs["root"] / "link").symlink_to(outside)
    (designer_dirs["root"] / "secret.ipynb").symlink_to(outside / "secret.ipynb")
    paths = [f["path"] for f in client.get(f"{API}/catalog", headers=as_viewer).json()["files"]]
    assert not [p for p in paths if "secret" in p]


def test_validate_maps_errors_to_step_and_field(client, as_viewer, designer_dirs):
    doc = _doc()
    r = client.post(f"{API}/validate", json={"document": doc}, headers=as_viewer).json()
    assert r == {"valid": True, "errors": []}
    doc["steps"][1]["parameters"]["train_path"] = "${{ steps.nope.outputs.x }}"
    doc["steps"][0]["notebook"] = "../notebooks/missing.ipynb"
    doc["steps"][0]["compute"] = "no-such-profile"
    doc["params"]["C"]["type"] = "numbr"
    del doc["steps"][1]["notebook"]
    r = client.post(f"{API}/validate", json={"document": doc}, headers=as_viewer).json()
    assert not r["valid"]
    where = {(e["step"], e["field"]) for e in r["errors"]}
    assert where == {(None, "params.C.type"), ("prepare", "notebook"), ("prepare", "compute"),
                     ("train", "notebook"), ("train", "parameters.train_path")}  # fmt: skip
    cycle = _doc()
    cycle["steps"][0]["depends_on"] = ["train"]
    errors = client.post(f"{API}/validate", json={"document": cycle}, headers=as_viewer).json()["errors"]
    assert any("cycle" in e["message"] for e in errors), errors


def test_preview_is_the_code_generator(client, as_viewer, designer_dirs):
    r = client.post(f"{API}/preview", json={"document": _doc()}, headers=as_viewer).json()
    assert r["errors"] == []
    assert "id: designer_wf" in r["yaml"]
    assert 'dag_id="designer_wf"' in r["python"] and "NotebookOperator(" in r["python"]
    compile(r["python"], "preview.py", "exec")


def test_save_create_conflicts_and_the_loader_builds_it(client, as_admin, designer_dirs, caplog):
    from airflow_mlplatform.workflow import load_workflows, validate_files

    wf = designer_dirs["workflows"]
    doc = _doc(layout={"prepare": {"x": 0, "y": 0}, "train": {"x": 240, "y": 0}})
    with caplog.at_level("INFO", logger="airflow_mlplatform.plugin.designer_api"):
        r = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": doc}, headers=as_admin)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["path"] == "designer_wf.yaml" and saved["dag_id"] == "designer_wf"
    assert r.headers["ETag"] == saved["etag"]
    assert "saved by admin" in caplog.text
    assert validate_files([wf / "designer_wf.yaml"]) == []
    dag = load_workflows(wf)["designer_wf"]
    assert sorted(dag.task_ids) == ["prepare", "train"]  # layout is not a step

    # creating it again, or saving with a stale ETag: 409, file unchanged
    again = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": doc}, headers=as_admin)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    opened = client.get(f"{API}/workflows/designer_wf.yaml", headers=as_admin)
    assert opened.json()["etag"] == saved["etag"] == opened.headers["ETag"]
    assert opened.json()["document"]["layout"]["train"] == {"x": 240, "y": 0}
    (wf / "designer_wf.yaml").write_text((wf / "designer_wf.yaml").read_text() + "# edited by hand\n")
    stale = client.put(
        f"{API}/workflows/designer_wf.yaml",
        json={"document": doc},
        headers={**as_admin, "If-Match": saved["etag"]},
    )
    assert stale.status_code == 409 and "changed since you opened it" in stale.json()["detail"]
    assert (wf / "designer_wf.yaml").read_text().endswith("# edited by hand\n")
    fresh = client.get(f"{API}/workflows/designer_wf.yaml", headers=as_admin).json()
    doc["params"]["C"]["default"] = 2.0
    ok = client.put(
        f"{API}/workflows/designer_wf.yaml",
        json={"document": doc},
        headers={**as_admin, "If-Match": fresh["etag"]},
    )
    assert ok.status_code == 200 and ok.json()["etag"] != fresh["etag"]
    text = (wf / "designer_wf.yaml").read_text()
    assert "default: 2.0" in text and text.endswith("# edited by hand\n")
    assert not [p for p in wf.iterdir() if p.name.endswith(".tmp")]  # atomic: no temp files left

    listing = client.get(f"{API}/workflows", headers=as_admin).json()
    assert listing["writable"] is True and listing["folder"] == wf.resolve().as_posix()
    assert listing["workflows"] == [{"path": "designer_wf.yaml", "dag_id": "designer_wf", "draft": False}]


def test_invalid_is_refused_unless_saved_as_draft(client, as_admin, designer_dirs):
    from airflow_mlplatform.workflow import load_workflows

    wf = designer_dirs["workflows"]
    doc = _doc()
    del doc["steps"][0]["notebook"]
    r = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": doc}, headers=as_admin)
    assert r.status_code == 422
    assert {"step": "prepare", "field": "notebook"}.items() <= r.json()["detail"]["errors"][0].items()
    assert not list(wf.iterdir())
    d = client.put(
        f"{API}/workflows/designer_wf.yaml", json={"document": doc, "draft": True}, headers=as_admin
    )
    assert d.status_code == 200 and d.json()["path"] == "designer_wf.draft.yaml"
    assert load_workflows(wf) == {}  # the loader skips drafts
    listing = client.get(f"{API}/workflows", headers=as_admin).json()["workflows"]
    assert listing == [{"path": "designer_wf.draft.yaml", "dag_id": "designer_wf", "draft": True}]
    # saving it for real removes the draft
    ok = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": _doc()}, headers=as_admin)
    assert ok.status_code == 200
    assert sorted(p.name for p in wf.iterdir()) == ["designer_wf.yaml"]


def test_saving_a_lightly_edited_quickstart_changes_only_the_edit(client, as_admin, designer_dirs):
    wf = designer_dirs["workflows"]
    original = (REPO / "example_dags" / "workflows" / "quickstart_ml_pipeline.yaml").read_text()
    (wf / "quickstart.yaml").write_text(original)
    opened = client.get(f"{API}/workflows/quickstart.yaml", headers=as_admin).json()
    assert opened["yaml"] == original and opened["writable"] is True
    doc = opened["document"]
    doc["steps"][1]["parameters"]["C"] = 0.5
    doc["layout"] = {"prepare": {"x": 0, "y": 0}}
    r = client.put(
        f"{API}/workflows/quickstart.yaml",
        json={"document": doc},
        headers={**as_admin, "If-Match": opened["etag"]},
    )
    assert r.status_code == 200, r.text
    diff = [
        line
        for line in difflib.unified_diff(
            original.splitlines(), (wf / "quickstart.yaml").read_text().splitlines(), n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == ["-      C: ${{ params.C }}", "+      C: 0.5", "+layout:", "+  prepare: {x: 0, y: 0}"]


def test_a_float_saved_from_the_browser_stays_a_float(client, as_admin, designer_dirs):
    wf = designer_dirs["workflows"]
    # a browser's JSON has one number type: the designer sends 1.0 as 1 (and 0.5 as 0.5)
    doc = _doc(params={"C": {"type": "number", "default": 1}, "n": 3})
    doc["steps"][1]["parameters"]["alpha"] = 0.5
    r = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": doc}, headers=as_admin)
    assert r.status_code == 200, r.text
    text = (wf / "designer_wf.yaml").read_text()
    assert "default: 1.0" in text and "n: 3" in text  # a number param's default; an integer stays one
    opened = client.get(f"{API}/workflows/designer_wf.yaml", headers=as_admin).json()
    assert type(opened["document"]["params"]["C"]["default"]) is float

    # an existing float edited to a whole number (typed 2.0, sent as 2) is written as 2.0;
    # an unchanged 1.00 that comes back as 1 is left as written
    (wf / "designer_wf.yaml").write_text(text.replace("default: 1.0", "default: 1.00"))
    opened = client.get(f"{API}/workflows/designer_wf.yaml", headers=as_admin).json()
    edited = opened["document"]
    edited["params"]["C"]["default"] = 1
    edited["steps"][1]["parameters"]["alpha"] = 2
    ok = client.put(
        f"{API}/workflows/designer_wf.yaml",
        json={"document": edited},
        headers={**as_admin, "If-Match": opened["etag"]},
    )
    assert ok.status_code == 200, ok.text
    saved = (wf / "designer_wf.yaml").read_text()
    assert "alpha: 2.0" in saved and "default: 1.00" in saved

    # a notebook dropped from the catalog: its parameters cell says C = 1.0 (and max_iter = 500)
    dropped = _doc(id="dropped_wf")
    dropped["steps"][1]["parameters"].update(C=1, max_iter=500)
    r = client.put(f"{API}/workflows/dropped_wf.yaml", json={"document": dropped}, headers=as_admin)
    assert r.status_code == 200, r.text
    text = (wf / "dropped_wf.yaml").read_text()
    assert "C: 1.0" in text and "max_iter: 500" in text


@pytest.mark.parametrize(
    "path",
    ["../escape.yaml", "%2Fetc%2Fpasswd.yaml", "sub/../../x.yaml", ".hidden.yaml", "x.py", "a%00b.yaml"],
)
def test_paths_stay_in_the_workflows_folder(client, as_admin, designer_dirs, path):
    r = client.put(f"{API}/workflows/{path}", json={"document": _doc()}, headers=as_admin)
    assert r.status_code in (400, 404), (path, r.status_code, r.text)
    assert not (designer_dirs["root"] / "escape.yaml").exists()


def test_symlink_out_of_the_workflows_folder_is_refused(client, as_admin, designer_dirs, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (designer_dirs["workflows"] / "out").symlink_to(outside)
    r = client.put(f"{API}/workflows/out/x.yaml", json={"document": _doc()}, headers=as_admin)
    assert r.status_code == 400 and "outside" in r.json()["detail"]
    assert not list(outside.iterdir())


def test_json_bodies_only_and_size_limited(client, as_admin, designer_dirs):
    r = client.post(
        f"{API}/validate", content="version: 1", headers={**as_admin, "Content-Type": "text/yaml"}
    )
    assert r.status_code == 415
    big = json.dumps({"document": {"description": "x" * (3 * 1024 * 1024)}})
    r = client.post(f"{API}/validate", content=big, headers={**as_admin, "Content-Type": "application/json"})
    assert r.status_code == 413


def test_read_only_folder_is_reported_and_save_refused(client, as_admin, designer_dirs, monkeypatch):
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__DESIGNER_READ_ONLY", "True")
    assert client.get(f"{API}/workflows", headers=as_admin).json()["writable"] is False
    r = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": _doc()}, headers=as_admin)
    assert r.status_code == 403 and "read-only" in r.json()["detail"] and "download" in r.json()["detail"]


def test_an_immutable_folder_is_read_only_even_for_root(client, as_admin, designer_dirs):
    import subprocess

    wf = designer_dirs["workflows"]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(wf)]).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        assert client.get(f"{API}/workflows", headers=as_admin).json()["writable"] is False
        r = client.put(f"{API}/workflows/designer_wf.yaml", json={"document": _doc()}, headers=as_admin)
        assert r.status_code == 403
    finally:
        subprocess.run(["chattr", "-i", str(wf)], check=True)


def test_run_info_links_into_airflows_ui(client, as_viewer, as_admin, designer_dirs):
    client.put(f"{API}/workflows/designer_wf.yaml", json={"document": _doc()}, headers=as_admin)
    r = client.get(f"{API}/workflows/designer_wf.yaml/run-info", headers=as_viewer).json()
    assert r == {"dag_id": "designer_wf", "dag_exists": False, "grid_url": "/dags/designer_wf",
                 "trigger_url": "/dags/designer_wf"}  # fmt: skip
    missing = client.get(f"{API}/workflows/nope.yaml/run-info", headers=as_viewer)
    assert missing.status_code == 404
