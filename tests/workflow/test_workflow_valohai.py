"""Valohai steps of a workflow chained output -> input, run with dag.test() against the contract server."""

from __future__ import annotations

import pytest

from airflow_mlplatform.hooks import valohai as hook_module
from valohai_contract_server import ContractServer, connection_json

WORKFLOW = """\
version: 1
id: wf_valohai_chain
params:
  learning_rate: {type: number, default: 0.01}
steps:
  - id: preprocess
    type: valohai
    project: my-org/my-project
    step: preprocess
    commit: main
    inputs: {raw: "s3://bucket/raw.csv"}
    parameters: {test_fraction: 0.2}
    poll_interval: 0.1
    max_poll_interval: 0.2
    outputs: [train.csv, test.csv]
  - id: train
    type: valohai
    project: my-org/my-project
    step: train
    commit: main
    inputs:
      train: ${{ steps.preprocess.outputs.train.csv }}
      test: ${{ steps.preprocess.outputs.test.csv }}
    parameters:
      learning_rate: ${{ params.learning_rate }}
      epochs: 3
    environment_variables: {SEED: 7}
    include_dag_params: false
    poll_interval: 0.1
    max_poll_interval: 0.2
    outputs: [model.pkl]
  - id: show
    type: bash
    command: echo "model ${{ steps.train.outputs.model.pkl }}"
"""
LOADER = """\
from pathlib import Path

from airflow_mlplatform.workflow import load_workflows

# airflow dag loader
load_workflows(Path(__file__).parent / "wf_valohai", globals())
"""


@pytest.fixture
def server(monkeypatch):
    with ContractServer(speed=100) as srv:
        srv.configure_step("preprocess", outputs={"train.csv": b"a\n1\n", "test.csv": b"a\n2\n"})
        srv.configure_step("train", outputs={"model.pkl": b"MODEL"})
        monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(srv))
        hook_module._PROJECT_CACHE.clear()
        yield srv


def test_valohai_steps_chain_outputs_to_inputs(server, run_dag, dags_folder):
    (dags_folder / "wf_valohai").mkdir(exist_ok=True)
    (dags_folder / "wf_valohai" / "chain.yaml").write_text(WORKFLOW)
    result = run_dag(LOADER, "wf_valohai_chain", name="wf_valohai_loader.py", run_conf={"learning_rate": 0.5})
    assert result.task_states() == {"preprocess": "success", "train": "success", "show": "success"}
    pre = result.xcom("preprocess")
    pre_ex, train_ex = sorted(server.executions.values(), key=lambda e: e["counter"])
    assert train_ex["inputs"] == {"train": [pre["train.csv"]], "test": [pre["test.csv"]]}
    # the global parameter arrives as a number, from the run's conf
    assert train_ex["parameters"] == {"learning_rate": 0.5, "epochs": 3}
    assert pre_ex["parameters"]["test_fraction"] == 0.2
    model = result.xcom("train", "model.pkl")
    assert model.startswith("datum://")
    assert result.xcom("show") == f"model {model}"
