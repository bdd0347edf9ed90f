"""Read a workflow file (YAML or JSON) into plain Python values plus where each value is.

PyYAML's composer keeps a mark (line, column) on every node; this module walks the node tree
itself so it can remember, for each path (``("steps", 2, "parameters", "C")``), where the
key and the value were written, and report duplicate keys (which PyYAML would silently
overwrite). JSON is read by the same code: YAML is a superset of JSON's syntax.
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


def _convert(
    node: yaml.Node,
    path: Path_,
    src: Source,
    errors: list[WorkflowError],
    constructor: yaml.constructor.SafeConstructor,
) -> Any:
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
            key = _convert(key_node, (*path, "<key>"), src, errors, constructor)
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
            out[key] = _convert(value_node, (*path, key), src, errors, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), src, errors, constructor) for i, item in enumerate(node.value)]
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
    try:
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
        src.data = _convert(node, (), src, errors, yaml.constructor.SafeConstructor())
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
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise WorkflowError(f"cannot read workflow file: {e.strerror or e}", file=str(p)) from e
    return read_source(text, file=str(p))
