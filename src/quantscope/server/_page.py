"""Rendering a portal page: the template of :mod:`quantscope._html` (``portal/...``) with the
context every page shares (the caller, the CSRF token of its forms, single-user mode)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from .. import _html
from ._auth import csrf_token, principal
from ._state import state

__all__ = ["page"]


def page(
    request: Request, template: str, /, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """The HTML response of ``portal/<template>`` filled with ``context`` plus ``who``,
    ``csrf`` and ``single_user``."""
    who = principal(request)
    text = _html.render(
        f"portal/{template}",
        who=who.to_dict(),
        csrf=csrf_token(request),
        single_user=state(request).single_user,
        **context,
    )
    return HTMLResponse(text, status_code=status_code)
