"""Analysis runs, their artifacts and provenance records."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

__all__ = ["RunRecords"]


class RunRecords:
    """Mixed into :class:`~quantscope.catalog.Repository`."""

    engine: Engine
    root: Path
