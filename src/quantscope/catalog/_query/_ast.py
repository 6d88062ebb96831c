"""The syntax tree of a query, and its canonical text (``to_text``).

Nodes are frozen dataclasses; the ``pos`` fields (0-based offset in the query text) are kept out
of equality, so a tree printed with :func:`to_text` and parsed again compares equal.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeAlias

__all__ = [
    "KEYWORDS",
    "And",
    "Compare",
    "Exists",
    "Field",
    "In",
    "Like",
    "Node",
    "Not",
    "Or",
    "Value",
    "to_text",
]

Value: TypeAlias = str | int | float | bool | date | datetime | None

KEYWORDS = frozenset({"and", "or", "not", "in", "like", "exists", "true", "false", "null"})
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Field:
    """A field name: dotted ``path`` segments and an optional ``[qualifier]`` (channel name or
    index) as in ``qc.focus_plls[DAPI]``."""

    path: tuple[str, ...]
    qualifier: str | int | None = None
    pos: int = dataclasses.field(default=0, compare=False)

    @property
    def name(self) -> str:
        """The dotted name without the qualifier."""
        return ".".join(self.path)

    def __str__(self) -> str:
        return _field_text(self)


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # one of COMPARISONS
    value: Value
    value_pos: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Value, ...]
    negated: bool = False
    value_pos: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True)
class Like:
    field: Field
    pattern: str
    negated: bool = False
    value_pos: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True)
class Exists:
    field: Field


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node: TypeAlias = Compare | In | Like | Exists | Not | And | Or


# ------------------------------------------------------------------------------ canonical text
def _segment_text(seg: str) -> str:
    if _BARE.match(seg) and seg.lower() not in KEYWORDS:
        return seg
    return f"`{seg}`"


def _field_text(f: Field) -> str:
    s = ".".join(_segment_text(p) for p in f.path)
    if f.qualifier is None:
        return s
    if isinstance(f.qualifier, int):
        return f"{s}[{f.qualifier}]"
    return f"{s}[{_string_text(f.qualifier)}]"


def _string_text(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value_text(v: Value) -> str:
    """A literal as query text (strings quoted and escaped, dates in ISO 8601)."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return _string_text(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return repr(v)


def to_text(node: Node) -> str:
    """The canonical query text of a tree: ``parse(to_text(t)) == t``."""

    def inner(n: Node) -> str:
        return f"({to_text(n)})" if isinstance(n, And | Or) else to_text(n)

    if isinstance(node, Compare):
        return f"{node.field} {node.op} {value_text(node.value)}"
    if isinstance(node, In):
        op = "not in" if node.negated else "in"
        return f"{node.field} {op} ({', '.join(value_text(v) for v in node.values)})"
    if isinstance(node, Like):
        op = "not like" if node.negated else "like"
        return f"{node.field} {op} {_string_text(node.pattern)}"
    if isinstance(node, Exists):
        return f"exists {node.field}"
    if isinstance(node, Not):
        return f"not {inner(node.item)}"
    if isinstance(node, And):
        return " and ".join(inner(n) for n in node.items)
    return " or ".join(inner(n) for n in node.items)
