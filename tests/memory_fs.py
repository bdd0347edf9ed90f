"""fsspec's in-memory filesystem as ObjectStoragePath scheme ``memory://``: an object store
that runs in the test process (the same ObjectStoragePath code path as s3:// or gs://)."""

from __future__ import annotations

import pytest


@pytest.fixture
def memory_filesystem(monkeypatch):
    """Register ``memory://`` for the duration of a test."""
    from airflow.sdk.io import fs
    from fsspec.implementations.memory import MemoryFileSystem

    monkeypatch.setitem(fs._BUILTIN_SCHEME_TO_FS, "memory", lambda _conn, _opts: MemoryFileSystem())
    fs._register_filesystems.cache_clear()
    yield
    fs._register_filesystems.cache_clear()
