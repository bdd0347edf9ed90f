"""Run DAG files for real with ``dag.test()`` and read back what the tasks pushed.

For tests and CI of DAG repositories (the provider's own tests and quickstart use it).
Airflow 3.3's ``dag.test()`` syncs the configured DAG bundles before it runs, so the DAG
file must sit in the configured dags folder: :func:`run_dag_file` puts it there.
Uses the metadata DB directly, so it belongs in tests and scripts, never in DAG files.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class DagResult:
    """A finished DagRun, with helpers to read its task states and XComs."""

    dag_run: Any
    dag_id: str

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    def task_states(self) -> dict[str, str]:
        return {ti.task_id: str(ti.state) for ti in self.dag_run.get_task_instances()}

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(
                    dag_id=self.dag_id,
                    run_id=self.dag_run.run_id,
                    task_id=task_id,
                    key=key,
                    map_index=map_index,
                )
                .one_or_none()
            )
            if row is None:
                raise KeyError(f"no XCom {key!r} for task {task_id!r}")
            return XComModel.deserialize_value(row)

    def xcom_keys(self, task_id: str) -> set[str]:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.query(XComModel.key).filter_by(
                dag_id=self.dag_id, run_id=self.dag_run.run_id, task_id=task_id
            )
            return {r[0] for r in rows}


def load_dag(path: Path, dag_id: str) -> Any:
    """Import a DAG file under a unique module name and return the DAG ``dag_id``.

    The configured dags folder is put on ``sys.path`` first, as Airflow's DAG processor does.

    :param path: the DAG file.
    :param dag_id: the DAG to return.
    """
    from airflow.sdk import conf

    dags_folder = conf.get("core", "dags_folder", fallback=None)
    if dags_folder and dags_folder not in sys.path:
        sys.path.append(dags_folder)
    mod_name = f"_testdag_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    for value in vars(module).values():
        if isinstance(value, DAG) and value.dag_id == dag_id:
            return value
    raise LookupError(f"{path} defines no DAG {dag_id!r}")


def run_dag_file(
    dags_folder: Path, source: str | Path, dag_id: str, *, name: str | None = None, **test_kwargs: Any
) -> DagResult:
    """Put a DAG file in the dags folder, import it from there and run it with ``dag.test()``.

    :param dags_folder: the configured dags folder.
    :param source: an existing file (copied, with its sibling folders) or the file's text.
    :param dag_id: the DAG to run.
    :param name: file name inside the dags folder.
    """
    if isinstance(source, Path):
        target = dags_folder / (name or source.name)
        if source.resolve() != target.resolve():
            shutil.copy(source, target)
    else:
        target = dags_folder / (name or f"{dag_id}.py")
        target.write_text(source)
    dag = load_dag(target, dag_id)
    dag_run = dag.test(**test_kwargs)
    return DagResult(dag_run=dag_run, dag_id=dag_id)
