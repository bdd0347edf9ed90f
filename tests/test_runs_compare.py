"""``mlplatform runs compare`` over stored records: the table, --last, --diff, the HTML report,
and the errors."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from airflow_mlplatform.cli import main
from airflow_mlplatform.record_store import iter_records
from airflow_mlplatform.runs_compare import compare, format_cell, series_of, text_table
from stored_records import write


def _three_runs(base: str) -> None:
    for i, c in enumerate([0.1, 1.0, 10.0]):
        rows = [
            {"epoch": e, "loss": 1.0 / (e + 1 + c), "accuracy": 0.6 + 0.01 * e + 0.02 * i} for e in range(5)
        ]
        write(base, dag="qs", run=f"run{i}", task="train", hour=i, parameters={"C": c, "seed": 42},
              metric_rows=rows)  # fmt: skip
    # a retried run: the latest try is the row
    write(base, dag="qs", run="run1", task="train", try_=2, hour=1.5, parameters={"C": 1.0, "seed": 42},
          metric_rows=[{"accuracy": 0.99}], where={"backend": "kubernetes", "pod": "train-abc"})  # fmt: skip
    write(base, dag="qs", run="run0", task="prepare", hour=0)


def test_table_has_one_row_per_run_with_the_latest_try(tmp_path: Path, capsys) -> None:
    base = str(tmp_path)
    _three_runs(base)
    capsys.readouterr()
    assert main(["runs", "compare", "qs", "train", "--base", base]) == 0
    rows = _parse(capsys.readouterr().out)
    assert list(rows[0]) == ["run", "try", "started", "status", "duration_s", "code", "where",
                             "param:C", "param:seed", "metric:accuracy", "metric:epoch", "metric:loss"]  # fmt: skip
    assert [r["run"] for r in rows] == ["run0", "run1", "run2"]
    assert rows[1]["try"] == "2" and rows[1]["where"] == "kubernetes train-abc"
    assert rows[1]["metric:accuracy"] == "0.99" and rows[1]["metric:loss"] == ""
    assert rows[0]["code"] == "abababababab" and rows[0]["where"] == "local worker-1"
    assert (rows[2]["param:C"], rows[2]["param:seed"], rows[2]["status"]) == ("10", "42", "success")
    assert rows[2]["metric:epoch"] == "4" and rows[2]["duration_s"] == "3"


def _parse(out: str) -> list[dict[str, str]]:
    """The text table's rows as {column: cell}, cut at the header's column starts."""
    lines = out.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    names = lines[0].split()
    ends = [*starts[1:], None]
    return [{n: line[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)} for line in lines[2:]]


def test_last_and_diff(tmp_path: Path, capsys) -> None:
    base = str(tmp_path)
    _three_runs(base)
    capsys.readouterr()
    assert main(["runs", "compare", "qs", "train", "--base", base, "--last", "2", "--diff"]) == 0
    rows = _parse(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["run1", "run2"]
    # seed (42 twice), status and code (the same) are dropped; C, accuracy, started, where differ
    assert set(rows[0]) == {"run", "try", "started", "where", "param:C", "metric:accuracy", "metric:epoch",
                            "metric:loss"}  # fmt: skip


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_report_is_self_contained_with_scatter_and_series(tmp_path: Path, capsys) -> None:
    base = str(tmp_path / "out")
    _three_runs(base)
    capsys.readouterr()
    report = tmp_path / "report.html"
    assert main(["runs", "compare", "qs", "train", "--base", base, "--html", str(report)]) == 0
    assert str(report) in capsys.readouterr().err
    text = report.read_text()
    parser = _Tags()
    parser.feed(text)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert not re.search(r"(src|href)\s*=", text)  # nothing loaded from anywhere
    labels = [a.get("aria-label") for t, a in parser.tags if t == "svg"]
    # scatter: numeric parameters that changed (C; not seed, always 42) x final metrics (not the
    # step counter epoch); series: accuracy and loss (epoch is the x axis)
    assert "accuracy against C" in labels and "loss against C" in labels
    assert not [x for x in labels if x.endswith("against seed") or x.startswith("epoch")]
    assert "accuracy series" in labels and "loss series" in labels and "epoch series" not in labels
    circles = [a for t, a in parser.tags if t == "circle"]
    assert len(circles) == 3 + 2  # C x (accuracy: 3 runs, loss: 2)
    # the C=10 run's dot is right of the C=0.1 run's dot in the accuracy-vs-C plot
    svg = text[text.index('aria-label="accuracy against C"') :]
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', svg)[:3]]
    assert xs[0] < xs[1] < xs[2]
    polylines = [a for t, a in parser.tags if t == "polyline"]
    assert len(polylines) == 3 + 2  # accuracy: 3 runs, loss: 2 (run1's try 2 has none)
    assert "<td" in text and "run2" in text


def test_errors_are_clear(tmp_path: Path, capsys) -> None:
    assert main(["runs", "compare", "nope", "train", "--base", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no execution records of task 'train' in DAG 'nope'" in err and "output_base" in err
    with pytest.raises(SystemExit):
        main(["runs", "compare", "qs", "train", "--last", "0"])
    assert "--last must be a whole number of runs >= 1" in capsys.readouterr().err
    _three_runs(str(tmp_path))
    target = tmp_path / "missing-dir" / "r.html"
    assert main(["runs", "compare", "qs", "train", "--base", str(tmp_path), "--html", str(target)]) == 1
    assert "cannot write the HTML report" in capsys.readouterr().err


def test_series_and_cells() -> None:
    assert series_of([{"loss": 3}, {"step": 10, "loss": 2.0, "note": "x"}, {"loss": True}, "junk"]) == {
        "loss": [[0.0, 3.0], [10.0, 2.0]]
    }
    assert format_cell(0.123456) == "0.1235" and format_cell(None) == "" and format_cell(True) == "true"
    assert format_cell({"b": 1, "a": [1]}) == '{"a":[1],"b":1}'
    assert format_cell("x" * 30, width=5) == "xxxx…"


def test_mapped_task_gets_a_row_per_index(tmp_path: Path) -> None:
    base = str(tmp_path)
    for m in (0, 1):
        write(base, dag="d", run="r", task="score", map_index=m, parameters={"shard": m})
    comparison = compare(iter_records(base=base), dag_id="d", task_id="score")
    assert [r.map_index for r in comparison.rows] == [0, 1]
    table = text_table(comparison)
    assert table.splitlines()[0].split()[:3] == ["run", "try", "map_index"]


def test_series_of_the_most_recent_rows_only(tmp_path: Path) -> None:
    base = str(tmp_path)
    _three_runs(base)
    every = compare(iter_records(base=base), dag_id="qs", task_id="train")
    recent = compare(iter_records(base=base), dag_id="qs", task_id="train", series=2)
    assert [bool(r.series) for r in recent.rows] == [False, True, True]
    assert [r.series for r in recent.rows[1:]] == [r.series for r in every.rows[1:]]
    assert [r.metrics for r in recent.rows] == [r.metrics for r in every.rows]
    assert not any(r.series for r in compare(iter_records(base=base), dag_id="qs", task_id="train",
                                             series=False).rows)  # fmt: skip
