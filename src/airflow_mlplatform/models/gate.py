"""Promotion gates: a small, safe expression language over two versions' metrics.

    accuracy >= champion.accuracy
    f1 > champion.f1 + 0.01 and loss <= champion.loss
    not (candidate.auc < 0.7)

- a bare name (``accuracy``) or ``candidate.NAME`` is the candidate version's metric;
  ``ALIAS.NAME`` (the alias being promoted to, e.g. ``champion``) or ``current.NAME`` is the
  metric of the version that holds the alias now;
- numbers, ``+ - * /``, unary ``-``, comparisons ``< <= > >= == !=`` (chained too),
  ``and``, ``or``, ``not`` and parentheses; nothing else (no calls, no attributes beyond one
  dot, no strings): the text is parsed into a syntax tree and only these nodes are walked.
  Nothing is ever passed to ``eval``.

With no holder yet, the gate is not evaluated: the first version is promoted.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlplatform.exceptions import ModelGateError

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_MAX_CHARS = 500


@dataclass(frozen=True)
class Gate:
    """A parsed gate.

    :param text: the expression as written.
    :param holder_prefixes: the names meaning "the current holder" (the alias, ``current``).
    :param tree: the checked syntax tree.
    """

    text: str
    holder_prefixes: tuple[str, ...]
    tree: ast.expr

    def names(self) -> tuple[set[str], set[str]]:
        """The candidate's and the holder's metric names the gate reads."""
        candidate: set[str] = set()
        holder: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                (holder if node.value.id in self.holder_prefixes else candidate).add(node.attr)
            elif isinstance(node, ast.Name) and not _is_prefix(node, self.tree):
                candidate.add(node.id)
        return candidate, holder

    def evaluate(self, candidate: Mapping[str, float], holder: Mapping[str, float]) -> bool:
        """Whether the candidate passes against the holder.

        :param candidate: the candidate version's metrics.
        :param holder: the current alias holder's metrics.
        """
        return bool(_eval(self.tree, self, candidate, holder))


def _is_prefix(name: ast.Name, tree: ast.expr) -> bool:
    return any(isinstance(n, ast.Attribute) and n.value is name for n in ast.walk(tree))


def parse_gate(text: str, *, alias: str) -> Gate:
    """Parse and check a gate expression (a ModelGateError says what is wrong and where).

    :param text: the expression, e.g. ``accuracy >= champion.accuracy``.
    :param alias: the alias being promoted to (its name refers to the holder's metrics).
    """
    if not isinstance(text, str) or not text.strip():
        raise ModelGateError("the gate is empty: write e.g. 'accuracy >= champion.accuracy'")
    if len(text) > _MAX_CHARS:
        raise ModelGateError(f"the gate is longer than {_MAX_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ModelGateError(f"gate {text!r} is not a valid expression: {e.msg} (column {e.offset})") from e
    prefixes = (alias, "current")
    for node in ast.walk(tree):
        _check_node(node, text, prefixes)
    return Gate(text=text.strip(), holder_prefixes=prefixes, tree=tree)


_ALLOWED = (
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.BinOp,
    ast.Name,
    ast.Attribute,
    ast.Constant,
    ast.Load,
    *_COMPARE,
    *_ARITH,
)


def _check_node(node: ast.AST, text: str, prefixes: tuple[str, ...]) -> None:
    if not isinstance(node, _ALLOWED):
        raise ModelGateError(
            f"gate {text!r} uses {type(node).__name__}, which gates do not allow: use metric names, "
            "numbers, + - * /, comparisons, and/or/not and parentheses"
        )
    if isinstance(node, ast.Constant) and (
        isinstance(node.value, bool) or not isinstance(node.value, (int, float))
    ):
        raise ModelGateError(f"gate {text!r} holds {node.value!r}: only numbers are allowed as constants")
    if isinstance(node, ast.Attribute) and (
        not isinstance(node.value, ast.Name) or node.value.id not in (*prefixes, "candidate")
    ):
        raise ModelGateError(
            f"gate {text!r}: in {ast.unparse(node)!r} the part before the dot must be "
            f"'candidate', {prefixes[0]!r} or 'current'"
        )


def _metric(values: Mapping[str, float], name: str, whose: str) -> float:
    if name not in values or values[name] is None:
        known = ", ".join(sorted(values)) or "none"
        raise ModelGateError(
            f"the gate reads metric {name!r} of the {whose}, which has none (its metrics: {known})"
        )
    value = values[name]
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise ModelGateError(f"metric {name!r} of the {whose} is {value!r}, not a number") from e


def _eval(node: ast.AST, gate: Gate, candidate: Mapping[str, float], holder: Mapping[str, float]) -> Any:
    if isinstance(node, ast.BoolOp):
        results = (_eval(v, gate, candidate, holder) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, gate, candidate, holder)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, gate, candidate, holder)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, gate, candidate, holder)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp):
        left = _eval(node.left, gate, candidate, holder)
        right = _eval(node.right, gate, candidate, holder)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ModelGateError(f"gate {gate.text!r} divides by zero")
        return _ARITH[type(node.op)](left, right)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute):
        assert isinstance(node.value, ast.Name)
        if node.value.id in gate.holder_prefixes:
            return _metric(holder, node.attr, "current alias holder")
        return _metric(candidate, node.attr, "candidate")
    if isinstance(node, ast.Name):
        return _metric(candidate, node.id, "candidate")
    raise ModelGateError(f"gate {gate.text!r}: cannot evaluate {type(node).__name__}")  # checked at parse
