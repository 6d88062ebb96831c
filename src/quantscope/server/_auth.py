"""Who is calling: the :class:`~quantscope.catalog.Principal` of a request, and CSRF.

In single-user mode (a repository without users, served on 127.0.0.1) every caller is the local
admin. Otherwise a request is signed in by a bearer token (``Authorization: Bearer ...``, from
``quantscope token create``) or by the session cookie of the login page; without either it is
anonymous (it sees public datasets only). A bearer token that is not valid is refused (401),
not taken for anonymous; an expired or unknown session cookie is anonymous.

CSRF: a request that changes state (any method but GET, HEAD, OPTIONS) and is signed in by the
session COOKIE must carry the session's CSRF token, as the form field ``csrf`` or the header
``X-CSRF-Token`` (:func:`require_csrf`, applied to every route by the app). Bearer-token and
single-user requests need none (a browser never adds a bearer token by itself). The login form
is protected by a double-submit cookie (:data:`LOGIN_CSRF_COOKIE`).
"""

from __future__ import annotations

import secrets

from fastapi import Depends, Request
from starlette.responses import Response

from ..catalog import Principal
from ..errors import AccessDenied, NotAuthenticated
from ._state import state

__all__ = [
    "CSRF",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "auth_via",
    "check_login_csrf",
    "clear_session_cookie",
    "csrf_token",
    "login_csrf",
    "principal",
    "require_csrf",
    "set_login_csrf_cookie",
    "set_session_cookie",
]

SESSION_COOKIE = "quantscope_session"
LOGIN_CSRF_COOKIE = "quantscope_login_csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authorization: expected 'Bearer TOKEN' (quantscope token create)")
    return token.strip()


def principal(request: Request) -> Principal:
    """The caller of ``request`` (a FastAPI dependency; computed once per request).

    Raises
    ------
    NotAuthenticated
        A bearer token that is malformed, unknown or revoked.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    st = state(request)
    via, csrf = "anonymous", ""
    if st.single_user:
        who, via = Principal.local(), "local"
    else:
        token = _bearer(request)
        who = Principal.anonymous()
        if token is not None:
            found = st.repo.access.principal_for_token(token)
            if found is None:
                raise NotAuthenticated("this token is not valid (unknown or revoked)")
            who, via = found, "token"
        elif request.cookies.get(SESSION_COOKIE):
            live = st.repo.access.session(request.cookies[SESSION_COOKIE])
            if live is not None:
                (who, csrf), via = live, "session"
    request.state.principal = who
    request.state.auth_via = via
    request.state.session_csrf = csrf
    return who


def auth_via(request: Request) -> str:
    """How the caller was recognized: ``local``, ``token``, ``session`` or ``anonymous``."""
    principal(request)
    return str(request.state.auth_via)


def csrf_token(request: Request) -> str:
    """The CSRF token that this caller's forms carry: the session's, the login form's
    double-submit token where a page set one (:func:`login_csrf`), else empty."""
    try:
        principal(request)
    except NotAuthenticated:
        return ""
    return str(getattr(request.state, "session_csrf", "") or getattr(request.state, "csrf", ""))


def login_csrf(request: Request) -> str:
    """The double-submit token of the login form: the one of the caller's cookie, or a new
    one (the page sets the cookie with :func:`set_login_csrf_cookie`)."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not 20 <= len(token) <= 100:
        token = secrets.token_urlsafe(32)
    request.state.csrf = token
    return token


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_login_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Path=/, Secure over https; it lasts as
    long as the browser runs (the session itself expires in the catalog)."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


async def _sent_token(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    # only small url-encoded forms are read here; a multipart body (an upload) is streamed to
    # disk by its route, so it must carry the header (reading it here would spool it first)
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = await request.form()  # (cached: the route reads the same form)
        value = form.get("csrf")
        return value if isinstance(value, str) else ""
    return ""


async def require_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request signed in by the session cookie that does not
    carry the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).

    A dependency of every route (see ``create_app``). Requests signed in by a bearer token,
    single-user requests, anonymous ones and safe methods pass.
    """
    if request.method in _SAFE_METHODS:
        return
    try:
        if auth_via(request) != "session":
            return
    except NotAuthenticated:
        return  # the route's own Depends(principal) answers 401
    expected = str(request.state.session_csrf)
    sent = await _sent_token(request)
    if not sent or not secrets.compare_digest(sent.encode(), expected.encode()):
        raise AccessDenied(
            "missing or wrong CSRF token: a form must carry the page's hidden 'csrf' field, a "
            "script or an upload (multipart) the header X-CSRF-Token (from <meta "
            "name='csrf-token'>)"
        )


def check_login_csrf(request: Request, sent: str) -> None:
    """The login form's double-submit check: the form's ``csrf`` equals the cookie's."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not cookie or not sent or not secrets.compare_digest(sent.encode(), cookie.encode()):
        raise AccessDenied(
            "the sign-in form has expired or came from another site: reload the login page"
        )


#: The CSRF check as a route dependency: ``@router.post(path, dependencies=[CSRF])`` on every
#: state-changing route (tests/server/test_access.py fails for a route without it). A per-route
#: dependency, not an app-wide one: an app-wide async dependency cost every GET (each tile and
#: /zarr/ chunk) about 1 ms, a third of the tile throughput.
CSRF = Depends(require_csrf)
