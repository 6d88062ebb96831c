"""``quantscope`` commands for the analysis area. Heavy imports live inside commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the ``quantscope`` app."""
