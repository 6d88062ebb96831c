"""Annotations (key-value pairs, tags, ontology terms) on images, plates and datasets."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

__all__ = ["AnnotationRecords"]


class AnnotationRecords:
    """Mixed into :class:`~quantscope.catalog.Repository`."""

    engine: Engine
    root: Path
