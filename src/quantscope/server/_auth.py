"""Who is calling: the :class:`~quantscope.catalog.Principal` of a request.

In single-user mode (a repository without users, served on 127.0.0.1) every caller is the local
admin. Otherwise a request is signed in by a bearer token (``Authorization: Bearer ...``, from
``quantscope token create``) or by the session cookie of the login page; without either it is
anonymous (it sees public datasets only).
"""

from __future__ import annotations

from fastapi import Request

from ..catalog import Principal
from ._state import state

__all__ = ["SESSION_COOKIE", "csrf_token", "principal"]

SESSION_COOKIE = "quantscope_session"


def principal(request: Request) -> Principal:
    """The caller of ``request`` (a FastAPI dependency; computed once per request)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    st = state(request)
    who = Principal.local() if st.single_user else Principal.anonymous()
    request.state.principal = who
    return who


def csrf_token(request: Request) -> str:
    """The CSRF token that this caller's forms carry (empty where no session needs one).

    (Foundation: single-user mode has no session; the access work ties the token to the
    session cookie and checks it on every form POST.)
    """
    return ""
