"""Errors to HTTP statuses, in one place.

Every error of :mod:`quantscope.errors` becomes a status and a JSON body
``{"error": {"type": ..., "message": ...}}`` under ``/api`` and ``/zarr``, or an error page
elsewhere. Anything else is a 500 whose body says only that the server failed (the traceback goes
to the server's log, never to the caller).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import (
    AccessDenied,
    ConcurrentAccess,
    CorruptFile,
    IntegrityError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    QuantscopeError,
    RepositoryError,
    UnsupportedFormat,
)

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import Response

__all__ = ["error_response", "install_handlers", "status_of"]

log = logging.getLogger("quantscope.server")

# most specific first: the first class an error is an instance of decides
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotAuthenticated, 401),
    (AccessDenied, 403),
    (PayloadTooLarge, 413),
    (UnsupportedFormat, 415),
    (CorruptFile, 422),
    (InvalidInput, 400),
    (NotFound, 404),
    (ConcurrentAccess, 409),
    (IntegrityError, 500),
    (RepositoryError, 503),
)


def status_of(exc: BaseException) -> int:
    """The HTTP status of a quantscope error (500 for anything unexpected)."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 400 if isinstance(exc, QuantscopeError) else 500


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/zarr/")) or path in ("/api", "/zarr"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: Request, status: int, kind: str, message: str) -> Response:
    """The answer to a failed request: JSON under ``/api``/``/zarr``, a page elsewhere."""
    from fastapi.responses import HTMLResponse, JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if _wants_json(request):
        body = {"error": {"type": kind, "message": message}}
        return JSONResponse(body, status_code=status, headers=headers)
    from .._html import escape

    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{status} {escape(kind)}</title></head><body><main class='error'>"
        f"<h1>{status}</h1><p class='message'>{escape(message)}</p>"
        "<p><a href='/'>Search images</a></p></main></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=headers)


def install_handlers(app: FastAPI) -> None:
    """Register the error handlers on ``app``."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def quantscope_error(request: Request, exc: Exception) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(request, status, type(exc).__name__, str(exc))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(request, 422, "InvalidInput", "; ".join(parts))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "NotFound", 405: "MethodNotAllowed", 401: "NotAuthenticated"}.get(
            exc.status_code, "HTTPError"
        )
        return error_response(request, exc.status_code, kind, str(exc.detail))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            request, 500, "ServerError", "the server failed on this request (see its log)"
        )

    app.add_exception_handler(QuantscopeError, quantscope_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
