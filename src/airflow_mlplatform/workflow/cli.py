"""``mlplatform workflow ...``: validate, generate, export, schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import WorkflowError, WorkflowValidationError


def register(parser: argparse.ArgumentParser) -> None:
    """Add the workflow sub-commands to ``parser``.

    :param parser: the ``workflow`` group's parser.
    """
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check workflow files; print every error; exit 1 on any")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="workflow files or folders of them")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("generate", help="write a Python DAG file per workflow file")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("-o", "--output-dir", type=Path, required=True, metavar="DIR")
    p.add_argument("--no-format", action="store_true", help="do not run ruff format on the result")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export", help="write the workflow a DAG was built from")
    p.add_argument("dag_id", metavar="DAG_ID")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    p.add_argument("--dags-folder", type=Path, help="where to look (default: Airflow's dags folder)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("schema", help="print the JSON Schema of the workflow format")
    p.add_argument("--path", action="store_true", help="print its path instead of its text")
    p.set_defaults(func=cmd_schema)


def _print_errors(errors: list[WorkflowError]) -> None:
    for e in errors:
        print(str(e), file=sys.stderr)


def cmd_validate(args: Any) -> int:
    """``mlplatform workflow validate FILE...``."""
    from airflow_mlplatform.workflow import validate_files

    files = _expand(args.files)
    errors = validate_files(files)
    if errors:
        _print_errors(errors)
        n = len({e.file for e in errors})
        print(f"{len(errors)} error(s) in {n} of {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"{len(files)} workflow file(s) valid")
    return 0


def _expand(paths: list[Path]) -> list[Path]:
    from airflow_mlplatform.workflow.api import SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


def cmd_generate(args: Any) -> int:
    """``mlplatform workflow generate FILE... -o DIR``."""
    from airflow_mlplatform.workflow import read_workflow
    from airflow_mlplatform.workflow.codegen import generate_file

    status = 0
    for f in _expand(args.files):
        try:
            wf = read_workflow(f)
        except WorkflowValidationError as e:
            _print_errors(e.errors)
            status = 1
            continue
        except WorkflowError as e:
            _print_errors([e])
            status = 1
            continue
        print(generate_file(wf, args.output_dir, format_with_ruff=not args.no_format))
    return status


def cmd_export(args: Any) -> int:
    """``mlplatform workflow export DAG_ID``: the workflow text of a DAG in the dags folder."""
    from airflow_mlplatform.workflow import export_dag

    dag = find_dag(args.dag_id, args.dags_folder)
    if dag is None:
        print(f"no DAG {args.dag_id!r} found in the dags folder", file=sys.stderr)
        return 1
    try:
        text = export_dag(dag)
    except WorkflowError as e:
        print(e.message, file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(args.output)
    else:
        sys.stdout.write(text)
    return 0


def find_dag(dag_id: str, dags_folder: Path | None = None) -> Any:
    """Parse the dags folder with Airflow's DagBag and return DAG ``dag_id`` (or None).

    :param dag_id: the DAG id.
    :param dags_folder: where to look (default: Airflow's configured dags folder).
    """
    from airflow.dag_processing.dagbag import BundleDagBag

    folder = Path(dags_folder) if dags_folder else Path(_configured_dags_folder())
    # as the dag processor parses it: the folder is on sys.path (a one-off CLI process)
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder)
    return bag.dags.get(dag_id)


def _configured_dags_folder() -> str:
    from airflow.sdk import conf

    return conf.get("core", "dags_folder")


def cmd_schema(args: Any) -> int:
    """``mlplatform workflow schema``."""
    from airflow_mlplatform.workflow import schema_path

    path = schema_path()
    print(path if args.path else path.read_text(encoding="utf-8"))
    return 0
