"""``mlplatform runs compare DAG_ID TASK_ID [--last N] [--diff] [--html FILE] [--base URI]``:
the runs of one task side by side, read from the execution records under ``output_base``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import MLPlatformError, NoRecordsError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--last must be a whole number of runs >= 1, got {text!r}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``runs`` sub-commands to ``parser``.

    :param parser: the ``runs`` group's parser.
    """
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "compare",
        help="one row per run of a task: parameters, final metrics, code sha, duration, where it ran",
    )
    p.add_argument("dag_id", metavar="DAG_ID")
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("--last", type=_positive, metavar="N", help="only the N most recent runs")
    p.add_argument("--diff", action="store_true", help="only the columns whose values differ")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument(
        "--base", metavar="URI", help="where records are stored (default: [mlplatform] output_base)"
    )
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: Any) -> int:
    """``mlplatform runs compare``."""
    from airflow_mlplatform.runs_compare import load, text_table
    from airflow_mlplatform.runs_report import MAX_LINES, report_html

    try:
        # the report draws the series of the most recent runs only: read no others
        series = MAX_LINES if args.html else False
        comparison = load(
            dag_id=args.dag_id, task_id=args.task_id, last=args.last, base=args.base, series=series
        )
        if not comparison.rows:
            where = args.base or "[mlplatform] output_base"
            raise NoRecordsError(
                f"no execution records of task {args.task_id!r} in DAG {args.dag_id!r} under {where}: "
                "check the ids (as in Airflow) and that output_base is the one the workers write to"
            )
    except MLPlatformError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(text_table(comparison, diff=args.diff))
    if args.html:
        try:
            args.html.write_text(report_html(comparison, diff=args.diff), encoding="utf-8")
        except OSError as e:
            print(f"error: cannot write the HTML report to {args.html}: {e}", file=sys.stderr)
            return 1
        print(f"HTML report: {args.html}", file=sys.stderr)
    return 0
