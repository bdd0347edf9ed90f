"""One real Airflow deployment per test session (see stack.py), stopped also when a test fails."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployment.stack import Deployment
from nbtools import write_notebook
from valohai_contract_server import ContractServer

KILL_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.notebook import NotebookOperator

with DAG(dag_id="deploy_kill", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    NotebookOperator(task_id="sleep", notebook="notebooks/deploy_sleep.ipynb", parameters={"pid_file": "{{ params.pid_file }}"})
"""

VALOHAI_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_mlplatform.operators.valohai import ValohaiSubmitExecutionOperator

with DAG(dag_id="deploy_valohai", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    ValohaiSubmitExecutionOperator(
        task_id="train", step="train", commit="main", deferrable=True, poll_interval=1, max_poll_interval=2
    )
"""


def write_test_dags(dags: Path) -> None:
    """The DAGs the tier adds to the copied examples: a notebook that sleeps, a deferred Valohai job."""
    (dags / "deploy_kill.py").write_text(KILL_DAG)
    (dags / "deploy_valohai.py").write_text(VALOHAI_DAG)
    write_notebook(
        dags / "notebooks" / "deploy_sleep.ipynb",
        [
            ("parameters", 'pid_file = ""'),
            "import os, time\nopen(pid_file, 'w').write(str(os.getpid()))",
            "time.sleep(600)",
        ],
    )


# module scope: the stack's processes stop as soon as the tier's tests are done (a session fixture
# kept them running, and using CPU, for the rest of the suite)
@pytest.fixture(scope="module")
def valohai_server() -> Iterator[ContractServer]:
    """The Valohai contract server (real time) that the deployment's connection points at."""
    with ContractServer(speed=1.0, durations={"started": 8.0}) as srv:
        yield srv


@pytest.fixture(scope="module")
def deployment(valohai_server: ContractServer) -> Iterator[Deployment]:
    """PostgreSQL + api-server, scheduler, dag-processor, triggerer; example DAGs in the dags folder."""
    root = Path(tempfile.mkdtemp(prefix="mlplatform-deployment-"))
    conn = {
        "conn_type": "valohai",
        "host": valohai_server.url,
        "password": valohai_server.token,
        "extra": {"project": "my-org/my-project"},
    }
    dep = Deployment(root, env={"AIRFLOW_CONN_VALOHAI_DEFAULT": json.dumps(conn)})
    try:
        dep.postgres.root.mkdir(parents=True)
        shutil.copytree(Path(__file__).resolve().parents[2] / "example_dags", dep.dags)
        write_test_dags(dep.dags)
        dep.start(copy_examples=False)
        yield dep
    except BaseException:
        for name in dep.processes:
            print(f"==== {name} log tail\n{dep.log_tail(name)}")
        raise
    finally:
        dep.stop()
        shutil.rmtree(root, ignore_errors=True)
