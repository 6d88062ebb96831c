"""Bulk inserts for :meth:`Repository.images.register_many`.

SQLAlchemy's ``conn.execute(table.insert(), rows)`` processes every row's parameters in Python
(``construct_params`` and the type processors, per row); on batches of thousands of rows that
costs more than the database's own insert. :func:`insert_rows` compiles the INSERT once with
SQLAlchemy (same SQL, bound parameters, the dialect's parameter style) and applies each column
type's bind processor once per value, then hands the batch to the driver's ``executemany``.
``bench/query.py`` measures the registration rate against plain ``sqlite3.executemany``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["insert_rows"]


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (mappings with the same keys: column names) into ``table`` in one
    ``executemany``. Errors are SQLAlchemy's (``IntegrityError`` ...), as with ``execute``."""
    if not rows:
        return
    dialect = conn.dialect
    keys = list(rows[0])
    compiled = table.insert().compile(dialect=dialect, column_keys=keys)
    binds = compiled.positiontup if compiled.positional else list(compiled.binds)
    assert binds is not None
    columns = [compiled.binds[b].key for b in binds]
    procs = [table.c[c].type._cached_bind_processor(dialect) for c in columns]
    get = operator.itemgetter(*columns)
    convert = [(i, p) for i, p in enumerate(procs) if p is not None]
    params: list[Any] = []
    for r in rows:
        values = get(r) if len(columns) > 1 else (r[columns[0]],)
        if convert:
            values = list(values)
            for i, p in convert:
                if values[i] is not None:
                    values[i] = p(values[i])
            values = tuple(values)
        params.append(values if compiled.positional else dict(zip(binds, values, strict=True)))
    conn.exec_driver_sql(str(compiled), params)
