"""The DAG-folder loader for workflow files: one DAG per YAML/JSON file under workflows/.

Put this file in the Airflow dags folder next to a ``workflows/`` folder (or point it at any
folder). Parsing stays cheap: no papermill, kubernetes or dask import happens here.
"""

from __future__ import annotations

from pathlib import Path

from airflow_mlplatform.workflow import load_workflows

# airflow DAG discovery: each workflow's DAG is put into this module's globals.
load_workflows(Path(__file__).parent / "workflows", globals())
