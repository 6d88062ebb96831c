"""(filled by the issue-14 work: see ROUTER_MODULES in _app.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
