"""Helpers for tests that start Spark (pyspark, spark-submit, the Toree Scala kernel)."""

from __future__ import annotations

import shutil
import time
import uuid

import psutil
import pytest


def toree_installed() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager

    return "apache_toree_scala" in KernelSpecManager().find_kernel_specs()


needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="Java 17 is installed by make setup")
needs_toree = pytest.mark.skipif(
    not (shutil.which("java") and toree_installed()),
    reason="the Toree kernel is installed by make setup (the 'spark' extra)",
)


def new_mark() -> str:
    """A value for ``MLPLATFORM_TEST_MARK``: every process started with it can be found again."""
    return uuid.uuid4().hex


def marked_processes(mark: str) -> list[psutil.Process]:
    """Live (not zombie) processes whose environment holds ``MLPLATFORM_TEST_MARK=mark``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("MLPLATFORM_TEST_MARK") == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def wait_for_marked(
    mark: str, *, gone: bool, timeout: float = 30, name: str = "java"
) -> list[psutil.Process]:
    """Wait until a process named ``name`` carries ``mark`` (``gone=False``) or none does."""
    deadline = time.monotonic() + timeout
    while True:
        procs = [p for p in marked_processes(mark) if name in p.name()]
        if bool(procs) != gone:
            return procs
        if time.monotonic() > deadline:
            state = "still running" if gone else "never started"
            raise AssertionError(f"{name} processes with mark {mark} {state}: {procs}")
        time.sleep(0.3)
