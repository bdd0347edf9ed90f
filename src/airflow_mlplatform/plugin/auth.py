"""Who asks, and may they: the one auth dependency module every plugin router uses.

Identity comes from the api-server's auth manager exactly as Airflow's own API reads it
(``airflow.api_fastapi.core_api.security.get_user``: an ``Authorization: Bearer`` JWT, else
the UI's ``_token`` cookie). Permissions are Airflow's DAG permissions: reading needs DAG
read (``GET``), saving and triggering need DAG edit (``PUT``), checked for the DAG the
request is about when there is one. Anonymous: 401; authenticated without permission: 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, HTTPException, status

#: Dependency: the authenticated Airflow user (Airflow's own ``get_user``); 401 without one.
User = GetUserDep


def user_name(user: Any) -> str:
    """The user's display name, for responses and logs.

    :param user: an auth manager user.
    """
    try:
        return str(user.get_name())
    except Exception:  # an auth manager whose user has no name
        return str(getattr(user, "username", "") or user.get_id())


def allowed(user: Any, method: str, dag_id: str | None = None) -> bool:
    """Whether ``user`` may ``method`` (``GET`` read, ``PUT`` edit) the DAG ``dag_id`` (any DAG
    when None), asked of the configured auth manager.

    :param user: the authenticated user.
    :param method: ``GET`` or ``PUT``.
    :param dag_id: the DAG, when the request is about one.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    details = None
    if dag_id:
        from airflow.models.dag import DagModel

        details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return bool(get_auth_manager().is_authorized_dag(method=method, details=details, user=user))  # type: ignore[arg-type]


def require(user: Any, method: str, dag_id: str | None = None) -> None:
    """Raise 403 unless ``user`` has DAG ``method`` permission (see :func:`allowed`).

    :param user: the authenticated user.
    :param method: ``GET`` (read) or ``PUT`` (edit).
    :param dag_id: the DAG, when the request is about one.
    """
    if not allowed(user, method, dag_id):
        what = "edit" if method != "GET" else "read"
        target = f"DAG {dag_id!r}" if dag_id else "DAGs"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Forbidden: {user_name(user)!r} has no permission to {what} {target}; "
            f"ask an admin for DAG {what} permission",
        )


async def dag_reader(user: User) -> Any:
    """Dependency: an authenticated user with DAG read permission (any DAG).

    :param user: the authenticated user.
    """
    require(user, "GET")
    return user


async def dag_editor(user: User) -> Any:
    """Dependency: an authenticated user with DAG edit permission (any DAG).

    :param user: the authenticated user.
    """
    require(user, "PUT")
    return user


Reader = Annotated[Any, Depends(dag_reader)]
Editor = Annotated[Any, Depends(dag_editor)]
