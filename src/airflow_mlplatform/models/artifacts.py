"""Bring a model's artifact to a local path for upload: a local file or folder, any
ObjectStoragePath URI (``s3://``, ``gs://``, ``file://``...), or a Valohai ``datum://`` output."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import ModelArtifactError


def _copy_tree(src: Any, dest: Path) -> None:
    """Copy an ObjectStoragePath file or folder to ``dest``."""
    if src.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            _copy_tree(child, dest / child.name)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dest.open("wb") as fout:
        shutil.copyfileobj(fin, fout)


def _download_datum(datum: str, dest: Path, *, valohai_conn_id: str) -> Path:
    import requests

    from airflow_mlplatform.hooks.valohai import ValohaiHook

    url = ValohaiHook(valohai_conn_id).download_url(datum)
    name = datum.removeprefix("datum://")
    target = dest / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with requests.get(url, stream=True, timeout=60) as response:
        if response.status_code >= 400:
            raise ModelArtifactError(f"downloading {datum} failed: HTTP {response.status_code}")
        with target.open("wb") as out:
            for chunk in response.iter_content(1 << 20):
                out.write(chunk)
    return target


def local_artifact(artifact: Any, *, workdir: Path, valohai_conn_id: str = "valohai_default") -> Path:
    """A local path holding ``artifact`` (copied into ``workdir`` unless it is local already).

    :param artifact: a path, ``file://``/ObjectStoragePath URI, or ``datum://ID``.
    :param workdir: a scratch folder for copies.
    :param valohai_conn_id: the Valohai connection, for ``datum://`` outputs.
    """
    from airflow_mlplatform.storage import is_local, local_path

    if artifact is None or (isinstance(artifact, str) and not artifact.strip()):
        raise ModelArtifactError(
            "artifact is empty: pass the model's file or folder, e.g. artifact=train.output['model_path']"
        )
    text = str(artifact)
    if text.startswith("datum://"):
        return _download_datum(text, workdir, valohai_conn_id=valohai_conn_id)
    if is_local(text):
        path = local_path(text).expanduser()
        if not path.exists():
            raise ModelArtifactError(f"artifact {text!r} does not exist: check the source task's output")
        return path.resolve()
    from airflow.sdk import ObjectStoragePath

    src = ObjectStoragePath(text)
    if not src.exists():
        raise ModelArtifactError(f"artifact {text!r} does not exist: check the source task's output")
    dest = workdir / (src.name or "model")
    _copy_tree(src, dest)
    return dest
