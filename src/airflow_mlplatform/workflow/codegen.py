"""Generate a readable Python DAG file that builds the same DAG as a workflow.

The file uses the provider's operators directly (``NotebookOperator(...)``), one keyword per
line, references as ``train.output["model_path"]`` and ``param("C")``, explicit ``a >> b``
edges, and keeps the workflow's source in ``doc_md`` so the DAG can still be exported. It is
formatted with ruff when ruff is installed; without it the text is already in ruff's style.
"""

from __future__ import annotations

import datetime
import json
import keyword
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.workflow import refs
from airflow_mlplatform.workflow.model import Workflow
from airflow_mlplatform.workflow.registry import STEP_TYPES

_RESERVED = {"dag", "DAG", "Param", "TaskGroup", "datetime", "os", "param", "workflow_doc_md", "HERE",
             "WORKFLOW_SOURCE", "annotations"}  # fmt: skip
INDENT = "    "


def _names(ids: list[str], taken: set[str], suffix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in ids:
        name = re.sub(r"\W", "_", i)
        if name[0].isdigit():
            name = "_" + name
        while name in taken or keyword.iskeyword(name):
            name += suffix
        taken.add(name)
        out[i] = name
    return out


class _Gen:
    def __init__(self, wf: Workflow, out_dir: Path) -> None:
        self.wf = wf
        self.out_dir = out_dir
        self.imports: set[tuple[str, str, str | None]] = set()  # (module, name, alias)
        self.uses_param = False
        self.uses_here = False
        self.uses_datetime = False
        taken = set(_RESERVED)
        self.vars = _names([s.id for s in wf.steps], taken, "_task")
        self.group_vars = _names(list(wf.groups), taken, "_group")
        self.callables: dict[str, str] = {}

    # -- values ----------------------------------------------------------------------------
    def lit(self, v: Any, *, strings: bool = False, depth: int = 1) -> str:
        if isinstance(v, refs.StepOutput):
            if strings:
                return self.lit(v.jinja())
            base = f"{self.vars[v.step]}.output"
            return base if v.name == "return_value" else f"{base}[{self.lit(v.name)}]"
        if isinstance(v, refs.ParamRef):
            if strings:
                return self.lit(v.jinja())
            self.uses_param = True
            return f"param({self.lit(v.name)})"
        if isinstance(v, refs.Interpolation):
            return self.lit(v.jinja())
        if isinstance(v, ModelRef):
            self.imports.add(("airflow_mlplatform.models", "ModelRef", None))
            return f"ModelRef({self.lit(v.name)}, alias={self.lit(v.alias)})"
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, float) and not math.isfinite(v):
            return f'float("{v}")'
        if v is None or isinstance(v, (bool, int, float)):
            return repr(v)
        if isinstance(v, (datetime.timedelta, datetime.datetime)):
            self.uses_datetime = True
        if isinstance(v, datetime.timedelta):
            return f"datetime.timedelta(seconds={_num(v.total_seconds())})"
        if isinstance(v, datetime.datetime):
            clock = [v.hour, v.minute, v.second] + ([v.microsecond] if v.microsecond else [])
            parts = [v.year, v.month, v.day] + (clock if any(clock) else [])
            offset = v.utcoffset()
            tz = (
                f"datetime.timezone(datetime.timedelta(seconds={_num(offset.total_seconds())}))"
                if offset
                else "datetime.timezone.utc"
            )
            return f"datetime.datetime({', '.join(map(str, parts))}, tzinfo={tz})"
        if isinstance(v, dict):
            items = [f"{self.lit(k)}: {self.lit(x, strings=strings, depth=depth + 1)}" for k, x in v.items()]
            return self._wrap("{", "}", items, depth)
        if isinstance(v, list):
            return self._wrap("[", "]", [self.lit(x, strings=strings, depth=depth + 1) for x in v], depth)
        raise TypeError(f"cannot write {type(v).__name__} as Python")

    def _wrap(self, open_: str, close: str, items: list[str], depth: int) -> str:
        if not items:
            return open_ + close
        one_line = open_ + ", ".join(items) + close
        if len(one_line) + 4 * (depth + 1) + 30 <= 110 and "\n" not in one_line:
            return one_line
        pad = INDENT * (depth + 1)
        return open_ + "\n" + "".join(f"{pad}{i},\n" for i in items) + INDENT * depth + close

    def path(self, value: str) -> str:
        if not os.path.isabs(value):
            return self.lit(value)
        self.uses_here = True
        rel = os.path.relpath(value, self.out_dir)
        return f"os.path.normpath(os.path.join(HERE, {self.lit(rel)}))"

    # -- code ------------------------------------------------------------------------------
    def call(self, func: str, kwargs: list[tuple[str, str]], depth: int) -> str:
        pad = INDENT * (depth + 1)
        body = "".join(f"{pad}{k}={v},\n" for k, v in kwargs)
        return f"{func}(\n{body}{INDENT * depth})"

    def step(self, step: Any) -> str:
        st = STEP_TYPES[step.type]
        self.imports.add((st.module, st.class_name, None))
        kw: list[tuple[str, str]] = [("task_id", self.lit(step.id))]
        if step.group is not None:
            kw.append(("task_group", self.group_vars[step.group]))
        fields = {f.kwarg: f for f in st.fields.values()}
        for k, v in step.kwargs.items():
            f = fields.get(k)
            if f is not None and f.kind in ("path", "dir") and isinstance(v, str):
                kw.append((k, self.path(v)))
            else:
                kw.append((k, self.lit(v, strings=bool(f and f.strings), depth=2)))
        for k, target in step.callables.items():
            kw.append((k, self.callable_name(target)))
        for k, v in step.task_kwargs.items():
            kw.append((k, self.lit(v, depth=2)))
        return f"{INDENT}{self.vars[step.id]} = {self.call(st.class_name, kw, 1)}\n"

    def callable_name(self, target: str) -> str:
        if target not in self.callables:
            module, sep, attr = target.partition(":")
            if not sep:
                module, _, attr = target.rpartition(".")
            head, _, rest = attr.partition(".")
            alias = head
            while (
                alias in _RESERVED
                or alias in self.vars.values()
                or alias in {a.split(".")[0] for a in self.callables.values()}
            ):
                alias = "_" + alias
            self.imports.add((module, head, alias if alias != head else None))
            self.callables[target] = alias + (f".{rest}" if rest else "")
        return self.callables[target]

    def render(self) -> str:
        wf = self.wf
        name = os.path.basename(wf.file)
        dag_kw: list[tuple[str, str]] = [(k, self.lit(v, depth=2)) for k, v in wf.dag_kwargs().items()]
        if wf.params:
            items = []
            for p in wf.params.values():
                args = [self.lit(p.default, depth=3)] + [
                    f"{k}={self.lit(v, depth=3)}" for k, v in p.param_kwargs().items()
                ]
                items.append(f"{self.lit(p.name)}: Param({', '.join(args)})")
            dag_kw.append(("params", self._wrap("{", "}", items, 1)))
        doc_args = f"WORKFLOW_SOURCE, name={self.lit(name)}"
        if wf.description is not None:
            doc_args += f", description={self.lit(wf.description)}"
        dag_kw.append(("doc_md", f"workflow_doc_md({doc_args})"))
        sdk_extra = (["Param"] if wf.params else []) + (["TaskGroup"] if wf.groups else [])
        body: list[str] = []
        for gid, g in wf.groups.items():
            gkw = [("group_id", self.lit(gid)), ("prefix_group_id", "False")]
            if g.tooltip is not None:
                gkw.append(("tooltip", self.lit(g.tooltip)))
            if g.parent is not None:
                gkw.append(("parent_group", self.group_vars[g.parent]))
            body.append(f"{INDENT}{self.group_vars[gid]} = {self.call('TaskGroup', gkw, 1)}\n")
        for step in wf.steps:
            body.append(self.step(step))
        edges = [f"{INDENT}{self.vars[u]} >> {self.vars[s.id]}\n" for s in wf.steps for u in s.upstream]
        if edges:
            body.append("\n" + "".join(edges))
        self.imports.update(("airflow.sdk", n, None) for n in ["DAG", *sdk_extra])
        self.imports.add(("airflow_mlplatform.workflow.embed", "workflow_doc_md", None))
        if self.uses_param:
            self.imports.add(("airflow_mlplatform.workflow.refs", "param", None))
        std = (["import datetime"] if self.uses_datetime else []) + (["import os"] if self.uses_here else [])
        doc = (wf.description + "\n\n") if wf.description else ""
        header = (
            f'"""{_doc_escape(doc)}Generated by ``mlplatform workflow generate`` from {name} (workflow format '
            f"version {wf.version}).\n\nEdit the workflow file and generate again rather than editing this file.\n"
            '"""\n\n'
            "from __future__ import annotations\n\n" + "".join(f"{i}\n" for i in std) + "\n" + _import_lines(self.imports) + "\n\n"
        )  # fmt: skip
        if self.uses_here:
            header += "HERE = os.path.dirname(os.path.realpath(__file__))\n"
        header += f"WORKFLOW_SOURCE = {_source_literal(wf.text)}\n\n"
        dag = f"with {self.call('DAG', dag_kw, 0)} as dag:\n" + "".join(body)
        return header + dag


