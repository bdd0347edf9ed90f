"""Workflow files as the designer reads and writes them.

Reading gives the document as JSON values plus the file's text and ETag (the sha256 of its
bytes). Writing merges the new document into the file's round-trip tree (ruamel.yaml), so
comments, key order, quoting and layout of everything that did not change stay as written;
steps are matched by id, so moving or editing one step does not disturb the others. Writes
are atomic (a temporary file in the same folder, then rename) and refuse to overwrite a file
that changed since the version the caller opened (``If-Match``).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import DesignerConflictError, DesignerNotFoundError, DesignerReadOnlyError


def etag_of(data: bytes) -> str:
    """The ETag of a file's content.

    :param data: the file's bytes.
    """
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(
        type(None), lambda r, _d: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def _detect_indent(text: str, y: Any) -> None:
    """Keep the file's own sequence style (``- item`` flush with the key, or indented)."""
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if stripped.startswith("- "):
            lead = len(line) - len(stripped)
            if lead == 0:
                y.indent(mapping=2, sequence=2, offset=0)
            return


def to_json(value: Any) -> Any:
    """A ruamel (or PyYAML) value as plain JSON values (dates as ISO text).

    :param value: a loaded YAML value.
    """
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return str(value)


def load_text(text: str) -> Any:
    """The round-trip tree of workflow text.

    :param text: YAML or JSON text.
    """
    return _yaml().load(text)


