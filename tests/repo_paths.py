"""Paths of the repository, for tests (a module of its own: several conftest.py files exist, and
``from conftest import ...`` would get whichever one pytest imported last)."""

from __future__ import annotations

from pathlib import Path

#: The repository root.
REPO = Path(__file__).resolve().parent.parent
