"""ValohaiSubmitExecutionOperator and friends, run for real with dag.test() against the contract server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_mlplatform.exceptions import ParameterError, ValohaiExecutionFailedError, ValohaiStepError
from airflow_mlplatform.hooks import valohai as hook_module
from airflow_mlplatform.hooks.valohai import ValohaiHook
from airflow_mlplatform.operators.valohai import EXECUTION_XCOM_KEY, ValohaiSubmitExecutionOperator
from airflow_mlplatform.sensors.valohai import ValohaiExecutionSensor
from airflow_mlplatform.triggers.valohai import ValohaiExecutionTrigger
from airflow_mlplatform.valohai_payloads import execution_payload
from valohai_contract_server import PROJECT_ID, ContractServer, connection_json

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "example_valohai_chain.py"
FAST = {"backoff": 0.01, "backoff_max": 0.05, "timeout": 5.0}


@pytest.fixture
def server(monkeypatch):
    with ContractServer(speed=100) as srv:
        srv.configure_step("preprocess", outputs={"train.csv": b"a,b\n1,2\n", "test.csv": b"a,b\n3,4\n"})
        srv.configure_step(
            "train",
            outputs={"model.pkl": b"MODEL", "plots/loss.png": b"PNG"},
            metadata=[{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.4, "accuracy": 0.81}],
        )
        srv.configure_step("broken", outcome="error")
        srv.configure_step("forever", durations={"started": 1_000_000})
        monkeypatch.setenv("AIRFLOW_CONN_VALOHAI_DEFAULT", connection_json(srv))
        hook_module._PROJECT_CACHE.clear()
        yield srv


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_example_dag_chains_outputs_to_inputs(server, run_dag, monkeypatch, tmp_path, deferrable):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(deferrable))
    result = run_dag(EXAMPLE, "example_valohai_chain")
    assert result.state == "success", result.task_states()

    pre = result.xcom("preprocess")
    assert set(pre) == {"train.csv", "test.csv"}
    assert all(v.startswith("datum://") for v in pre.values())
    train = result.xcom("train")
    assert set(train) == {"model.pkl", "plots__loss.png"}
    assert result.xcom("train", "model.pkl") == train["model.pkl"]
    assert result.xcom("train", "metrics") == {"epoch": 2, "loss": 0.4, "accuracy": 0.81}

    preprocess_ex, train_ex = sorted(server.executions.values(), key=lambda e: e["counter"])
    assert train_ex["inputs"] == {"train": [pre["train.csv"]], "test": [pre["test.csv"]]}
    assert train_ex["parameters"] == {"seed": 42, "learning_rate": 0.01, "epochs": 3}
    assert preprocess_ex["parameters"] == {"seed": 42, "test_fraction": 0.2}
    assert "airflow-task:train" in train_ex["tags"] and "airflow-try:1" in train_ex["tags"]
    assert "example" in train_ex["tags"]
    assert train_ex["time_limit"] == 3600

    record = result.xcom("train", "execution_record")
    assert record["code"]["step"] == "train"
    assert record["data"]["inputs"]["train"] == [pre["train.csv"]]
    assert record["metrics"]["series"][0] == {"epoch": 1, "loss": 0.9}
    assert record["outputs"]["model.pkl"]["datum"] == train["model.pkl"]
    assert record["where"]["url"].endswith(f"/execution/{train_ex['id']}/")
    assert result.xcom("train", EXECUTION_XCOM_KEY)["id"] == train_ex["id"]
    usage = record["usage"]  # what usage reports bill: the environment and its duration
    assert (usage["kind"], usage["backend"], usage["valohai"]["execution"]) == (
        "ValohaiExecution",
        "valohai",
        train_ex["id"],
    )
    assert usage["valohai"]["environment_name"] == (train_ex["environment"] or "aws-eu-west-1-t3-large")
    assert usage["billable_s"] == usage["valohai"]["duration_s"] >= 0

    downloaded = result.xcom("download_model")
    assert Path(downloaded["model.pkl"].removeprefix("file://")).read_bytes() == b"MODEL"

    # deferrable: the status polls came from the trigger's async client (httpx), else from requests
    poll_path = f"/api/v0/executions/{preprocess_ex['id']}/"
    polled_by = {r.agent.split("/")[0] for r in server.api_requests("GET") if r.path == poll_path}
    assert polled_by == ({"python-httpx"} if deferrable else {"python-requests"})
    # the project name was resolved once for both tasks
    assert len(server.api_requests("GET", "/projects/")) == 1
    assert len(server.api_requests("POST", "/executions/")) == 2


DAG_TEMPLATE = """
from datetime import timedelta
from airflow.sdk import DAG
from airflow_mlplatform.operators.valohai import ValohaiSubmitExecutionOperator

