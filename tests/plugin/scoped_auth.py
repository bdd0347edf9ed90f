"""Airflow's simple auth manager, plus one rule for the tests: users named in
``MLPLATFORM_TEST_DENY`` (``user:dag_id,...``) may not read those DAGs. Everything else is the
simple auth manager's own decision."""

from __future__ import annotations

import os

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class DagScopedSimpleAuthManager(SimpleAuthManager):
    """SimpleAuthManager with per-DAG denials (to see the plugin ask about the right DAG)."""

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
        denied = {
            tuple(p.split(":", 1)) for p in os.environ.get("MLPLATFORM_TEST_DENY", "").split(",") if ":" in p
        }
        if details is not None and (user.get_name(), details.id) in denied:
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
