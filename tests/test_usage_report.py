"""``mlplatform usage``: sums per tenant/profile/DAG, prices, CSV and a self-contained HTML report."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta

import pytest

from airflow_mlplatform import cli, usage_report
from usage_records import PROFILES, START, record, write

CPU, GPU = PROFILES
RATES = """
currency: EUR
resources: {cpu: 0.04, memory: 0.01, gpu: 2.0, A100: 3.0}
profiles:
  cpu-small: {cpu: 0.05}
valohai:
  aws-p3-2xlarge: 3.06
"""


def _v1(**kwargs) -> dict:
    rec = record(**kwargs)
    rec.pop("usage")
    rec["schema_version"] = 1
    return rec


def test_sums_core_gpu_and_memory_hours_runs_failures_and_cost_per_tenant(tmp_path):
    rates_file = tmp_path / "rates.yaml"
    rates_file.write_text(RATES)
    rates = usage_report.load_rates(rates_file)
    records = [
        record(dag_id="a", run_id="r1", task_id="t", started=START, seconds=3600, profile=CPU),
        record(
            dag_id="a", run_id="r2", task_id="t", started=START, seconds=1800, profile=CPU, status="failed"
        ),
        record(
            dag_id="b", run_id="r1", task_id="t", started=START + timedelta(days=1), seconds=7200, profile=GPU
        ),
    ]
    report = usage_report.summarize(records, by=["tenant"], rates=rates)
    research, vision = report.groups[("research",)], report.groups[("vision",)]
    assert (research.runs, research.failures) == (2, 1)
    assert research.core_hours == pytest.approx(2 * 1.5)  # 2 cores, running 1.5 h (pending not billed)
    assert research.memory_gib_hours == pytest.approx(4 * 1.5)
    assert research.cost == pytest.approx(3 * 0.05 + 6 * 0.01)  # the profile's own cpu price wins
    assert (vision.gpu_hours, vision.core_hours) == (pytest.approx(2.0), pytest.approx(8.0))
    assert vision.cost == pytest.approx(8 * 0.04 + 32 * 0.01 + 2 * 3.0)  # the A100 price
    assert report.total.runs == 3
    assert report.daily[(START.date().isoformat(), "research")] == pytest.approx(3.0)


def test_groups_by_several_keys_and_reads_version_1_records_as_one_core():
    records = [
        record(dag_id="a", run_id="r1", task_id="t", started=START, seconds=3600, profile=CPU),
        _v1(dag_id="old", run_id="r1", task_id="t", started=START, seconds=3600, profile=CPU),
    ]
    report = usage_report.summarize(records, by=["tenant", "profile", "dag"])
    assert set(report.groups) == {("research", "cpu-small", "a"), ("(none)", "cpu-small", "old")}
    old = report.groups[("(none)", "cpu-small", "old")]
    assert old.core_hours == pytest.approx((3600 + 12) / 3600)  # the try's whole duration, one core


def test_valohai_environments_are_priced_by_name():
    rates = usage_report.Rates(valohai={"aws-p3-2xlarge": 3.0}, resources={"cpu": 100.0})
    rec = record(dag_id="v", run_id="r", task_id="t", started=START, seconds=1, profile=CPU)
    rec["usage"].update(
        backend="valohai",
        kind="ValohaiExecution",
        replicas=[],
        totals={"cpu": 0, "gpus": 0, "memory_gib": 0},
        billable_s=1800,
        valohai={"environment": "aws-p3-2xlarge", "duration_s": 1800},
    )
    assert usage_report.try_usage(rec, rates).cost == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("resources: {cpu: -1}", "a price must be a number >= 0"),
        ("resources: {cpu: cheap}", "a price must be a number >= 0"),
        ("prices: {}", "unknown keys"),
        ("[1, 2]", "write a mapping"),
    ],
)
def test_a_bad_rates_file_says_what_is_wrong(tmp_path, text, match):
    path = tmp_path / "rates.yaml"
    path.write_text(text)
    with pytest.raises(usage_report.RatesFileError, match=match):
        usage_report.load_rates(path)


def test_the_command_writes_a_table_csv_and_a_self_contained_html_report(tmp_path, capsys, caplog):
    base = tmp_path / "records"
    for day in range(3):
        for i, profile in enumerate(PROFILES):
            rec = record(
                dag_id=f"dag{i}",
                run_id=f"r{day}",
                task_id="t",
                started=START + timedelta(days=day),
                seconds=3600,
                profile=profile,
            )
            write(base, rec)
    write(base, _v1(dag_id="old", run_id="r0", task_id="t", started=START, seconds=60, profile=CPU))
    broken = base / "dag0" / "broken" / "t" / "try-1"
    broken.mkdir(parents=True)
    (broken / "execution_record.json").write_text('{"schema_version": 2, "task": ')  # partial
    outside = record(
        dag_id="dag0", run_id="later", task_id="t", started=START + timedelta(days=40), seconds=9, profile=CPU
    )
    write(base, outside)
    rates = tmp_path / "rates.yaml"
    rates.write_text(RATES)
    out_csv, out_html = tmp_path / "u.csv", tmp_path / "u.html"
    argv = [
        "usage",
        "--base",
        str(base),
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-03",
        "--by",
        "tenant,profile",
    ]
    code = cli.main([*argv, "--rates", str(rates), "--csv", str(out_csv), "--html", str(out_html)])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"^research\s+cpu-small\s+2\s+0\s+4\.00", text, re.M), text  # 2 days x 2 cores x 1 h
    assert re.search(r"^vision\s+gpu-small\s+2\s+0\s+8\.00\s+2\.00", text, re.M), text
    assert "broken" in caplog.text and "execution_record.json" in caplog.text  # skipped, named
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == [
        "tenant",
        "profile",
        "runs",
        "failures",
        "core_hours",
        "gpu_hours",
        "memory_gib_hours",
        "cost (EUR)",
    ]
    assert rows[-1][0] == "total" and rows[-1][2] == "5"  # 4 in range + the version 1 record
    page = out_html.read_text()
    assert "<svg" in page and page.count("<rect") >= 4 and "<table>" in page
    assert not re.search(r"<script|<link|src=|https?://(?!www\.w3\.org/2000/svg)", page)  # nothing fetched
    assert "Usage 2026-11-01 to 2026-11-02" in page


@pytest.mark.parametrize(
    ("args", "match"), [(["--since", "yesterday"], "--since 'yesterday'"), (["--by", "team"], "--by 'team'")]
)
def test_bad_arguments_fail_before_reading_anything(tmp_path, capsys, args, match):
    assert cli.main(["usage", "--base", str(tmp_path / "none"), *args]) == 1
    assert match in capsys.readouterr().err


def test_json_of_the_sample_is_a_version_2_record():
    rec = record(dag_id="a", run_id="r", task_id="t", started=START, seconds=1, profile=GPU)
    assert rec["schema_version"] == 2 and json.loads(json.dumps(rec))["usage"]["tenant"] == "vision"
