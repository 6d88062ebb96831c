"""Parse query text into a tree (:mod:`._ast`) with lark (LALR(1)).

Errors are :class:`~quantscope.errors.InvalidInput` whose message shows the query with a caret
under the offending position and lists what was expected there.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInput
from ._ast import KEYWORDS, And, Compare, Exists, Field, In, Like, Node, Not, Or, Value

if TYPE_CHECKING:
    from lark import Lark

__all__ = ["QuerySyntaxError", "caret", "parse"]

GRAMMAR = r"""
?start: or_

?or_: and_ (OR and_)*
?and_: not_ (AND not_)*
?not_: NOT not_                      -> not_op
     | atom
?atom: LPAR or_ RPAR                 -> group
     | field COMPOP value            -> compare
     | field IN list                 -> in_
     | field NOT IN list             -> not_in
     | field LIKE STRING             -> like
     | field NOT LIKE STRING         -> not_like
     | EXISTS field                  -> exists

list: LPAR value (COMMA value)* COMMA? RPAR
field: segment (DOT segment)* qualifier?
segment: NAME | QUOTED_NAME
qualifier: LBRACKET (NAME | STRING | INTEGER) RBRACKET

value: STRING | NUMBER | INTEGER | DATE | DATETIME | TRUE | FALSE | NULL