def read(path: Path) -> dict[str, Any]:
    """A workflow file: ``{"document", "yaml", "etag"}``.

    :param path: the file.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DesignerNotFoundError(f"no workflow file {path.name!r}") from e
    text = raw.decode("utf-8")
    try:
        document = to_json(load_text(text))
    except Exception:  # a file that does not parse: the editor shows the text and the error
        document = None
    return {"document": document, "yaml": text, "etag": etag_of(raw)}


def _same(old: Any, new: Any) -> bool:
    old_json = to_json(old)
    # 1 == 1.0 in Python: an int edited to a float of the same value (a typed param) is a change
    return old_json == new and _number_kinds(old_json) == _number_kinds(new)


def _number_kinds(value: Any) -> Any:
    """The value's shape with every number replaced by its kind (int or float), for :func:`_same`."""
    if isinstance(value, dict):
        return {k: _number_kinds(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number_kinds(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(value)
    return None


def merge(old: Any, new: Any) -> Any:
    """``new`` (JSON values) written into the round-trip value ``old``, keeping what did not change.

    :param old: the value from the file (CommentedMap, CommentedSeq or scalar).
    :param new: the document's value.
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if _same(old, new):
        return old
    if isinstance(old, CommentedMap) and isinstance(new, dict):
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            if key in old:
                merged = merge(old[key], value)
                if merged is not old[key]:
                    old[key] = merged
            else:
                old[key] = fresh(value)
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list):
        if all(isinstance(v, dict) and isinstance(v.get("id"), str) for v in new) and all(
            isinstance(v, CommentedMap) and isinstance(v.get("id"), str) for v in old
        ):
            return _merge_by_id(old, new)
        for i, value in enumerate(new):
            if i < len(old):
                merged = merge(old[i], value)
                if merged is not old[i]:
                    old[i] = merged
            else:
                old.append(fresh(value))
        del old[len(new) :]
        return old
    if isinstance(old, float) and type(new) is int and old == new:
        return old  # the browser's 1 for the file's 1.0 (or 1.00): unchanged, as written
    return fresh(value=new, like=old)


def _merge_by_id(old: Any, new: list[dict[str, Any]]) -> Any:
    """Steps: matched by id, so a step keeps its comments wherever it moves."""
    by_id = {item["id"]: item for item in old}
    items = [merge(by_id[v["id"]], v) if v["id"] in by_id else fresh(v) for v in new]
    if [id(x) for x in items] == [id(x) for x in old]:
        return old
    # comments after an item belong to the item before the next; keep the list's own
    kept = {i: old.ca.items.get(i) for i in range(len(old))}
    for i in range(len(old) - 1, -1, -1):
        old.pop(i)
    old.extend(items)
    old.ca.items.clear()
    for i, item in enumerate(items):
        j = next((k for k, o in enumerate(by_id.values()) if o is item), None)
        if j is not None and kept.get(j):
            old.ca.items[i] = kept[j]
    return old


def fresh(value: Any, like: Any = None) -> Any:
    """A new round-trip value for ``value`` (flow style for short lists of scalars, like the
    quickstart's ``outputs: [a, b]``).

    :param value: JSON values.
    :param like: the value it replaces (its quoting style is kept for strings).
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    if isinstance(value, dict):
        m = CommentedMap()
        for k, v in value.items():
            m[k] = fresh(v)
        if value and len(value) <= 3 and all(isinstance(v, (int, float)) for v in value.values()):
            m.fa.set_flow_style()  # layout positions: {x: 10, y: 20}
        return m
    if isinstance(value, list):
        s = CommentedSeq(fresh(v) for v in value)
        if value and all(not isinstance(v, (dict, list)) for v in value) and len(str(value)) < 60:
            s.fa.set_flow_style()
        return s
    if isinstance(value, str) and isinstance(like, (DoubleQuotedScalarString, SingleQuotedScalarString)):
        return type(like)(value)
    if type(value) is int and isinstance(like, float):
        return float(value)  # JSON from a browser has no 1.0: a float edited to a whole number stays a float
    return value


def typed_numbers(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the defaults of ``type: number`` params as floats.

    A browser's JSON has one number type: ``1.0`` arrives as ``1``, which YAML then reads as an
    integer (and a notebook gets ``1`` instead of ``1.0``). A param declared ``number`` keeps its
    default a float (lists of them too).

    :param document: the workflow document (JSON values).
    """
    params = document.get("params")
    if not isinstance(params, dict):
        return document

    def as_float(value: Any) -> Any:
        if type(value) is int:
            return float(value)
        if isinstance(value, list):
            return [as_float(v) for v in value]
        return value

    typed = {
        name: {**spec, "default": as_float(spec["default"])}
        if isinstance(spec, dict) and spec.get("type") == "number" and "default" in spec
        else spec
        for name, spec in params.items()
    }
    return {**document, "params": typed}


def typed_step_numbers(document: dict[str, Any], *, base: Path, roots: list[Path]) -> dict[str, Any]:
    """``document`` with the whole-number parameters of notebook and R steps as floats where the
    step's file declares that parameter a float (``lr = 1.0`` in its parameters cell: the catalog
    pre-fills it, and the browser's JSON sends it as ``1``).

    Only files under ``roots`` (or the workflow's own folder) are read.

    :param document: the workflow document (JSON values).
    :param base: the workflow file's folder (relative step paths start there).
    :param roots: the designer's roots.
    """
    from airflow_mlplatform.plugin.catalog import KINDS, inspect_file
    from airflow_mlplatform.plugin.paths import inside

    steps = document.get("steps")
    if not isinstance(steps, list):
        return document
    allowed = [*roots, base]
    typed_steps = []
    for step in steps:
        params = step.get("parameters") if isinstance(step, dict) else None
        whole = [k for k, v in (params or {}).items() if type(v) is int] if isinstance(params, dict) else []
        files = [
            v
            for v in (step.values() if whole else ())
            if isinstance(v, str) and Path(v).suffix.lower() in KINDS
        ]
        declared: dict[str, Any] = {}
        for rel in files[:1]:
            path = Path(rel) if Path(rel).is_absolute() else base / rel
            if path.is_file() and any(inside(r, path) for r in allowed):
                declared = {p["name"]: p.get("type") for p in inspect_file(path)}
        floats = {k for k in whole if declared.get(k) == "number"}
        if floats:
            step = {**step, "parameters": {k: float(v) if k in floats else v for k, v in params.items()}}  # type: ignore[union-attr]
        typed_steps.append(step)
    return {**document, "steps": typed_steps}


def dump(tree: Any, *, like_text: str = "") -> str:
    """The round-trip tree as YAML text.

    :param tree: a CommentedMap.
    :param like_text: the original text (its sequence indentation style is kept).
    """
    y = _yaml()
    if like_text:
        _detect_indent(like_text, y)
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def render(
    document: dict[str, Any],
    *,
    original: str | None,
    base: Path | None = None,
    roots: list[Path] | None = None,
) -> str:
    """The text to save: ``document`` merged into ``original`` (or written fresh); floats the
    browser sent as whole numbers are floats again (:func:`typed_numbers`, and with ``base``
    :func:`typed_step_numbers`).

    :param document: the workflow document.
    :param original: the file's current text, if it exists.
    :param base: the workflow file's folder (to read its steps' files' parameter types).
    :param roots: the designer's roots (the files that may be read).
    """
    document = typed_numbers(document)
    if base is not None:
        document = typed_step_numbers(document, base=base, roots=list(roots or []))
    if original is not None:
        tree = load_text(original)
        from ruamel.yaml.comments import CommentedMap

        if isinstance(tree, CommentedMap):
            return dump(merge(tree, document), like_text=original)
    return dump(fresh(document), like_text="")


def folder_writable(folder: Path) -> bool:
    """Whether the designer may create files in ``folder`` (or, if it does not exist yet, make it).

    False when ``[mlplatform] designer_read_only`` is set (e.g. a git-synced DAG bundle, where
    a save would be overwritten by the next sync), or when a probe file cannot be created (a
    read-only mount, an immutable folder, missing permissions; ``os.access`` says yes to root).

    :param folder: the workflows folder.
    """
    from airflow_mlplatform.plugin import settings

    if settings.designer_read_only():
        return False
    p = folder
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    if not p.is_dir():
        return False
    try:
        fd, probe = tempfile.mkstemp(prefix=".mlplatform-probe-", dir=p)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def write(path: Path, text: str, *, if_match: str | None) -> str:
    """Write ``text`` to ``path`` atomically if it still is the version ``if_match``; the new ETag.

    :param path: the file.
    :param text: the new content.
    :param if_match: the ETag the caller opened; None to create a new file (409 if it exists).
    """
    folder = path.parent
    if not folder_writable(folder):
        raise DesignerReadOnlyError(
            f"the workflows folder {folder} is read-only (e.g. a git DAG bundle): "
            "download the workflow and commit it instead"
        )
    folder.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        _check_version(path, if_match)
        if if_match is None:
            try:  # create: link fails if someone created the file meanwhile
                os.link(tmp, path)
            except FileExistsError as e:
                raise DesignerConflictError(
                    f"{path.name!r} already exists; open it, or save under another name"
                ) from e
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return etag_of(data)


def _check_version(path: Path, if_match: str | None) -> None:
    if if_match is None:
        if path.exists():
            raise DesignerConflictError(f"{path.name!r} already exists; open it, or save under another name")
        return
    try:
        current = etag_of(path.read_bytes())
    except FileNotFoundError as e:
        raise DesignerConflictError(
            f"{path.name!r} was deleted since you opened it; save it as a new file"
        ) from e
    if if_match.strip() not in (current, "*"):
        raise DesignerConflictError(
            f"{path.name!r} changed since you opened it (someone else saved it): reload it and apply your "
            "change again"
        )
