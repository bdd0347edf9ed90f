"""``GET /api/me``: who is logged in and whether they may edit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from airflow_mlplatform.plugin.auth import Reader, allowed, user_name

router = APIRouter(tags=["designer"])


@router.get("/me")
def me(user: Reader) -> dict[str, Any]:
    """The user's name and whether they have DAG edit permission."""
    return {"user": user_name(user), "can_edit": allowed(user, "PUT")}
