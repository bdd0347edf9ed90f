"""Callables used by the workflow tests' python steps."""

from __future__ import annotations


def make_numbers(n: int = 3) -> dict:
    return {"numbers": list(range(n)), "count": n}


def total(numbers: list, scale: float = 1.0) -> dict:
    return {"total": sum(numbers) * scale, "kind": type(scale).__name__}
