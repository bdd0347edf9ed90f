"""The output viewer: a real run's executed notebooks rendered (the failing cell marked), the
try's files downloadable, from a local output_base and from an in-memory fsspec filesystem;
the extra link points at it, or is '' when there is nothing to show."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest

from nbtools import write_notebook

# a 1x1 red PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
DAG_SRC = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow_mlplatform.links import OutputNotebookLink
    from airflow_mlplatform.operators.notebook import NotebookOperator


    def probe_links(ti):
        # OutputNotebookLink.get_link as the task runner calls it, in a worker
        def link(task_id):
            key = TaskInstanceKey(dag_id=ti.dag_id, task_id=task_id, run_id=ti.run_id, try_number=1)
            return OutputNotebookLink().get_link(None, ti_key=key)
        return {"ok_nb": link("ok_nb"), "plain": link("plain")}


    with DAG("viewer_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        ok = NotebookOperator(task_id="ok_nb", notebook="viewer_nbs/ok.ipynb", parameters={"n": 3})
        NotebookOperator(task_id="bad_nb", notebook="viewer_nbs/bad.ipynb")
        plain = BashOperator(task_id="plain", bash_command="echo plain")
        [ok, plain] >> PythonOperator(task_id="probe_links", python_callable=probe_links)
    """
)


@pytest.fixture(scope="module")
def viewer_run(run_dag, dags_folder):
    """One real run: a notebook that succeeds, one whose second cell raises, a bash task."""
    write_notebook(
        dags_folder / "viewer_nbs" / "ok.ipynb",
        [("parameters", "n = 1"),
         "from airflow_mlplatform.runtime import record\nprint('squares', [i * i for i in range(n)])\n"
         "record('total', n * 10)"],
    )  # fmt: skip
    write_notebook(
        dags_folder / "viewer_nbs" / "bad.ipynb",
        ["marker_ok = 1", "raise ValueError('the data is not there')", "print('never')"],
    )
    return run_dag(DAG_SRC, "viewer_dag", name="viewer_dag.py")


def _url(run, task, try_number=1):
    from airflow_mlplatform.links import output_page_url

    return output_page_url(
        dag_id="viewer_dag", run_id=run.dag_run.run_id, task_id=task, try_number=try_number
    )


def test_executed_notebook_page_and_downloads(client, as_viewer, viewer_run):
    assert viewer_run.task_states() == {
        "ok_nb": "success", "bad_nb": "failed", "plain": "success", "probe_links": "success"
    }  # fmt: skip
    r = client.get(_url(viewer_run, "ok_nb"), headers=as_viewer)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "sandbox" in csp and "connect-src 'none'" in csp and "allow-same-origin" not in csp
    page = r.text
    assert "squares [0, 1, 4]" in page  # the cell's output, with the injected n = 3
    assert "viewer_dag / ok_nb" in page and "This cell failed" not in page
    assert "execution_record.json" in page
    href = page.split('href="', 1)[0] and [
        h.split('"')[0] for h in page.split('href="')[1:] if "/files/" in h
    ]
    record_link = next(h for h in href if h.endswith("execution_record.json"))
    f = client.get(record_link, headers=as_viewer)
    assert f.status_code == 200
    assert f.headers["content-type"] == "application/octet-stream"
    assert f.headers["content-disposition"].startswith('attachment; filename="execution_record.json"')
    assert json.loads(f.content)["values"] == {"total": 30}


def test_failing_cell_is_marked(client, as_viewer, viewer_run):
    page = client.get(_url(viewer_run, "bad_nb"), headers=as_viewer).text
    assert "This cell failed" in page and "ValueError: the data is not there" in page
    assert "celltag_mlplatform-failed-cell" in page
    assert 'href="#failed-cell-1"' in page and 'id="failed-cell-1"' in page
    # the banner is right before the failing cell, not before the cells that ran fine
    assert page.index("marker_ok") < page.index('id="failed-cell-1"') < page.rindex("the data is not there")


def test_output_link_points_at_the_page_or_is_empty(client, as_viewer, viewer_run):
    links = viewer_run.xcom("probe_links")
    assert links == {"ok_nb": _url(viewer_run, "ok_nb"), "plain": ""}  # plain: nothing to show, no link
    assert links["ok_nb"].startswith("/mlplatform/outputs/viewer_dag/")
    # what Airflow's UI gets for the task (the link pushed when the task ran)
    run_id = viewer_run.dag_run.run_id
    r = client.get(f"/api/v2/dags/viewer_dag/dagRuns/{run_id}/taskInstances/ok_nb/links", headers=as_viewer)
    assert r.status_code == 200, r.text
    assert r.json()["extra_links"]["Output notebook"] == _url(viewer_run, "ok_nb")
    assert client.get(r.json()["extra_links"]["Output notebook"], headers=as_viewer).status_code == 200


