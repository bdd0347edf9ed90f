"""Read a workflow file (YAML or JSON) into plain Python values plus where each value is.

PyYAML's composer keeps a mark (line, column) on every node; this module walks the node tree
itself so it can remember, for each path (``("steps", 2, "parameters", "C")``), where the
key and the value were written, and report duplicate keys (which PyYAML would silently
overwrite). JSON is read by the same code: YAML is a superset of JSON's syntax.

Workflow files may come from anyone who can write to the DAG folder, so reading one is bounded
(:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_NODES`, aliases expanded at most
:data:`MAX_ALIAS_RATIO` times the document's own size, as Kubernetes' YAML library does since
CVE-2019-11253): a file over a limit is a clear :class:`WorkflowError`, never an exhausted or
crashed process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_mlplatform.exceptions import WorkflowError

Path_ = tuple[str | int, ...]

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: faster, the same marks
_BOOL = "tag:yaml.org,2002:bool"
#: Largest workflow file read (bytes).
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64
#: Most values (nodes, aliases expanded) in one document.
MAX_NODES = 1_000_000
#: Aliases may expand the document to at most this many times its own nodes (plus a small allowance).
MAX_ALIAS_RATIO = 10
_ALIAS_ALLOWANCE = 10_000


class _Loader(_BASE):
    """Safe loader whose booleans are YAML 1.2's (true/false only), as editors and JSON Schema see
    them: ``on``, ``yes``, ``no`` and ``off`` stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@dataclass
