"""Check a workflow document and turn it into a :class:`~.model.Workflow`, reporting every problem.

The checks here are the same as the JSON Schema's (shipped beside this module) plus what a
schema cannot say: references to unknown steps or outputs, cycles, duplicate step ids, files
that do not exist, operators that are not installed, unknown compute profiles. They are cheap
(no jsonschema, no operator imports) so a DAG file can run them on every parse.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import WorkflowError, WorkflowValidationError
from airflow_mlplatform.models import ModelRef
from airflow_mlplatform.workflow import refs
from airflow_mlplatform.workflow.model import FORMAT_VERSION, GroupSpec, ParamSpec, StepSpec, Workflow
from airflow_mlplatform.workflow.registry import COMMON_FIELDS, STEP_TYPES, Field, StepType
from airflow_mlplatform.workflow.source import Path_, Source

TOP_FIELDS = (
    "version",
    "id",
    "description",
    "schedule",
    "start_date",
    "catchup",
    "max_active_runs",
    "tags",
    "default_args",
    "params",
    "groups",
    "steps",
    "layout",
)
DEFAULT_ARGS = ("owner", "retries", "retry_delay", "timeout", "depends_on_past", "email", "trigger_rule")
PARAM_FIELDS = ("type", "default", "description", "title", "enum", "minimum", "maximum", "minLength",
                "maxLength", "pattern", "items")  # fmt: skip
PARAM_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
TRIGGER_RULES = ("all_success", "all_failed", "all_done", "all_done_min_one_success", "all_skipped",
                 "one_success", "one_done", "one_failed", "none_failed", "none_failed_min_one_success",
                 "none_skipped", "always")  # fmt: skip
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly",
                    "@yearly", "@annually")  # fmt: skip
ID_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
DAG_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: Most steps in one workflow.
MAX_STEPS = 10_000


class _Checker:
    """Collects errors while reading one document."""

    def __init__(self, src: Source, base_dir: Path) -> None:
        self.src = src
        self.base_dir = base_dir
        self.errors: list[WorkflowError] = []
        self.ref_paths: dict[Path_, list[Path_]] | None = None
        self._roots: list[Path] | None = None

    def allowed_roots(self) -> list[Path]:
        """Folders notebook/script paths may point into (see :func:`allowed_roots`)."""
        if self._roots is None:
            self._roots = allowed_roots(Path(self.src.file), self.base_dir)
        return self._roots

    def err(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.errors.append(self.src.error(path, message, key=key))

    # -- small typed readers ---------------------------------------------------------------
    def unknown_keys(self, path: Path_, data: dict[str, Any], allowed: Any, what: str) -> None:
        for k in data:
            if k not in allowed:
                self.err((*path, k), f"unknown field {k!r} in {what}; expected one of: {', '.join(allowed)}",
                         key=True)  # fmt: skip

    def typed(self, path: Path_, value: Any, kind: str, what: str) -> bool:
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list),
            "dict": isinstance(value, dict),
            "command": isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(v, (str, refs.Interpolation)) for v in value)),
            "callable": isinstance(value, str),
            "path": isinstance(value, str),
            "dir": isinstance(value, str),
            "any": True,
        }[kind]
        if not ok:
            expected = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false",
                        "list": "a list", "dict": "a mapping", "command": "a string or a list of strings",
                        "callable": "a string module:function", "path": "a file path",
                        "dir": "a folder path"}[kind]  # fmt: skip
            self.err(path, f"{what} must be {expected}, got {_describe(value)}")
        return ok

    def duration(self, path: Path_, value: Any, what: str) -> datetime.timedelta | None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return datetime.timedelta(seconds=value)
        if isinstance(value, str) and (m := DURATION_RE.match(value)):
            return datetime.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        self.err(path, f"{what} must be seconds or a duration like 30s, 5m, 2h, 1d; got {_describe(value)}")
        return None

    def convert(self, path: Path_, value: Any, *, templated: bool, what: str) -> Any:
        """Turn strings with ``${{ }}`` into references; refuse them where not templated."""
        if isinstance(value, str):
            converted, bad = refs.parse_string(value)
            for b in bad:
                self.err(path, f"bad reference {b!r}; expected ${{{{ steps.STEP.outputs.NAME }}}}, "
                               "${{ params.NAME }} or, as the whole value, ${{ models.NAME@ALIAS }}")  # fmt: skip
            if converted is not value and not templated:
                self.err(path, f"{what} is not templated, so it cannot hold references (${{{{ ... }}}})")
                return value
            return converted
        if isinstance(value, dict):
            return {k: self.convert((*path, k), v, templated=templated, what=what) for k, v in value.items()}
        if isinstance(value, list):
            return [self.convert((*path, i), v, templated=templated, what=what) for i, v in enumerate(value)]
        return value


def _non_negative(c: _Checker, path: Path_, value: int, what: str) -> bool:
    if value < 0:
        c.err(path, f"{what} must be 0 or more, got {value}")
        return False
    return True


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a mapping", type(None): "null"}  # fmt: skip
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"[:120]


def _param_type_ok(type_: str, value: Any) -> bool:
    return {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }.get(type_, True)


def _compute_problem(name: str, overrides: dict[str, Any] | None = None) -> str | None:
    """Why compute profile ``name`` is unusable, or None (also when profiles cannot be checked)."""
    from airflow_mlplatform.workflow.compute_check import compute_problem

    return compute_problem(name, overrides)


def _read_params(c: _Checker, data: Any) -> dict[str, ParamSpec]:
    out: dict[str, ParamSpec] = {}
    if data is None:
        return out
    if not isinstance(data, dict):
        c.err(("params",), f"params must be a mapping of name to parameter, got {_describe(data)}")
        return out
    for name, spec in data.items():
        path: Path_ = ("params", name)
        if not NAME_RE.match(name):
            c.err(path, f"parameter name {name!r} must be an identifier (letters, digits, _)", key=True)
        if not isinstance(spec, dict):  # shorthand: NAME: default
            spec = {"default": spec}
            if spec["default"] is not None:
                spec["type"] = next(
                    (t for t in ("boolean", "integer", "number", "string", "array", "object")
                     if _param_type_ok(t, spec["default"])),
                    None,
                )  # fmt: skip
        c.unknown_keys(path, spec, PARAM_FIELDS, f"parameter {name!r}")
        type_ = spec.get("type")
        if type_ is not None and type_ not in PARAM_TYPES:
            c.err(
                (*path, "type"),
                f"unknown parameter type {type_!r}; expected one of: {', '.join(PARAM_TYPES)}",
            )
            type_ = None
        default = spec.get("default")
        if type_ is not None and "default" in spec and not _param_type_ok(type_, default):
            c.err(
                (*path, "default"),
                f"default of parameter {name!r} must be of type {type_}, got {_describe(default)}",
            )
        if "enum" in spec and "default" in spec and default not in (spec["enum"] or []):
            c.err((*path, "default"), f"default of parameter {name!r} is not one of its enum values")
        _param_bounds(c, path, name, spec)
        desc = spec.get("description")
        if desc is not None and not isinstance(desc, str):
            c.err((*path, "description"), "description must be a string")
        extra = {k: v for k, v in spec.items() if k not in ("type", "default", "description")}
        out[name] = ParamSpec(name=name, type=type_, default=default, description=desc, extra=extra)
    return out


def _read_layout(c: _Checker, data: Any) -> dict[str, dict[str, float]]:
    """The designer's node positions: ``{step_id: {x, y}}``; checked for shape only, never built."""
    out: dict[str, dict[str, float]] = {}
    if data is None:
        return out
    if not isinstance(data, dict):
        c.err(("layout",), f"layout must be a mapping of step id to {{x, y}}, got {_describe(data)}")
        return out
    for step_id, pos in data.items():
        ok = isinstance(pos, dict) and set(pos) <= {"x", "y"}
        ok = ok and all(
            isinstance(pos.get(k), (int, float)) and not isinstance(pos.get(k), bool) for k in "xy"
        )
        if not ok:
            c.err(("layout", step_id), f"layout of step {step_id!r} must be {{x: number, y: number}}")
            continue
        out[step_id] = {"x": float(pos["x"]), "y": float(pos["y"])}
    return out


