"""Ids given by a unique prefix: one rule for images, runs and artifacts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import InvalidInput

MIN_PREFIX = 3  # characters: short enough to type, long enough to mean something


def prefix_clause(column: Any, prefix: str) -> Any:
    """``column LIKE prefix%`` with the prefix's own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


def ambiguous(kind: str, prefix: str, matches: list[str]) -> str:
    shown = ", ".join(matches[:3]) + (", …" if len(matches) > 3 else "")
    return f"{kind} prefix {prefix!r} is ambiguous (matches {shown}); give more characters"


def lookup_prefix(conn: Any, column: Any, prefix: str) -> list[str]:
    """Up to four values of ``column`` that start with ``prefix`` (none when it is shorter
    than :data:`MIN_PREFIX`).

    Raises
    ------
    InvalidInput
        ``prefix`` is not text (an id is always written as a string).
    """
    if not isinstance(prefix, str):
        raise InvalidInput(f"an id is text: got {type(prefix).__name__} {prefix!r}")
    if len(prefix) < MIN_PREFIX:
        return []
    q = sa.select(column).where(prefix_clause(column, prefix)).order_by(column).limit(4)
    return [str(v) for v in conn.execute(q).scalars()]
