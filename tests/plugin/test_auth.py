"""Every plugin route asks Airflow's auth manager: 401 anonymous, 403 without permission."""

from __future__ import annotations

import pytest

READ_ROUTES = [
    ("GET", "/mlplatform/api/me"),
    ("GET", "/mlplatform/api/designer/palette"),
    ("GET", "/mlplatform/api/designer/profiles"),
    ("GET", "/mlplatform/api/designer/catalog"),
    ("GET", "/mlplatform/api/designer/workflows"),
    ("GET", "/mlplatform/api/designer/workflows/x.yaml"),
    ("GET", "/mlplatform/api/designer/workflows/x.yaml/run-info"),
    ("GET", "/mlplatform/api/designer/hints?dag_id=x"),
    ("POST", "/mlplatform/api/designer/validate"),
    ("POST", "/mlplatform/api/designer/preview"),
    ("PUT", "/mlplatform/api/designer/workflows/x.yaml"),
    ("GET", "/mlplatform/outputs/d/r/t/1"),
    ("GET", "/mlplatform/outputs/d/r/t/1/files/a.txt"),
]
DOC = {"version": 1, "id": "auth_wf", "steps": [{"id": "a", "type": "bash", "command": "echo hi"}]}


@pytest.mark.parametrize(("method", "url"), READ_ROUTES)
def test_anonymous_gets_401_everywhere(client, method, url, designer_dirs):
    r = client.request(method, url, json={"document": DOC} if method != "GET" else None)
    assert r.status_code == 401, (url, r.status_code, r.text)
    assert r.json()["detail"] == "Not authenticated"


def test_a_forged_token_is_refused(client, designer_dirs):
    r = client.get("/mlplatform/api/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code in (401, 403)


def test_me_says_who_may_edit(client, as_admin, as_viewer, tokens):
    assert client.get("/mlplatform/api/me", headers=as_admin).json() == {"user": "admin", "can_edit": True}
    assert client.get("/mlplatform/api/me", headers=as_viewer).json() == {"user": "viewer", "can_edit": False}
    # the UI's own session cookie works as well as a bearer token
    cookie = client.get("/mlplatform/api/me", cookies={"_token": tokens["viewer"]})
    client.cookies.clear()
    assert cookie.status_code == 200 and cookie.json()["user"] == "viewer"


def test_viewer_reads_but_may_not_save(client, as_viewer, designer_dirs):
    assert client.get("/mlplatform/api/designer/catalog", headers=as_viewer).status_code == 200
    assert client.post("/mlplatform/api/designer/validate", json={"document": DOC}, headers=as_viewer).json()[
        "valid"
    ]
    r = client.put(
        "/mlplatform/api/designer/workflows/auth_wf.yaml", json={"document": DOC}, headers=as_viewer
    )
    assert r.status_code == 403
    assert "viewer" in r.json()["detail"] and "edit" in r.json()["detail"]
    assert not (designer_dirs["workflows"] / "auth_wf.yaml").exists()


def test_admin_saves(client, as_admin, designer_dirs):
    r = client.put(
        "/mlplatform/api/designer/workflows/auth_wf.yaml", json={"document": DOC}, headers=as_admin
    )
    assert r.status_code == 200, r.text
    assert (designer_dirs["workflows"] / "auth_wf.yaml").is_file()


def test_static_files_need_no_login_but_stay_in_their_folder(client):
    assert client.get("/mlplatform/static/..%2F__init__.py").status_code in (400, 404)
    assert client.get("/mlplatform/static/no-such-file.js").status_code == 404
