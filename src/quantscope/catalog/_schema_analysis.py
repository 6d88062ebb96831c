"""Catalog tables for analysis runs, artifacts and provenance (migration 0004);
declared on the shared ``metadata`` of ``_schema``."""

from __future__ import annotations

__all__: list[str] = []
