"""The designer's JSON API (``/api/designer``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["designer"])