def _read_default_args(c: _Checker, data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data is None:
        return out
    if not isinstance(data, dict):
        c.err(("default_args",), "default_args must be a mapping")
        return out
    c.unknown_keys(("default_args",), data, DEFAULT_ARGS, "default_args")
    for k, v in data.items():
        path: Path_ = ("default_args", k)
        if k == "owner" and c.typed(path, v, "str", "owner"):
            out["owner"] = v
        elif k == "retries" and c.typed(path, v, "int", "retries") and _non_negative(c, path, v, k):
            out["retries"] = v
        elif k in ("retry_delay", "timeout"):
            d = c.duration(path, v, k)
            if d is not None:
                out["execution_timeout" if k == "timeout" else k] = d
        elif k == "depends_on_past" and c.typed(path, v, "bool", k):
            out[k] = v
        elif k == "email":
            if isinstance(v, str):
                v = [v]
            if c.typed(path, v, "list", k):
                out[k] = v
        elif k == "trigger_rule":
            if v in TRIGGER_RULES:
                out[k] = v
            else:
                c.err(path, f"unknown trigger_rule {v!r}; expected one of: {', '.join(TRIGGER_RULES)}")
    return out


def _read_groups(c: _Checker, data: Any) -> dict[str, GroupSpec]:
    out: dict[str, GroupSpec] = {}
    if data is None:
        return out
    if not isinstance(data, dict):
        c.err(("groups",), "groups must be a mapping of group id to {tooltip, group}")
        return out
    for gid, spec in data.items():
        path: Path_ = ("groups", gid)
        if not ID_RE.match(gid):
            c.err(path, f"group id {gid!r} may only hold letters, digits, _ and -", key=True)
        spec = spec or {}
        if not isinstance(spec, dict):
            c.err(path, "a group must be a mapping with optional tooltip and group (its parent)")
            continue
        c.unknown_keys(path, spec, ("tooltip", "group"), f"group {gid!r}")
        out[gid] = GroupSpec(id=gid, tooltip=spec.get("tooltip"), parent=spec.get("group"))
    for gid, g in out.items():
        if g.parent is not None and g.parent not in out:
            c.err(
                ("groups", gid, "group"),
                f"unknown parent group {g.parent!r}; defined groups: {', '.join(out)}",
            )
        seen, p = {gid}, g.parent
        while p in out:
            if p in seen:
                c.err(("groups", gid), f"group {gid!r} is nested inside itself")
                break
            seen.add(p)
            p = out[p].parent
    return out


def _read_step(c: _Checker, i: int, data: Any, params: dict[str, ParamSpec]) -> StepSpec | None:
    path: Path_ = ("steps", i)
    if not isinstance(data, dict):
        c.err(path, f"a step must be a mapping with id and type, got {_describe(data)}")
        return None
    sid = data.get("id")
    if not isinstance(sid, str) or not ID_RE.match(sid):
        c.err((*path, "id") if "id" in data else path,
              f"step id must be a string of letters, digits, _ and -, got {_describe(sid)}")  # fmt: skip
        sid = f"<step {i + 1}>"
    type_name = data.get("type")
    st: StepType | None = STEP_TYPES.get(type_name) if isinstance(type_name, str) else None
    if st is None:
        c.err((*path, "type") if "type" in data else path,
              f"unknown step type {type_name!r} in step {sid!r}; expected one of: {', '.join(STEP_TYPES)}")  # fmt: skip
        return None
    if not st.available():
        c.err((*path, "type"), f"step type {st.name!r} needs {st.module}.{st.class_name}, which cannot be "
                               "imported here (install the provider extra for it, or a newer provider)")  # fmt: skip
    allowed = [k for k in COMMON_FIELDS if k != "compute" or st.compute] + list(st.fields)
    c.unknown_keys(path, data, allowed, f"step {sid!r} of type {st.name}")
    step = StepSpec(id=sid, type=st.name, group=data.get("group"))
    for name, f in st.fields.items():
        if name in data:
            _read_field(c, (*path, name), data[name], name, f, step, params)
        elif f.required:
            c.err(path, f"step {sid!r} of type {st.name} needs field {name!r} ({f.description})")
    for group in st.one_of:
        if sum(1 for g in group if g in data) != 1:
            c.err(path, f"step {sid!r} needs exactly one of: {', '.join(group)}")
    step.kwargs.update(st.fixed)
    if st.cwd_default and "cwd" not in step.kwargs:
        step.kwargs["cwd"] = str(c.base_dir)
    _read_common(c, path, data, step, st)
    return step


def _read_field(c: _Checker, path: Path_, value: Any, name: str, f: Field, step: StepSpec,
                params: dict[str, ParamSpec]) -> None:  # fmt: skip
    what = f"field {name!r} of step {step.id!r}"
    converted = c.convert(path, value, templated=f.templated, what=what)
    is_ref = isinstance(converted, (refs.StepOutput, refs.ParamRef, refs.Interpolation, ModelRef))
    if not is_ref and not c.typed(path, value, f.kind, what):
        return
    if f.choices and not is_ref and value not in f.choices:
        c.err(path, f"{what} must be one of: {', '.join(f.choices)}; got {value!r}")
        return
    if f.kind == "callable":
        _check_callable(c, path, value, what)
        step.callables[f.kwarg] = value
        step.where[f.kwarg] = c.src.where(path)
        return
    if f.kind in ("path", "dir") and isinstance(converted, str):
        converted = _check_file(c, path, converted, what, folder=f.kind == "dir")
    if f.kwarg in ("parameters", "op_kwargs", "env") and isinstance(converted, dict):
        for k, v in converted.items():
            p = params.get(k)
            if p is not None and p.type is not None and not isinstance(v, (refs.StepOutput, refs.ParamRef,
                                                                             refs.Interpolation, ModelRef)):  # fmt: skip
                if f.strings:
                    continue
                if not _param_type_ok(p.type, v):
                    c.err((*path, k), f"parameter {k!r} of step {step.id!r} must be of type {p.type} "
                                      f"(as the global parameter), got {_describe(v)}")  # fmt: skip
            if f.strings and not isinstance(
                v, (str, refs.StepOutput, refs.ParamRef, refs.Interpolation, ModelRef)
            ):
                converted[k] = v if v is None else str(v)
    step.kwargs[f.kwarg] = converted


def _config_list(key: str) -> list[str]:
    from airflow_mlplatform.config import get_option

    raw = get_option(key) or ""
    return [part.strip() for part in re.split(r"[,\n]", raw) if part.strip()]


def _tree_of(folder: Path) -> Path:
    """The configured DAGs folder when ``folder`` is inside it, else the git work tree holding
    it, else ``folder``'s parent."""
    try:
        from airflow.sdk import conf

        dags = Path(conf.get("core", "dags_folder")).resolve()
    except Exception:  # Airflow not configured (a bare CLI run): no DAGs folder to use
        dags = None
    if dags is not None and folder.is_relative_to(dags):
        return dags
    for parent in (folder, *folder.parents):
        if (parent / ".git").exists():
            return parent
    return folder.parent  # a workflows/ folder beside notebooks/, scripts/


def allowed_roots(file: Path, base_dir: Path) -> list[Path]:
    """Folders a workflow's notebook, script and folder paths may point into.

    ``[mlplatform] workflow_allowed_roots`` (comma-separated absolute folders) when set; else the
    folder tree the workflow file belongs to: the DAGs folder when the file is inside it, else the
    git work tree holding it, else the parent of the file's folder.

    :param file: the workflow file.
    :param base_dir: the folder relative paths start from.
    """
    configured = _config_list("workflow_allowed_roots")
    if configured:
        return [Path(os.path.expanduser(r)).resolve() for r in configured]
    folder = file.resolve().parent if file.name and file.exists() else base_dir.resolve()
    return [_tree_of(folder)]


def _check_file(c: _Checker, path: Path_, value: str, what: str, *, folder: bool = False) -> str:
    if "{{" in value or "://" in value:
        return value
    full = value if os.path.isabs(value) else os.path.normpath(os.path.join(c.base_dir, value))
    real = Path(os.path.realpath(full))
    roots = c.allowed_roots()
    if not any(real.is_relative_to(r) for r in roots):
        c.err(path, f"{what}: {value!r} ({real}) is outside the folders workflow files may use "
                    f"({', '.join(map(str, roots))}); move it there, or a platform engineer adds its folder "
                    "to [mlplatform] workflow_allowed_roots")  # fmt: skip
        return full
    if not (os.path.isdir(full) if folder else os.path.isfile(full)):
        kind = "folder" if folder else "file"
        c.err(path, f"{what}: {kind} {value!r} does not exist (looked for {full})")
    return full


def _check_callable(c: _Checker, path: Path_, value: str, what: str) -> None:
    """``[mlplatform] workflow_callable_modules``, when set, lists the modules (and their
    submodules) whose functions ``python`` steps may call."""
    allowed = _config_list("workflow_callable_modules")
    if not allowed:
        return
    module = value.split(":", 1)[0] if ":" in value else value.rpartition(".")[0]
    if not any(module == m or module.startswith(m + ".") for m in allowed):
        c.err(path, f"{what}: module {module!r} is not one workflow files may call "
                    f"([mlplatform] workflow_callable_modules: {', '.join(allowed)})")  # fmt: skip


def _read_common(c: _Checker, path: Path_, data: dict[str, Any], step: StepSpec, st: StepType) -> None:
    for key in ("depends_on", "outputs"):
        v = data.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            c.err((*path, key), f"{key} must be a list of names, got {_describe(v)}")
            v = []
        setattr(step, key, list(v))
    if step.outputs and st.outputs_flag:
        step.kwargs[st.outputs_flag] = True
    if step.outputs and not st.named_outputs:
        c.err((*path, "outputs"), f"a {st.name} step has one output, return_value; it cannot declare outputs")
    for k, v in data.items():
        p: Path_ = (*path, k)
        if k == "description" and c.typed(p, v, "str", "description"):
            step.task_kwargs["doc_md"] = v
        elif k == "compute":
            _read_compute(c, p, v, step, st)
        elif k == "retries" and c.typed(p, v, "int", "retries") and _non_negative(c, p, v, k):
            step.task_kwargs["retries"] = v
        elif k in ("retry_delay", "timeout"):
            d = c.duration(p, v, k)
            if d is not None:
                step.task_kwargs["execution_timeout" if k == "timeout" else k] = d
        elif k == "trigger_rule":
            if v in TRIGGER_RULES:
                step.task_kwargs[k] = v
            else:
                c.err(p, f"unknown trigger_rule {v!r}; expected one of: {', '.join(TRIGGER_RULES)}")
        elif k == "group" and not isinstance(v, str):
            c.err(p, "group must be a group id")


def _read_compute(c: _Checker, p: Path_, v: Any, step: StepSpec, st: StepType) -> None:
    overrides: dict[str, Any] = {}
    if isinstance(v, dict) and st.compute_overrides:
        overrides = {k: x for k, x in v.items() if k != "profile"}
        v = v.get("profile")
        p = (*p, "profile")
    if not isinstance(v, str):
        shape = (
            "a profile name or {profile: NAME, FIELD: VALUE...}" if st.compute_overrides else "a profile name"
        )
        c.err(p, f"compute must be {shape}, got {_describe(v)}")
        return
    problem = _compute_problem(v, overrides)
    if problem:
        refused = re.search(r"override '([^']+)'", problem)
        if refused and refused.group(1) in overrides:  # point at the refused field
            c.err((*p[:-1], refused.group(1)), problem, key=True)
        else:
            c.err(p[:-1] if overrides and "overrides" in problem else p, problem)
    step.kwargs["compute"] = v
    if overrides:
        step.kwargs["compute_overrides"] = overrides


def _check_duplicates(c: _Checker, raw_steps: list[Any]) -> None:
    first: dict[str, int] = {}
    for i, raw in enumerate(raw_steps):
        sid = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(sid, str):
            continue
        if sid in first:
            line = c.src.where(("steps", first[sid], "id"))[0]
            c.err(
                ("steps", i, "id"),
                f"duplicate step id {sid!r} (first used on line {line}); step ids must be unique",
            )
        else:
            first[sid] = i


def _check_graph(c: _Checker, steps: list[tuple[int, StepSpec]], wf: Workflow) -> list[StepSpec]:
    by_id: dict[str, tuple[int, StepSpec]] = {}
    for i, s in steps:
        by_id.setdefault(s.id, (i, s))
    for i, s in steps:
        ups: list[str] = []
        for j, d in enumerate(s.depends_on):
            if d not in by_id:
                c.err(("steps", i, "depends_on", j), f"depends_on names unknown step {d!r}")
            elif d not in ups:
                ups.append(d)
        for value in s.kwargs.values():
            for r in refs.iter_refs(value):
                _check_ref(c, ("steps", i), r, s, by_id, wf)
                if isinstance(r, refs.StepOutput) and r.step in by_id and r.step not in (*ups, s.id):
                    ups.append(r.step)
        s.upstream = ups
        if s.group is not None and s.group not in wf.groups:
            c.err(("steps", i, "group"), f"unknown group {s.group!r}; define it under groups:")
    return _topological(c, [s for _, s in steps], {s.id: i for i, s in steps})


def _ref_mark(c: _Checker, path: Path_, r: refs.StepOutput | refs.ParamRef) -> Path_:
    """The path of the string value under ``path`` that holds reference ``r``."""
    for p in _string_paths(c, path):
        v = _get(c.src.data, p)
        if isinstance(v, str) and any(refs.parse_ref(m.group(1)) == r for m in refs.REF_RE.finditer(v)):
            return p
    return path


def _string_paths(c: _Checker, path: Path_) -> list[Path_]:
    """The marked paths under step ``path`` holding a reference, indexed once per document (so
    marking every reference is linear in the file, not steps x values)."""
    index = c.ref_paths
    if index is None:
        index = {}
        for p in c.src.value_marks:
            if len(p) >= 2 and p[0] == "steps":
                v = _get(c.src.data, p)
                if isinstance(v, str) and "${{" in v:
                    index.setdefault(p[:2], []).append(p)
        c.ref_paths = index
    return [p for p in index.get(path[:2], []) if p[: len(path)] == path]


def _check_ref(
    c: _Checker,
    path: Path_,
    r: refs.StepOutput | refs.ParamRef,
    s: StepSpec,
    by_id: dict[str, tuple[int, StepSpec]],
    wf: Workflow,
) -> None:
    def at() -> Path_:  # found only for an error: the search walks the document's marks
        return _ref_mark(c, path, r)

    if isinstance(r, refs.ParamRef):
        if r.name not in wf.params:
            known = ", ".join(wf.params) or "none"
            c.err(at(), f"reference to unknown parameter {r.name!r}; defined parameters: {known}")
        return
    if r.step == s.id:
        c.err(at(), f"step {s.id!r} refers to its own output {r.name!r}")
    elif r.step not in by_id:
        c.err(at(), f"reference to unknown step {r.step!r}; steps are: {', '.join(by_id)}")
    else:
        target = by_id[r.step][1]
        if r.name != "return_value" and r.name not in target.outputs:
            declared = ", ".join(target.outputs) or "none"
            c.err(
                at(),
                f"step {r.step!r} has no output {r.name!r}; declared outputs: {declared} (and return_value)",
            )


def _get(data: Any, path: Path_) -> Any:
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _topological(c: _Checker, steps: list[StepSpec], index: dict[str, int]) -> list[StepSpec]:
    """Steps ordered upstream first (an iterative depth-first walk: no recursion limit)."""
    by_id = {s.id: s for s in steps}
    order: list[StepSpec] = []
    state: dict[str, int] = {}  # 1 on the current trail, 2 done
    for root in steps:
        if state.get(root.id):
            continue
        trail: list[str] = [root.id]
        stack = [iter(root.upstream)]
        state[root.id] = 1
        while stack:
            u = next(stack[-1], None)
            if u is None:
                stack.pop()
                done = trail.pop()
                state[done] = 2
                order.append(by_id[done])
            elif u not in by_id or state.get(u) == 2:
                continue
            elif state.get(u) == 1:
                cycle = [*trail[trail.index(u) :], u]
                c.err(("steps", index[u], "id"), "dependency cycle: " + " -> ".join(cycle))
            else:
                state[u] = 1
                trail.append(u)
                stack.append(iter(by_id[u].upstream))
    return order


def _read_top(c: _Checker, data: dict[str, Any], wf: Workflow) -> None:
    c.unknown_keys((), data, TOP_FIELDS, "the workflow")
    version = data.get("version")
    if version != FORMAT_VERSION:
        c.err(("version",) if "version" in data else (),
              f"version must be {FORMAT_VERSION} (the workflow format version), got {_describe(version)}")  # fmt: skip
    if not isinstance(wf.id, str) or not DAG_ID_RE.match(wf.id) or not wf.id.strip("."):
        c.err(("id",) if "id" in data else (),
              f"id (the DAG id) must be letters, digits, _ . and -, got {_describe(data.get('id'))}")  # fmt: skip
    if "description" in data and c.typed(("description",), data["description"], "str", "description"):
        wf.description = data["description"]
    sched = data.get("schedule")
    if sched is not None and not (
        isinstance(sched, str)
        and (sched in SCHEDULE_PRESETS or (not sched.startswith("@") and len(sched.split()) in (5, 6)
                                           and _cron_ok(sched)))
    ):  # fmt: skip
        c.err(("schedule",), f"schedule must be null, a cron expression or one of {', '.join(SCHEDULE_PRESETS)}; "
                             f"got {_describe(sched)}")  # fmt: skip
    else:
        wf.schedule = sched
    if "start_date" in data:
        wf.start_date = _date(c, data["start_date"])
    if "catchup" in data and c.typed(("catchup",), data["catchup"], "bool", "catchup"):
        wf.catchup = data["catchup"]
    if "max_active_runs" in data and c.typed(
        ("max_active_runs",), data["max_active_runs"], "int", "max_active_runs"
    ):
        wf.max_active_runs = data["max_active_runs"]
    tags = data.get("tags", [])
    if c.typed(("tags",), tags, "list", "tags"):
        wf.tags = [str(t) for t in tags]


def _cron_ok(expr: str) -> bool:
    """Whether ``expr`` is a cron expression Airflow's timetable accepts (minute 0-59, hour 0-23...)."""
    from croniter import croniter

    return bool(croniter.is_valid(expr))


def _param_bounds(c: _Checker, path: Path_, name: str, spec: dict[str, Any]) -> None:
    """A parameter's default must satisfy its own minimum/maximum/minLength/maxLength/pattern."""
    if "default" not in spec or spec["default"] is None:
        return
    default = spec["default"]
    number = isinstance(default, (int, float)) and not isinstance(default, bool)
    for key, ok in (
        ("minimum", lambda b: not number or default >= b),
        ("maximum", lambda b: not number or default <= b),
        ("minLength", lambda b: not isinstance(default, str) or len(default) >= b),
        ("maxLength", lambda b: not isinstance(default, str) or len(default) <= b),
    ):
        bound = spec.get(key)
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            c.err((*path, key), f"{key} of parameter {name!r} must be a number, got {_describe(bound)}")
        elif not ok(bound):
            c.err(
                (*path, "default"),
                f"default {default!r} of parameter {name!r} violates its own {key} {bound}",
            )
    pattern = spec.get("pattern")
    if isinstance(pattern, str) and isinstance(default, str):
        try:
            matched = re.search(pattern, default) is not None
        except re.error as e:
            c.err((*path, "pattern"), f"pattern of parameter {name!r} is not a regular expression: {e}")
        else:
            if not matched:
                c.err(
                    (*path, "default"),
                    f"default {default!r} of parameter {name!r} does not match its pattern",
                )


def _date(c: _Checker, v: Any) -> datetime.datetime | None:
    if isinstance(v, datetime.datetime):
        return v if v.tzinfo else v.replace(tzinfo=datetime.timezone.utc)
    if isinstance(v, datetime.date):
        return datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.timezone.utc)
    if isinstance(v, str):
        try:
            return _date(c, datetime.datetime.fromisoformat(v))
        except ValueError:
            pass
    c.err(
        ("start_date",),
        f"start_date must be a date like 2026-01-01 (UTC unless an offset is given), got {_describe(v)}",
    )
    return None


