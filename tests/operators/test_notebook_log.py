"""What a notebook task's log says (a real DAG run): a successful task reads cleanly."""

from __future__ import annotations

import logging
import textwrap

from nbtools import write_notebook

DAG = """
import pendulum
from airflow.sdk import DAG, Param
from airflow_mlplatform.operators.notebook import NotebookOperator

with DAG("nb_clean_log", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         params={"C": Param(1.0), "undeclared_global": Param("g")}) as dag:
    NotebookOperator(task_id="train", notebook="log_nbs/train.ipynb", parameters={"epochs": 2})
"""


def test_a_successful_notebook_task_log_reads_cleanly(run_dag, dags_folder, caplog, capfd):
    nb = write_notebook(
        dags_folder / "log_nbs" / "train.ipynb",
        [
            ("parameters", "C = 0.5\nepochs = 1"),
            "from airflow_mlplatform.runtime import record\n"
            "for epoch in range(epochs):\n    print(f'epoch {epoch} with C={C}')\n"
            "record('accuracy', 0.93)",
        ],
    )
    with caplog.at_level(logging.INFO):
        result = run_dag(textwrap.dedent(DAG), "nb_clean_log")
    assert result.task_states() == {"train": "success"}
    stderr = capfd.readouterr().err
    records = [
        r for r in caplog.records if r.name.startswith(("airflow_mlplatform", "papermill", "airflow.task"))
    ]
    lines = [r.getMessage() for r in records]
    text = "\n".join(lines)
    # nothing at ERROR level from the task (Airflow shows stderr at ERROR: the kernel's stderr is
    # ours to log); dag.test() also parses the other DAG files other tests left in the dags folder,
    # and the DAG processor's errors about those are not this task's log
    task_side = [r for r in caplog.records if not r.name.startswith("airflow.dag_processing")]
    assert not [r for r in task_side if r.levelno >= logging.ERROR], text
    assert "Kernel is running over TCP without encryption" not in stderr + text
    assert "NotebookNode" not in text
    # no warning for a DAG-level param the notebook does not declare: the design injects them
    assert "Passed unknown parameter" not in text and "undeclared_global" not in text.replace(
        "'undeclared_global'", ""
    )
    assert not [r for r in records if r.levelno >= logging.WARNING], text
    # start, cell progress, the cells' stdout, values, where the outputs went: in that order
    order = [
        f"Input Notebook:  {nb}",
        "Executing Cell 1",
        "Executing Cell 3",
        "epoch 1 with C=1.0",
        "Ending Cell 3",
        "Recorded values: accuracy",
        "\nNotebook: ",
        "\nRecord: ",
    ]
    positions = [text.find(marker) for marker in order]
    assert -1 not in positions, list(zip(order, positions, strict=True))
    assert positions == sorted(positions), text
