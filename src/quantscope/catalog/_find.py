"""The query language: ``find`` and the catalog's queryable fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

__all__ = ["QueryMethods"]


class QueryMethods:
    """Mixed into :class:`~quantscope.catalog.Repository`."""

    engine: Engine
    root: Path