with DAG(dag_id="{dag_id}", schedule=None, catchup=False) as dag:
    ValohaiSubmitExecutionOperator(
        task_id="run", step="{step}", poll_interval=0.1, max_poll_interval=0.2,
        hook_kwargs={{"backoff": 0.01, "backoff_max": 0.05}}, {extra}
    )
"""


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_failed_execution_fails_the_task_with_its_log(server, run_dag, deferrable):
    dag_id = f"valohai_broken_{int(deferrable)}"
    source = DAG_TEMPLATE.format(dag_id=dag_id, step="broken", extra=f"deferrable={deferrable}")
    result = run_dag(source, dag_id)
    assert result.task_states() == {"run": "failed"}
    assert server.api_requests("GET", "/events/"), "the error message reads the execution's last log lines"


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_timeout_stops_the_execution(server, run_dag, deferrable):
    dag_id = f"valohai_timeout_{int(deferrable)}"
    source = DAG_TEMPLATE.format(dag_id=dag_id, step="forever", extra=f"deferrable={deferrable}, timeout=0.5")
    result = run_dag(source, dag_id)
    assert result.task_states() == {"run": "failed"}
    (ex,) = server.executions.values()
    assert server.status_of(ex) == "stopped"
    assert server.api_requests("POST", "/stop/")


def test_unknown_parameter_in_valohai_yaml_fails_before_submitting(server, run_dag, tmp_path):
    yaml_file = tmp_path / "valohai.yaml"
    yaml_file.write_text(
        "- step:\n    name: train\n    image: python:3.12\n    command: python train.py\n"
        "    parameters:\n      - name: epochs\n        type: integer\n"
    )
    op = ValohaiSubmitExecutionOperator(
        task_id="t", step="train", parameters={"epochs": 3, "lr": 0.1}, valohai_yaml=str(yaml_file)
    )
    with pytest.raises(ValohaiStepError, match="no parameter 'lr'"):
        op._parameters({"params": {"seed": 1}})
    op.parameters = {"epochs": 3}
    # DAG params that the step does not declare are left out
    assert op._parameters({"params": {"seed": 1, "epochs": 1}}) == ({"epochs": 3}, {})
    assert server.api_requests() == []


class _TI(SimpleNamespace):
    """The few TaskInstance attributes the operator reads, for calling execute() directly."""

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _context(try_number: int) -> dict:
    ti = _TI(dag_id="d", task_id="t", run_id="r1", map_index=-1, try_number=try_number, pushed={})
    return {"ti": ti, "params": {}}


def test_retry_reattaches_to_the_running_execution_and_on_kill_stops_it(server):
    hook = ValohaiHook(**FAST)
    tags = ["airflow-dag:d", "airflow-task:t", "airflow-run:r1"]
    first = hook.create_execution(
        execution_payload(project_id=PROJECT_ID, commit="main", step="forever", tags=[*tags, "airflow-try:1"])
    )
    op = ValohaiSubmitExecutionOperator(task_id="t", step="forever", deferrable=True, hook_kwargs=FAST)
    context = _context(try_number=2)
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert len(server.executions) == 1, "a retry must not submit a second execution"
    assert deferred.value.trigger.execution_id == first["id"]
    assert context["ti"].pushed[EXECUTION_XCOM_KEY]["id"] == first["id"]

    op.on_kill()
    assert server.status_of(server.executions[first["id"]]) == "stopped"

    # the next try finds nothing running, so it submits a new one
    with pytest.raises(TaskDeferred):
        ValohaiSubmitExecutionOperator(
            task_id="t", step="forever", deferrable=True, hook_kwargs=FAST
        ).execute(_context(try_number=3))
    assert len(server.executions) == 2


def test_failed_execution_error_holds_last_log_lines_and_a_failed_record_is_stored(server):
    import json
    from pathlib import Path

    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="broken"))
    final = hook.wait_for_execution(ex["id"], poll_interval=0.05, max_poll_interval=0.1)
    op = ValohaiSubmitExecutionOperator(task_id="t", step="broken")
    context = _context(try_number=1)
    with pytest.raises(
        ValohaiExecutionFailedError, match=r"(?s)ended 'error'.*ValueError: the training data is empty"
    ):
        op._finish(context, hook, lambda: final, started=0.0, parameters={"p": 1}, inputs={})
    record = context["ti"].pushed["execution_record"]
    assert record["status"] == "failed" and "ended 'error'" in record["error"]
    assert record["where"]["backend"] == "valohai" and record["where"]["execution_id"] == str(ex["id"])
    assert record["where"]["status"] == "error"
    stored = json.loads(Path(record["outputs"]["record"].removeprefix("file://")).read_text())
    assert stored["status"] == "failed" and stored["code"]["step"] == "broken"


def test_trigger_serializes_fires_and_stops_on_kill(server):
    hook = ValohaiHook(**FAST)
    quick = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="train"))
    slow = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="forever"))
    trigger = ValohaiExecutionTrigger(execution_id=quick["id"], poll_interval=0.05, max_poll_interval=0.1)
    path, kwargs = trigger.serialize()
    assert path == "airflow_mlplatform.triggers.valohai.ValohaiExecutionTrigger"
    assert ValohaiExecutionTrigger(**kwargs).serialize() == (path, kwargs)

    async def first_event(t):
        async for event in t.run():
            return event.payload

    event = asyncio.run(first_event(trigger))
    assert event["status"] == "finished"
    assert event["execution"]["status"] == "complete"
    assert {d["name"] for d in event["execution"]["outputs"]} == {"model.pkl", "plots/loss.png"}

    asyncio.run(ValohaiExecutionTrigger(execution_id=slow["id"]).on_kill())
    assert server.status_of(server.executions[slow["id"]]) == "stopped"


def test_sensor_waits_for_an_execution_started_elsewhere(server, run_dag):
    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="train"))
    source = f"""
