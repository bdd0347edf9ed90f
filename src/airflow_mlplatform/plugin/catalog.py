"""The designer's catalog: the notebooks, R scripts and R Markdown documents under the
configured roots, each with the parameters it declares.

- notebooks: the cell tagged ``parameters``, read by papermill's own translators (the same
  inspection as ``papermill --help-notebook``: names, annotated types, defaults, ``#`` help);
  types papermill leaves open are inferred from the default's literal; R notebooks, which
  papermill cannot inspect, get their ``name <- value`` lines read.
- ``.Rmd``: the ``params:`` of the YAML header (``name: value`` or ``name: {value: ...}``),
  exactly those the R job passes to the document (runners/r_job.py).
- ``.R`` scripts: the names they use as ``params$name`` / ``params[["name"]]`` (the R runtime
  gives scripts their parameters as the list ``params``).

Each file's entry is cached by (mtime, size), so listing a folder of 1000 notebooks again
only stats the files.
"""

from __future__ import annotations

import ast
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

KINDS = {".ipynb": ("notebook", "notebook"), ".r": ("r", "r"), ".rmd": ("rmd", "r")}
SKIP_DIRS = {"__pycache__", "node_modules", ".ipynb_checkpoints", ".git"}
_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
          tuple: "array", dict: "object", type(None): "null"}  # fmt: skip
_PY_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean", "list": "array",
             "dict": "object", "None": None}  # fmt: skip
_R_ASSIGN = re.compile(r"^\s*([A-Za-z.][\w.]*)\s*(?:<-|=)\s*(.+?)\s*(?:#\s*(.*))?$")
_R_USE = re.compile(r"""params\s*(?:\$\s*([A-Za-z.][\w.]*)|\[\[\s*["']([^"']+)["']\s*\]\])""")

_RECORDS = re.compile(r"""\b(?:record|glue)\(\s*(?:name\s*=\s*)?["']([A-Za-z_][A-Za-z0-9_]*)["']""")

_cache: dict[str, tuple[int, int, dict[str, Any]]] = {}
_lock = threading.Lock()


def _literal(text: str) -> tuple[Any, str | None]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text, None
    return value, _TYPES.get(type(value))


def _r_literal(text: str) -> tuple[Any, str | None]:
    t = text.strip().rstrip(";")
    if t in ("TRUE", "FALSE", "T", "F"):
        return t.startswith("T"), "boolean"
    if t in ("NULL", "NA"):
        return None, "null"
    if re.fullmatch(r"-?\d+L", t):
        return int(t[:-1]), "integer"
    if re.fullmatch(r"""(["']).*\1""", t):
        return t[1:-1], "string"
    try:
        num = float(t)
    except ValueError:
        return t, None
    return (int(num) if num.is_integer() and "." not in t and "e" not in t.lower() else num), (
        "integer" if num.is_integer() and "." not in t and "e" not in t.lower() else "number"
    )


def _param(name: str, value: Any, type_: str | None, help_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "default": value, "help": help_ or ""}