def check_source(src: Source, *, base_dir: str | Path | None = None) -> Workflow:
    """Validate a parsed workflow document and return the model; raise with every error found.

    :param src: the document as read by :func:`~.source.read_source`.
    :param base_dir: folder that relative file paths start from (default: the file's folder).
    """
    base = Path(base_dir) if base_dir is not None else Path(src.file).resolve().parent
    c = _Checker(src, base)
    data = src.data
    if not isinstance(data, dict):
        raise WorkflowValidationError(
            [src.error((), "a workflow must be a mapping with version, id and steps")]
        )
    wf = Workflow(id=data.get("id", ""), file=src.file, text=src.text)
    _read_top(c, data, wf)
    wf.default_args = _read_default_args(c, data.get("default_args"))
    wf.params = _read_params(c, data.get("params"))
    wf.groups = _read_groups(c, data.get("groups"))
    wf.layout = _read_layout(c, data.get("layout"))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        c.err(("steps",) if "steps" in data else (), "steps must be a non-empty list of steps")
        raw_steps = []
    if len(raw_steps) > MAX_STEPS:
        raise WorkflowValidationError(
            [
                src.error(
                    ("steps",), f"{len(raw_steps)} steps; a workflow holds at most {MAX_STEPS} (split it)"
                )
            ]
        )
    steps = [(i, s) for i, raw in enumerate(raw_steps) if (s := _read_step(c, i, raw, wf.params)) is not None]
    _check_duplicates(c, raw_steps)
    wf.steps = _check_graph(c, steps, wf)
    if c.errors:
        c.errors.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise WorkflowValidationError(c.errors)
    return wf