from airflow.sdk import DAG
from airflow_mlplatform.sensors.valohai import ValohaiExecutionSensor

with DAG(dag_id="valohai_sensor", schedule=None, catchup=False) as dag:
    ValohaiExecutionSensor(task_id="wait", execution="{PROJECT_ID}:{ex["counter"]}", poke_interval=0.1)
    ValohaiExecutionSensor(task_id="wait_deferred", execution="{ex["id"]}", poke_interval=0.1, deferrable=True)
"""
    result = run_dag(source, "valohai_sensor")
    assert result.task_states() == {"wait": "success", "wait_deferred": "success"}
    assert set(result.xcom("wait")) == {"model.pkl", "plots__loss.png"}
    assert result.xcom("wait_deferred") == result.xcom("wait")


def test_killing_the_deferred_sensor_leaves_the_execution_running(server):
    from airflow.sdk.exceptions import TaskDeferred

    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="forever"))
    sensor = ValohaiExecutionSensor(
        task_id="s", execution=ex["id"], deferrable=True, poke_interval=0.05, hook_kwargs=FAST
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    _path, kwargs = deferred.value.trigger.serialize()
    assert kwargs["stop_on_kill"] is False
    # what the triggerer does: rebuild the trigger from its serialized form, then kill it
    asyncio.run(ValohaiExecutionTrigger(**kwargs).on_kill())
    assert not server.api_requests("POST", "/stop/"), "the sensor does not own the execution"
    assert server.status_of(server.executions[ex["id"]]) in {"created", "queued", "started"}


def test_sensor_fails_on_a_failed_execution(server):
    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="broken"))
    hook.wait_for_execution(ex["id"], poll_interval=0.05, max_poll_interval=0.1)
    sensor = ValohaiExecutionSensor(task_id="s", execution=ex["id"], hook_kwargs=FAST)
    with pytest.raises(ValohaiExecutionFailedError, match="ended 'error'"):
        sensor.poke({})


def test_airflow_failing_the_deferred_task_stops_the_execution(server):
    from airflow.sdk.exceptions import TaskDeferralTimeout

    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="forever"))
    context = _context(try_number=1)
    context["ti"].xcom_pull = lambda task_ids, key: {"id": ex["id"]} if key == EXECUTION_XCOM_KEY else None
    op = ValohaiSubmitExecutionOperator(task_id="t", step="forever", hook_kwargs=FAST)
    with pytest.raises(TaskDeferralTimeout):
        op.resume_execution("__fail__", {"error": "Trigger timeout"}, context)
    assert server.status_of(server.executions[ex["id"]]) == "stopped"


def test_fetch_repository_then_submit_with_map_index_tag(server):
    op = ValohaiSubmitExecutionOperator(
        task_id="t",
        step="train",
        fetch_repository=True,
        hook_kwargs=FAST,
        deferrable=False,
        poll_interval=0.05,
    )
    context = _context(try_number=1)
    context["ti"].map_index = 3
    values = op.execute(context)
    assert set(values) == {"model.pkl", "plots__loss.png"}
    assert server.api_requests("POST", "/fetch/")
    (ex,) = server.executions.values()
    assert "airflow-map:3" in ex["tags"]
    assert context["ti"].pushed["metrics"] == {"epoch": 2, "loss": 0.4, "accuracy": 0.81}


def test_download_of_a_missing_output_names_what_exists(server, tmp_path):
    from airflow_mlplatform.exceptions import ValohaiError
    from airflow_mlplatform.operators.valohai import ValohaiDownloadOutputsOperator

    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="train"))
    hook.wait_for_execution(ex["id"], poll_interval=0.05, max_poll_interval=0.1)
    op = ValohaiDownloadOutputsOperator(
        task_id="d", execution=ex["id"], destination=str(tmp_path), names=["weights.h5"], hook_kwargs=FAST
    )
    with pytest.raises(ValohaiError, match=r"no output 'weights.h5' \(it has: model.pkl, plots/loss.png\)"):
        op.execute(_context(try_number=1))


def _finished_train(server):
    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="train"))
    return hook.wait_for_execution(ex["id"], poll_interval=0.05, max_poll_interval=0.1)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("model.pkl", {"model.pkl"}),
        (" model.pkl , plots/loss.png ", {"model.pkl", "plots__loss.png"}),
        (["plots/loss.png"], {"plots__loss.png"}),
    ],
)
def test_download_takes_one_name_or_a_comma_separated_string_and_records_what_it_copied(
    server, tmp_path, names, expected
):
    from airflow_mlplatform.operators.valohai import ValohaiDownloadOutputsOperator

    ex = _finished_train(server)
    op = ValohaiDownloadOutputsOperator(
        task_id="d", execution=ex["id"], destination=str(tmp_path), names=names, hook_kwargs=FAST
    )
    context = _context(try_number=1)
    copied = op.execute(context)
    assert set(copied) == expected  # a rendered "model.pkl" is one name, not 9 characters
    record = context["ti"].pushed["execution_record"]
    assert record["where"]["execution_id"] == ex["id"]
    files = {k: v for k, v in record["outputs"].items() if k != "record"}  # the record's own file
    assert record["outputs"]["record"].endswith("execution_record.json")
    for name, info in files.items():
        content = (tmp_path / name).read_bytes()
        assert info["size"] == len(content) and info["uri"].endswith(name)
        assert record["data"]["inputs"][name]["datum"].startswith("datum://")
    assert {n.replace("/", "__") for n in files} == expected


def test_a_failed_download_does_not_reveal_the_signed_url(server, tmp_path, caplog):
    from airflow_mlplatform.exceptions import ValohaiError
    from airflow_mlplatform.operators.valohai import ValohaiDownloadOutputsOperator

    ex = _finished_train(server)
    server.files.clear()  # the storage answers 404 for the signed URL
    op = ValohaiDownloadOutputsOperator(
        task_id="d", execution=ex["id"], destination=str(tmp_path), names=["model.pkl"], hook_kwargs=FAST
    )
    with pytest.raises(ValohaiError) as failed:
        op.execute(_context(try_number=1))
    message = str(failed.value)
    assert "HTTP 404" in message and "?<redacted>" in message and "model.pkl" in message
    assert "signature" not in message
    import traceback

    assert "signature" not in "".join(traceback.format_exception(failed.value))
    assert "signature" not in caplog.text


@pytest.mark.parametrize(("retries", "expected"), [(0, "stopped"), (2, "started")])
def test_lost_contact_stops_the_execution_only_when_no_retry_will_reattach(server, retries, expected):
    from airflow_mlplatform.exceptions import ValohaiError

    hook = ValohaiHook(**FAST)
    ex = hook.create_execution(execution_payload(project_id=PROJECT_ID, commit="main", step="forever"))
    op = ValohaiSubmitExecutionOperator(task_id="t", step="forever", retries=retries, hook_kwargs=FAST)
    event = {"status": "error", "message": "HTTP 503 after 5 retries", "execution_id": ex["id"]}
    with pytest.raises(ValohaiError, match="HTTP 503 after 5 retries"):
        op.execute_complete(_context(try_number=1), event)
    server.advance(1000)
    assert server.status_of(server.executions[ex["id"]]) == expected


def test_values_and_lint_errors_fail_before_anything_is_submitted(server, run_dag, dags_folder, capfd):
    yaml_file = dags_folder / "valohai_checks" / "valohai.yaml"
    yaml_file.parent.mkdir(exist_ok=True)
    yaml_file.write_text(
        "- step:\n    name: train\n    image: python:3.12\n    command: python train.py\n"
        "    parameters:\n      - name: epochs\n        type: integer\n        min: 1\n        max: 100\n"
        "- step:\n    name: stubborn\n    image: python:3.12\n    command: python train.py\n"
        "    stop-condition: stop me if you can\n"
    )
    src = f"""
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.operators.valohai import ValohaiSubmitExecutionOperator

