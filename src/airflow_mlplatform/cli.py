"""The ``mlplatform`` command: a small dispatcher of sub-command groups.

``mlplatform workflow validate|generate|export|schema`` (see :mod:`airflow_mlplatform.workflow.cli`),
``mlplatform runs compare`` (see :mod:`airflow_mlplatform.runs_cli`),
``mlplatform usage`` (see :mod:`airflow_mlplatform.usage_report`).
Other groups register themselves in :data:`GROUPS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

# group name -> (help, function that adds the group's sub-commands to its parser)
GROUPS: dict[str, tuple[str, str]] = {
    "workflow": ("validate, generate and export workflow files", "airflow_mlplatform.workflow.cli:register"),
    "runs": (
        "compare the runs of a task from their execution records",
        "airflow_mlplatform.runs_cli:register",
    ),
    "usage": (
        "core-hours, GPU-hours, memory GiB-hours, runs, failures and cost per tenant",
        "airflow_mlplatform.usage_report:register",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every group's sub-commands."""
    import importlib

    parser = argparse.ArgumentParser(prog="mlplatform", description="airflow-mlplatform tools")
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    for name, (help_, target) in GROUPS.items():
        module, _, attr = target.partition(":")
        register: Callable[[argparse.ArgumentParser], None] = getattr(importlib.import_module(module), attr)
        register(groups.add_parser(name, help=help_, description=help_))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    :param argv: arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