class Source:
    """A workflow file's text, its values and the place of each value.

    :param file: the file name used in error messages.
    :param text: the text as read.
    :param data: the document as plain dicts, lists and scalars.
    :param value_marks: path -> (line, column) of the value, both 1-based.
    :param key_marks: path -> (line, column) of the mapping key that leads to the value.
    """

    file: str
    text: str
    data: Any = None
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of ``path`` (its key when ``key``), else of its nearest parent.

        :param path: path of keys and indexes from the document root.
        :param key: point at the key rather than at the value.
        """
        marks = self.key_marks if key else self.value_marks
        p = tuple(path)
        while p:
            if p in marks:
                return marks[p]
            if key and p in self.value_marks:
                return self.value_marks[p]
            p = p[:-1]
        return self.value_marks.get((), (None, None))

    def error(self, path: Path_, message: str, *, key: bool = False) -> WorkflowError:
        """A WorkflowError pointing at ``path``.

        :param path: where the problem is.
        :param message: what is wrong and what was expected.
        :param key: point at the key rather than at the value.
        """
        line, column = self.where(path, key=key)
        return WorkflowError(message, file=self.file, line=line, column=column)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Budget:
    """Counts the values built, so aliases cannot expand a small file into a huge document."""

    def __init__(self, src: Source, nodes: int) -> None:
        self.src = src
        self.nodes = nodes
        self.limit = min(MAX_NODES, nodes * MAX_ALIAS_RATIO + _ALIAS_ALLOWANCE)
        self.left = self.limit

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            line, col = _mark(node)
            raise WorkflowError(
                f"YAML aliases (*name) expand this document of {self.nodes} values to more than "
                f"{self.limit}: refused (an alias bomb), as Kubernetes does since CVE-2019-11253; "
                "write the values out or use fewer aliases",
                file=self.src.file,
                line=line,
                column=col,
            )


def _precheck(text: str, file: str) -> int:
    """Walk the parser's events (no composing): refuse deep nesting before libyaml's recursive
    composer sees it; return the number of nodes (aliases counted once)."""
    depth = nodes = 0
    loader = _Loader(text)
    try:
        while (event := loader.get_event()) is not None:
            kind = type(event).__name__
            if kind in ("MappingStartEvent", "SequenceStartEvent"):
                depth += 1
                nodes += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise WorkflowError(
                        f"nesting deeper than {MAX_DEPTH} levels of mappings/lists; a workflow needs a few",
                        file=file,
                        line=mark.line + 1,
                        column=mark.column + 1,
                    )
            elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                depth -= 1
            elif kind in ("ScalarEvent", "AliasEvent"):
                nodes += 1
            if nodes > MAX_NODES:
                raise WorkflowError(f"more than {MAX_NODES} values in one document", file=file)
    finally:
        loader.dispose()
    return nodes


def _convert(
    node: yaml.Node,
    path: Path_,
    src: Source,
    errors: list[WorkflowError],
    constructor: yaml.constructor.SafeConstructor,
    budget: _Budget,
) -> Any:
    budget.spend(node)
    src.value_marks[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                line, col = _mark(key_node)
                errors.append(
                    WorkflowError(
                        "YAML merge keys (<<) are not supported in workflow files; write the keys out",
                        file=src.file,
                        line=line,
                        column=col,
                    )
                )
                continue
            key = _convert(key_node, (*path, "<key>"), src, errors, constructor, budget)
            src.value_marks.pop((*path, "<key>"), None)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                line, col = _mark(key_node)
                errors.append(
                    WorkflowError("mapping keys must be strings", file=src.file, line=line, column=col)
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                line, col = _mark(key_node)
                first = src.key_marks.get((*path, key), (None, None))
                errors.append(
                    WorkflowError(
                        f"duplicate key {key!r} (first written on line {first[0]}); each key may appear once",
                        file=src.file,
                        line=line,
                        column=col,
                    )
                )
                continue
            src.key_marks[(*path, key)] = _mark(key_node)
            out[key] = _convert(value_node, (*path, key), src, errors, constructor, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, i), src, errors, constructor, budget) for i, item in enumerate(node.value)
        ]
    return constructor.construct_object(node, deep=True)


def read_source(text: str, *, file: str = "<string>") -> Source:
    """Parse workflow text (YAML or JSON) into a :class:`Source`.

    Raises :class:`~airflow_mlplatform.exceptions.WorkflowError` with the line and column of
    a syntax error, and a validation error listing every duplicate key.

    :param text: the file's text.
    :param file: the name used in error messages.
    """
    from airflow_mlplatform.exceptions import WorkflowValidationError

    src = Source(file=file, text=text)
    if len(text) > MAX_FILE_BYTES:
        raise WorkflowError(
            f"the workflow is {len(text)} characters long; at most {MAX_FILE_BYTES} are read (split it, "
            "or pass large data as files the steps read)",
            file=file,
        )
    try:
        nodes = _precheck(text, file)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise WorkflowError(f"not valid YAML/JSON: {problem}", file=file, line=line, column=col) from e
    except yaml.YAMLError as e:
        raise WorkflowError(f"not valid YAML/JSON: {e}", file=file) from e
    if node is None:
        src.data = None
        return src
    errors: list[WorkflowError] = []
    try:
        # a constructor per document: it remembers every node it built
        src.data = _convert(node, (), src, errors, yaml.constructor.SafeConstructor(), _Budget(src, nodes))
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise WorkflowError(f"cannot read value: {e.problem}", file=file, line=line, column=col) from e
    if errors:
        raise WorkflowValidationError(errors)
    return src


def read_file(path: str | Path) -> Source:
    """Read and parse a workflow file.

    :param path: a ``.yaml``, ``.yml`` or ``.json`` file.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WorkflowError(
                f"the workflow file is {size} bytes; at most {MAX_FILE_BYTES} are read (split it, or pass "
                "large data as files the steps read)",
                file=str(p),
            )
        raw = p.read_bytes()
    except OSError as e:
        raise WorkflowError(f"cannot read workflow file: {e.strerror or e}", file=str(p)) from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise WorkflowError(
            f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save the file as UTF-8",
            file=str(p),
            line=line,
            column=column,
        ) from e
    return read_source(text, file=str(p))