def _import_lines(imports: set[tuple[str, str, str | None]]) -> str:
    """``from`` imports sorted and combined as isort (ruff's I rules) writes them."""
    lines = []
    for module in sorted({m for m, _, _ in imports}):
        plain = sorted(n for m, n, a in imports if m == module and a is None)
        if plain:
            lines.append(f"from {module} import {', '.join(plain)}")
        lines += [
            f"from {module} import {n} as {a}" for m, n, a in sorted(imports, key=str) if m == module and a
        ]
    return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _doc_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _source_literal(text: str) -> str:
    """A triple-quoted literal of ``text`` that evaluates back to exactly ``text``."""
    body = text.replace("\\", "\\\\").replace("\r", "\\r")
    if '"""' in body or body.endswith('"'):
        body = body.replace('"', '\\"')
    return '"""\\\n' + body + '"""'


def ruff_executable() -> str | None:
    """Ruff on PATH or beside the running Python, or None."""
    local = Path(sys.executable).with_name("ruff")
    return str(local) if local.is_file() else shutil.which("ruff")


def generate_source(wf: Workflow, *, out_dir: str | Path, format_with_ruff: bool = True) -> str:
    """Python source of a DAG file equivalent to ``wf``, to be written into ``out_dir``.

    :param wf: a validated workflow.
    :param out_dir: where the file will be written (relative paths to files start there).
    :param format_with_ruff: run ``ruff format`` on the text when ruff is installed.
    """
    out_dir = Path(out_dir).resolve()
    text = _Gen(wf, out_dir).render()
    ruff = ruff_executable() if format_with_ruff else None
    if ruff:
        common = ["--isolated", "--quiet", "--line-length", "110", "--stdin-filename", "dag.py"]
        for cmd in (["check", "--select", "I", "--fix-only", "--exit-zero"], ["format"]):
            done = subprocess.run(
                [ruff, *cmd, *common, "-"],
                input=text,
                capture_output=True,
                text=True,
                check=False,
                cwd=out_dir,
            )
            if done.returncode == 0 and done.stdout:
                text = done.stdout
    return text


def generate_file(wf: Workflow, out_dir: str | Path, *, format_with_ruff: bool = True) -> Path:
    """Write ``<workflow id>.py`` into ``out_dir`` and return its path.

    :param wf: a validated workflow.
    :param out_dir: the folder (created if missing).
    :param format_with_ruff: run ``ruff format`` when ruff is installed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / (re.sub(r"[^A-Za-z0-9_]", "_", wf.id) + ".py")
    target.write_text(generate_source(wf, out_dir=out, format_with_ruff=format_with_ruff), encoding="utf-8")
    return target