with DAG("valohai_checks", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    ValohaiSubmitExecutionOperator(task_id="too_many_epochs", project="acme/demo", step="train",
                                   parameters={{"epochs": "{{{{ 500 }}}}"}}, valohai_yaml={str(yaml_file)!r})
    ValohaiSubmitExecutionOperator(task_id="bad_stop_condition", project="acme/demo", step="stubborn",
                                   valohai_yaml={str(yaml_file)!r})
"""
    result = run_dag(src, "valohai_checks")
    assert result.task_states() == {"too_many_epochs": "failed", "bad_stop_condition": "failed"}
    captured = capfd.readouterr()
    log = captured.out + captured.err
    assert "parameter 'epochs' = '500' breaks its definition (type integer, min 1, max 100" in log
    assert "`stop-condition` is not a valid expression" in log
    assert server.api_requests() == []  # nothing reached Valohai, not even a project lookup


def test_a_nan_parameter_is_refused_before_anything_is_submitted(server, run_dag, capfd):
    src = """
import pendulum
from airflow.sdk import DAG
from airflow_mlplatform.operators.valohai import ValohaiSubmitExecutionOperator

with DAG("valohai_nan", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    ValohaiSubmitExecutionOperator(task_id="nan_lr", project="acme/demo", step="train",
                                   parameters={"epochs": 3, "lr": float("nan")})
"""
    result = run_dag(src, "valohai_nan")
    assert result.task_states() == {"nan_lr": "failed"}
    captured = capfd.readouterr()
    log = captured.out + captured.err
    assert "ParameterError: Valohai parameter 'lr' is or holds nan (Valohai's API takes JSON" in log
    assert "pass a finite number" in log
    assert "Out of range float values" not in log
    assert server.api_requests() == []  # nothing reached Valohai

    op = ValohaiSubmitExecutionOperator(task_id="t", step="train", parameters={"grid": [0.1, float("-inf")]})
    with pytest.raises(ParameterError, match=r"Valohai parameter 'grid' is or holds -inf"):
        op._parameters({"params": {}})
    op.parameters = {"epochs": 3}
    with pytest.raises(ParameterError, match=r"Valohai parameter \(a DAG param\) 'lr' is or holds inf"):
        op._parameters({"params": {"lr": float("inf")}})
    assert op._parameters({"params": {"lr": 0.1}})[0] == {"lr": 0.1, "epochs": 3}


def test_trigger_and_sync_wait_log_status_changes_and_a_heartbeat_at_info(server, capsys):
    from datetime import datetime

    server.configure_step("slowish", durations={"queued": 50, "started": 80})  # 0.5 s, 0.8 s real
    hook = ValohaiHook(**FAST)
    payload = execution_payload(project_id=PROJECT_ID, commit="main", step="slowish")
    fast = {"poll_interval": 0.02, "max_poll_interval": 0.02, "status_log_interval": 0.25}

    async def first_event(t):
        async for event in t.run():
            return event.payload

    first = hook.create_execution(payload)
    assert (
        asyncio.run(first_event(ValohaiExecutionTrigger(execution_id=first["id"], **fast)))["status"]
        == "finished"
    )
    second = hook.create_execution(payload)
    hook.wait_for_execution(second["id"], **fast)
    out = capsys.readouterr().out.splitlines()
    for ex in (first, second):
        lines = [line for line in out if f"({ex['id']})" in line]
        assert lines and all("[info " in line for line in lines)  # INFO, not debug
        changes = [line.split(" is ")[1].split(";")[0] for line in lines if " is still " not in line]
        assert changes[-1] == "complete (was started)"  # a line per change, with the one before
        assert changes[-2] in ("started (was queued)", "started")  # queued may pass before the first poll
        assert any(" is still started; waiting for " in line for line in lines)  # a line every 0.25 s
        assert len(lines) < len(server.api_requests("GET", ex["id"]))  # not a line per poll
        stamps = [datetime.fromisoformat(line.split()[0]) for line in lines]
        for before, at, line in zip(stamps, stamps[1:], lines[1:], strict=False):
            if " is still " in line:  # a heartbeat comes status_log_interval after the last line
                assert (at - before).total_seconds() >= 0.25
