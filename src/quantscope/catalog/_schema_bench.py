"""Catalog tables for benchmark ground-truth sets, runs and scores (migration 0005);
declared on the shared ``metadata`` of ``_schema``."""

from __future__ import annotations

__all__: list[str] = []