def test_permission_is_per_dag(client, as_viewer, viewer_run, monkeypatch):
    monkeypatch.setenv("MLPLATFORM_TEST_DENY", "viewer:viewer_dag")
    r = client.get(_url(viewer_run, "ok_nb"), headers=as_viewer)
    assert r.status_code == 403 and "viewer_dag" in r.json()["detail"]
    assert (
        client.get(_url(viewer_run, "ok_nb") + "/files/execution_record.json", headers=as_viewer).status_code
        == 403
    )


def test_unknown_try_and_escaping_paths(client, as_viewer, viewer_run):
    assert client.get(_url(viewer_run, "ok_nb", try_number=7), headers=as_viewer).status_code == 404
    base = _url(viewer_run, "ok_nb")
    for bad in ("..%2F..%2Fsecret", "%2Fetc%2Fpasswd", ".hidden"):
        assert client.get(f"{base}/files/{bad}", headers=as_viewer).status_code in (400, 404)


@pytest.fixture
def memory_base(monkeypatch):
    """fsspec's in-memory filesystem as ObjectStoragePath scheme ``memory://``, as output_base."""
    from airflow.sdk.io import fs
    from fsspec.implementations.memory import MemoryFileSystem

    monkeypatch.setitem(fs._BUILTIN_SCHEME_TO_FS, "memory", lambda _conn, _opts: MemoryFileSystem())
    fs._register_filesystems.cache_clear()
    monkeypatch.setenv("AIRFLOW__MLPLATFORM__OUTPUT_BASE", "memory://viewer-out")
    yield "memory://viewer-out"
    fs._register_filesystems.cache_clear()


def _put(uri, data):
    from airflow.sdk import ObjectStoragePath

    p = ObjectStoragePath(uri)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def test_outputs_from_object_storage_with_a_report(client, as_viewer, memory_base):
    folder = f"{memory_base}/remote_dag/manual__1/report_task/try-2"
    report = (
        "<!DOCTYPE html><html><head><title>r</title></head><body><h1>Fuel economy report</h1></body></html>"
    )
    _put(f"{folder}/mpg_report.html", report.encode())
    _put(f"{folder}/plots/fig.png", PNG)
    record = {"status": "success", "task": {"try_number": 2},
              "outputs": {"report": f"{folder}/mpg_report.html"}}  # fmt: skip
    _put(f"{folder}/execution_record.json", json.dumps(record).encode())
    r = client.get("/mlplatform/outputs/remote_dag/manual__1/report_task/2", headers=as_viewer)
    assert r.status_code == 200, r.text
    assert "<h1>Fuel economy report</h1>" in r.text and "showing mpg_report.html" in r.text
    assert "plots/fig.png" in r.text
    png = client.get(
        "/mlplatform/outputs/remote_dag/manual__1/report_task/2/files/plots/fig.png", headers=as_viewer
    )
    assert png.status_code == 200 and png.content == PNG
    assert png.headers["content-type"] == "application/octet-stream"  # never rendered from our origin
    assert "attachment" in png.headers["content-disposition"]


def test_notebook_from_object_storage_with_images_and_error(client, as_viewer, memory_base):
    import nbformat

    nb = nbformat.v4.new_notebook()
    ok = nbformat.v4.new_code_cell("plot()", execution_count=1)
    ok.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(PNG).decode()})]
    bad = nbformat.v4.new_code_cell("1/0", execution_count=2)
    bad.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                          traceback=["ZeroDivisionError: division by zero"])]  # fmt: skip
    nb.cells = [ok, bad]
    folder = f"{memory_base}/nb_dag/run_1/train.3/try-1"
    _put(f"{folder}/train-out.ipynb", nbformat.writes(nb).encode())
    rec = {
        "status": "failed",
        "task": {"try_number": 1},
        "outputs": {"notebook": f"{folder}/train-out.ipynb"},
    }
    _put(f"{folder}/execution_record.json", json.dumps(rec).encode())
    r = client.get("/mlplatform/outputs/nb_dag/run_1/train/1?map_index=3", headers=as_viewer)
    assert r.status_code == 200, r.text
    assert "data:image/png;base64," in r.text
    assert "This cell failed (In [2]): ZeroDivisionError: division by zero" in r.text
    assert "map index 3" in r.text and "/files/train-out.ipynb?map_index=3" in r.text
