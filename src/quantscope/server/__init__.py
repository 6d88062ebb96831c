"""The shared platform: web portal, JSON API, read-only OME-Zarr over HTTP, access control.

A thin layer over the same library functions as the CLI (FastAPI + uvicorn, pages from the
Jinja2 templates of :mod:`quantscope._html`). ``quantscope serve REPO`` starts it; in Python::

    from quantscope.server import create_app
    app = create_app("my-repo")          # an ASGI app (uvicorn, httpx's ASGITransport, ...)

Access rules are not decided here: every route asks :mod:`._guard`, which asks the one policy of
:mod:`quantscope.catalog` (``may_read``/``may_write``/``may_see_image`` and its SQL form for
searches). Errors are mapped to HTTP statuses in one place (:mod:`._errors`).

FastAPI, uvicorn and the form parser are imported when this package is imported, never by the
rest of quantscope.
"""

from ._app import create_app
from ._serve import ServeOptions, check_options, serve

__all__ = ["ServeOptions", "check_options", "create_app", "serve"]