def notebook_parameters(path: Path) -> list[dict[str, Any]]:
    """The parameters a notebook's ``parameters`` cell declares (papermill's inspection).

    :param path: an ``.ipynb`` file.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(
        (c for c in nb.get("cells", []) if "parameters" in (c.get("metadata", {}).get("tags") or [])), None
    )
    if cell is None:
        return []
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    meta = nb.get("metadata", {})
    kernel = (meta.get("kernelspec") or {}).get("name") or ""
    language = (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name")
    language = language or "python"
    import nbformat
    from papermill.translators import papermill_translators

    try:
        translator = papermill_translators.find_translator(kernel, language)
        found = translator.inspect(
            nbformat.from_dict({"cell_type": "code", "source": source, "metadata": {}})
        )
    except Exception:  # NotImplementedError (no inspection for the language) or a cell that does not parse
        found = None
    if found is None:
        return _r_assignments(source) if language.lower() == "r" else []
    out = []
    for p in found:
        value, inferred = _literal(p.default) if language.lower() == "python" else (p.default, None)
        type_ = _PY_TYPES.get(p.inferred_type_name) if p.inferred_type_name != "None" else None
        out.append(_param(p.name, value, type_ or inferred, p.help))
    return out


def _r_assignments(source: str) -> list[dict[str, Any]]:
    out = []
    for line in source.splitlines():
        m = _R_ASSIGN.match(line)
        if m:
            value, type_ = _r_literal(m.group(2))
            out.append(_param(m.group(1), value, type_, m.group(3) or ""))
    return out


def rmd_parameters(path: Path) -> list[dict[str, Any]]:
    """The ``params:`` of an R Markdown document's YAML header (values, or ``{value: ...}``).

    :param path: an ``.Rmd`` file.
    """
    import yaml

    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return []
    end = text.find("\n---", 3)
    if end < 0:
        return []

    class _Loader(yaml.SafeLoader):
        pass

    # `!r expr` / `!expr`: R code, shown as its text
    _Loader.add_multi_constructor("!", lambda _l, tag, node: f"{tag} {node.value}")
    try:
        header = yaml.load(text[3:end], Loader=_Loader) or {}  # a SafeLoader subclass
    except yaml.YAMLError:
        return []
    params = header.get("params") if isinstance(header, dict) else None
    if not isinstance(params, dict):
        return []
    out = []
    for name, spec in params.items():
        help_ = ""
        if isinstance(spec, dict) and "value" in spec:
            help_ = str(spec.get("label") or "")
            spec = spec["value"]
        out.append(_param(str(name), spec, _TYPES.get(type(spec)), help_))
    return out


def r_parameters(path: Path) -> list[dict[str, Any]]:
    """The parameters an R script uses (``params$name``, ``params[["name"]]``), in order.

    :param path: an ``.R`` file.
    """
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        code = line.split("#", 1)[0]
        for m in _R_USE.finditer(code):
            name = m.group(1) or m.group(2)
            if name not in names:
                names.append(name)
    return [_param(n, None, None) for n in names]


def inspect_file(path: Path) -> list[dict[str, Any]]:
    """The parameters of one catalog file (by its kind).

    :param path: an ``.ipynb``, ``.R`` or ``.Rmd`` file.
    """
    kind = KINDS[path.suffix.lower()][0]
    try:
        if kind == "notebook":
            return notebook_parameters(path)
        if kind == "rmd":
            return rmd_parameters(path)
        return r_parameters(path)
    except (OSError, UnicodeDecodeError, ValueError):
        return []


def recorded_outputs(path: Path) -> list[str]:
    """Names the file records as outputs (``record("name", ...)``, scrapbook ``glue("name", ...)``).

    :param path: a notebook or R file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if path.suffix.lower() == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return []
        text = "\n".join(
            "".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
            for c in cells
            if c.get("cell_type") == "code"
        )
    names: list[str] = []
    for m in _RECORDS.finditer(text):
        if m.group(1) not in names:
            names.append(m.group(1))
    return names


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    stack = [root]
    base = root.resolve()
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                if e.name in SKIP_DIRS:
                    continue
                if e.is_symlink():
                    real = Path(e.path).resolve()
                    if real != base and base not in real.parents:
                        continue  # a symlink out of the root
                stack.append(Path(e.path))
            elif os.path.splitext(e.name)[1].lower() in KINDS and e.is_file():
                if e.is_symlink():
                    real = Path(e.path).resolve()
                    if base not in real.parents:
                        continue
                found.append(Path(e.path))
    return found


def _entry(path: Path, root: Path, workflows: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    key = str(path)
    hit = _cache.get(key)
    if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
        return hit[2]
    kind, step_type = KINDS[path.suffix.lower()]
    entry = {
        "path": path.relative_to(root).as_posix(),
        "root": root.as_posix(),
        "kind": kind,
        "step_type": step_type,
        "parameters": inspect_file(path),
        "outputs": recorded_outputs(path),
        "mtime": st.st_mtime,
        # the path as a workflow saved in the workflows folder writes it
        "ref": Path(os.path.relpath(path, workflows)).as_posix(),
    }
    with _lock:
        _cache[key] = (st.st_mtime_ns, st.st_size, entry)
    return entry


def list_catalog(roots: list[Path], *, workflows: Path) -> dict[str, Any]:
    """``{"roots", "files"}``: every catalog file under ``roots``, sorted by root and path.

    :param roots: the configured designer roots.
    :param workflows: the workflows folder (each entry's ``ref`` is relative to it).
    """
    files: list[dict[str, Any]] = []
    seen: set[str] = set()
    roots = [r.resolve() for r in roots]
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(_walk(root)):
            if str(path) in seen:
                continue
            seen.add(str(path))
            entry = _entry(path, root, workflows)
            if entry is not None:
                files.append(entry)
    return {"roots": [r.as_posix() for r in roots], "files": files}