OR: "or"i
AND: "and"i
NOT: "not"i
IN: "in"i
LIKE: "like"i
EXISTS: "exists"i
TRUE: "true"i
FALSE: "false"i
NULL: "null"i
NAME: /[A-Za-z_][A-Za-z0-9_]*/i
QUOTED_NAME: /`[^`]+`/
COMPOP: "==" | "!=" | "<=" | ">=" | "<" | ">" | "="
STRING: /"(?:[^"\\]|\\.)*"/s | /'(?:[^'\\]|\\.)*'/s
DATETIME.3: /\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?/i
DATE.2: /\d{4}-\d{2}-\d{2}/
NUMBER.1: /[+-]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][+-]?\d+)?/
INTEGER: /[+-]?\d+/
LPAR: "("
RPAR: ")"
LBRACKET: "["
RBRACKET: "]"
COMMA: ","
DOT: "."

%import common.WS
%ignore WS
"""

# what each terminal means, for "expected ..." in error messages
_TERMINALS = {
    "OR": '"or"',
    "AND": '"and"',
    "NOT": '"not"',
    "IN": '"in"',
    "LIKE": '"like"',
    "EXISTS": '"exists"',
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "NAME": "a field name",
    "QUOTED_NAME": "a field name",
    "COMPOP": "a comparison (== != < <= > >=)",
    "STRING": "a string",
    "DATETIME": "a date-time",
    "DATE": "a date",
    "NUMBER": "a number",
    "INTEGER": "a number",
    "LPAR": '"("',
    "RPAR": '")"',
    "LBRACKET": '"["',
    "RBRACKET": '"]"',
    "COMMA": '","',
    "DOT": '"."',
    "$END": "the end of the query",
}
_ORDER = list(dict.fromkeys(_TERMINALS.values()))
_ESCAPE = re.compile(r"\\([\\\"'])")


class QuerySyntaxError(InvalidInput):
    """A query that does not follow the grammar (also an :class:`InvalidInput`)."""


def caret(query: str, pos: int) -> str:
    """The query on one line and a caret under offset ``pos`` (newlines shown as spaces)."""
    flat = query.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    pos = max(0, min(pos, len(flat)))
    return f"  {flat}\n  {' ' * pos}^"


@functools.cache
def _parser() -> Lark:
    from lark import Lark

    return Lark(GRAMMAR, parser="lalr", propagate_positions=False, maybe_placeholders=False)


def _unquote(tok: str) -> str:
    return _ESCAPE.sub(r"\1", tok[1:-1])


def _value(query: str, tok: Any) -> Value:
    t, s = tok.type, str(tok)
    if t == "STRING":
        return _unquote(s)
    if t == "INTEGER":
        return int(s)
    if t == "NUMBER":
        v = float(s)
        if v in (float("inf"), float("-inf")):
            raise _bad_literal(query, tok, f"number {s} is out of range")
        return v
    if t == "TRUE":
        return True
    if t == "FALSE":
        return False
    if t == "NULL":
        return None
    if t == "DATE":
        try:
            return date.fromisoformat(s)
        except ValueError as e:
            raise _bad_literal(query, tok, f"{s} is not a valid date ({e})") from None
    try:  # DATETIME
        dt = datetime.fromisoformat(s.replace(" ", "T").replace("z", "Z"))
    except ValueError as e:
        raise _bad_literal(query, tok, f"{s} is not a valid date-time ({e})") from None
    return dt if dt.tzinfo is None else dt.astimezone(UTC)


def _bad_literal(query: str, tok: Any, msg: str) -> QuerySyntaxError:
    return QuerySyntaxError(f"invalid query: {msg}\n{caret(query, tok.start_pos)}")


def _field(query: str, tree: Any) -> Field:
    path: list[str] = []
    qualifier: str | int | None = None
    pos = None
    for child in tree.children:
        if getattr(child, "data", None) == "segment":
            tok = child.children[0]
            pos = tok.start_pos if pos is None else pos
            if tok.type == "NAME" and str(tok).lower() in KEYWORDS:
                raise QuerySyntaxError(
                    f"invalid query: {str(tok)!r} at column {tok.start_pos + 1} is a keyword, "
                    f"expected a field name (write `{tok}` in backticks for a field of that "
                    f"name)\n{caret(query, tok.start_pos)}"
                )
            path.append(str(tok)[1:-1] if tok.type == "QUOTED_NAME" else str(tok))
        elif getattr(child, "data", None) == "qualifier":
            q = child.children[1]
            qualifier = (
                _unquote(str(q))
                if q.type == "STRING"
                else int(q)
                if q.type == "INTEGER"
                else str(q)
            )
    return Field(tuple(path), qualifier, pos or 0)


def _node(query: str, tree: Any) -> Node:
    kind, ch = tree.data, tree.children
    if kind == "or_":
        return Or(tuple(_node(query, c) for c in ch if getattr(c, "type", None) != "OR"))
    if kind == "and_":
        return And(tuple(_node(query, c) for c in ch if getattr(c, "type", None) != "AND"))
    if kind == "not_op":
        return Not(_node(query, ch[1]))
    if kind == "group":
        return _node(query, ch[1])
    if kind == "compare":
        op = "==" if str(ch[1]) == "=" else str(ch[1])
        tok = ch[2].children[0]
        return Compare(_field(query, ch[0]), op, _value(query, tok), tok.start_pos)
    if kind in ("in_", "not_in"):
        lst = ch[-1]
        toks = [c.children[0] for c in lst.children if getattr(c, "data", None) == "value"]
        return In(
            _field(query, ch[0]),
            tuple(_value(query, t) for t in toks),
            kind == "not_in",
            lst.children[0].start_pos,
        )
    if kind in ("like", "not_like"):
        tok = ch[-1]
        return Like(_field(query, ch[0]), _unquote(str(tok)), kind == "not_like", tok.start_pos)
    if kind == "exists":
        return Exists(_field(query, ch[1]))
    raise AssertionError(f"unexpected parse node {kind}")  # pragma: no cover


def _expected(names: set[str]) -> str:
    words = {_TERMINALS.get(n, n) for n in names}
    ordered = [w for w in _ORDER if w in words] + sorted(words - set(_ORDER))
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def parse(query: str) -> Node | None:
    """Parse ``query``; ``None`` for an empty query (every image).

    Raises
    ------
    QuerySyntaxError
        The query does not follow the grammar; the message shows the position with a caret
        and lists the expected tokens.
    """
    from lark.exceptions import (
        UnexpectedCharacters,
        UnexpectedEOF,
        UnexpectedInput,
        UnexpectedToken,
        VisitError,
    )

    if not isinstance(query, str):
        raise InvalidInput(f"a query is text, not {type(query).__name__}")
    if not query.strip():
        return None
    if "\x00" in query:
        pos = query.index("\x00")
        raise QuerySyntaxError(
            f"invalid query: a NUL character at column {pos + 1}; queries are text without "
            f"NUL characters\n{caret(query, pos)}"
        )
    try:
        tree = _parser().parse(query)
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            what, pos = "the query ends too early", len(query.rstrip())
        else:
            what, pos = f"unexpected {str(tok)!r}", tok.start_pos
        raise QuerySyntaxError(
            f"invalid query: {what} at column {pos + 1}; expected {_expected(e.expected)}\n"
            f"{caret(query, pos)}"
        ) from None
    except UnexpectedCharacters as e:
        pos = int(e.pos_in_stream or 0)
        ch = query[pos] if pos < len(query) else ""
        hint = ""
        if ch in "\"'":
            hint = " (a string that is never closed?)"
        elif ch == "`":
            hint = " (a `quoted field` that is never closed?)"
        raise QuerySyntaxError(
            f"invalid query: unexpected character {ch!r} at column {pos + 1}{hint}; "
            f"expected {_expected(set(e.allowed or ()))}\n{caret(query, pos)}"
        ) from None
    except UnexpectedEOF as e:  # pragma: no cover - LALR reports UnexpectedToken($END)
        raise QuerySyntaxError(
            f"invalid query: the query ends too early; expected {_expected(set(e.expected))}\n"
            f"{caret(query, len(query))}"
        ) from None
    except UnexpectedInput as e:  # pragma: no cover - any other lark parse error
        raise QuerySyntaxError(f"invalid query: {e}") from None
    except VisitError as e:  # pragma: no cover
        raise QuerySyntaxError(f"invalid query: {e.orig_exc}") from None
    _check_depth(query, tree)
    return _node(query, tree)


#: How deeply a query may nest (parentheses, ``not``): deeper trees would exhaust the stack of
#: the recursive steps after parsing (building the tree, compiling it to SQL).
MAX_DEPTH = 100


def _check_depth(query: str, tree: Any) -> None:
    """:class:`QuerySyntaxError` where the parse tree is deeper than :data:`MAX_DEPTH`
    (measured without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise QuerySyntaxError(
                f"invalid query: it nests more than {MAX_DEPTH} levels deep (parentheses or "
                f"'not'); write it with fewer levels\n{caret(query, 0)}"
            )
        stack.extend((c, depth + 1) for c in getattr(node, "children", ()))
