"""The MLflow hook: where the model registry and the tracking store live, and a client for them.

Two places, one API:

- an ``mlflow`` connection (default id ``mlflow_default``): a tracking server
  (``http(s)://host:port``; login/password become MLflow's basic-auth settings) or a database
  URI (``postgresql://...``, ``mysql://...``, ``sqlite:///...``) in the host field or in the
  extra's ``tracking_uri``; the extra's ``artifact_root`` names where a database store keeps
  artifacts;
- none configured: an embedded store under ``$AIRFLOW_HOME/mlplatform/mlflow`` (``[mlplatform]
  mlflow_home``): SQLite plus a local artifact root. SQLite serves one host only.

Several processes creating a fresh SQLite store at once crash in MLflow's alembic migrations:
the schema is created once, under a file lock, before first use.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from airflow_mlplatform import config
from airflow_mlplatform.exceptions import ConfigurationError, MLflowUnavailableError

#: marker written once the embedded store's schema exists
_READY = ".schema-ready"
_LOCK = ".schema.lock"


@dataclass(frozen=True)
class MLflowStore:
    """Where MLflow's tracking and registry data go.

    :param tracking_uri: MLflow's tracking (and registry) URI.
    :param artifact_root: where new experiments keep artifacts (None: the server decides).
    :param embedded: the provider's own SQLite store under AIRFLOW_HOME.
    """

    tracking_uri: str
    artifact_root: str | None = None
    embedded: bool = False

    @property
    def is_server(self) -> bool:
        """Whether the store is a tracking server (HTTP), not a database."""
        return self.tracking_uri.startswith(("http://", "https://"))


def embedded_home() -> Path:
    """The embedded store's folder: ``[mlplatform] mlflow_home``, default ``$AIRFLOW_HOME/mlplatform/mlflow``."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    default = os.path.join(home, "mlplatform", "mlflow")
    return Path(config.get_option("mlflow_home", default) or default).expanduser().resolve()


def embedded_store(home: Path | None = None) -> MLflowStore:
    """The embedded SQLite store (one host only) with its local artifact root.

    :param home: the store's folder (default :func:`embedded_home`).
    """
    home = home or embedded_home()
    return MLflowStore(
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        artifact_root=(home / "artifacts").as_uri(),
        embedded=True,
    )


def store_from_connection(conn: Any, conn_id: str) -> MLflowStore:
    """Read an ``mlflow`` connection.

    :param conn: the Airflow connection.
    :param conn_id: its id, for error messages.
    """
    extra = conn.extra_dejson or {}
    uri = str(extra.get("tracking_uri") or conn.host or "").strip()
    if not uri:
        raise ConfigurationError(
            f"connection {conn_id!r} names no MLflow store: put the tracking server URL "
            "(http://host:5000) or a database URI in its host field or in the extra's tracking_uri"
        )
    if "://" not in uri:
        scheme = conn.schema if conn.schema in ("http", "https") else "http"
        uri = f"{scheme}://{uri}"
    if conn.port and uri.startswith(("http://", "https://")) and uri.count(":") < 2:
        uri = f"{uri.rstrip('/')}:{conn.port}"
    from urllib.parse import urlsplit

    from airflow_mlplatform.masking import mask_secret

    password = urlsplit(uri).password
    if password:
        mask_secret(password)  # a database URI's password: never in a log or record
    return MLflowStore(tracking_uri=uri.rstrip("/"), artifact_root=extra.get("artifact_root") or None)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created) held for the block, across processes of one host.

    :param path: the lock file.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_embedded_schema(store: MLflowStore) -> None:
    """Create the embedded store's schema once, under a file lock (concurrent first uses wait).

    :param store: an embedded store.
    """
    db = Path(store.tracking_uri.removeprefix("sqlite:///"))
    home = db.parent
    if (home / _READY).exists():
        return
    with file_lock(home / _LOCK):
        if (home / _READY).exists():
            return
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        Path(str(store.artifact_root).removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        SqlAlchemyStore(store.tracking_uri, store.artifact_root)  # creates the tables (alembic)
        RegistryStore(store.tracking_uri)
        (home / _READY).write_text("created by airflow-mlplatform\n")


class MLflowHook(BaseHook):
    """MLflow's client for the configured store: the ``mlflow`` connection, or the embedded one.

    :param mlflow_conn_id: the ``mlflow`` connection; when it does not exist, the embedded store
        under ``AIRFLOW_HOME`` is used.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self._store: MLflowStore | None = None
        self._client: Any = None
        self._experiments: dict[str, str] = {}

    @property
    def store(self) -> MLflowStore:
        """The store this hook talks to (the connection is read once)."""
        if self._store is None:
            conn = self._connection()
            if conn is None:
                self._store = embedded_store()
            else:
                self._store = store_from_connection(conn, self.mlflow_conn_id)
                if conn.login:
                    os.environ["MLFLOW_TRACKING_USERNAME"] = conn.login
                if conn.password:
                    from airflow_mlplatform.masking import mask_secret

                    mask_secret(conn.password)
                    os.environ["MLFLOW_TRACKING_PASSWORD"] = conn.password
        return self._store

    def _connection(self) -> Any:
        """The ``mlflow`` connection, or None when none is configured."""
        from airflow_mlplatform.config import optional_connection

        return optional_connection(self.mlflow_conn_id)

    def get_conn(self) -> Any:
        """An ``mlflow.MlflowClient`` for the store (the embedded schema created first)."""
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError as e:
                raise MLflowUnavailableError(
                    "mlflow-skinny is not installed: pip install 'airflow-provider-mlplatform[mlflow]'"
                ) from e
            store = self.store
            if store.embedded:
                ensure_embedded_schema(store)
            self._client = MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)
        return self._client

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created when missing (a concurrent creation is fine).

        :param name: the experiment's name (the provider uses the DAG id).
        """
        from mlflow.exceptions import MlflowException

        if name in self._experiments:
            return self._experiments[name]
        client = self.get_conn()
        found = client.get_experiment_by_name(name)
        if found is not None:
            self._experiments[name] = str(found.experiment_id)
            return self._experiments[name]
        root = self.store.artifact_root
        location = f"{root.rstrip('/')}/{name}" if root else None
        try:
            return str(client.create_experiment(name, artifact_location=location))
        except MlflowException:
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def test_connection(self) -> tuple[bool, str]:
        """Whether the store answers (lists one experiment)."""
        try:
            self.get_conn().search_experiments(max_results=1)
        except Exception as e:
            return False, f"MLflow store {self.store.tracking_uri} did not answer: {e}"
        return True, f"MLflow store {self.store.tracking_uri} answers"
