"""The FastAPI application: state, error handlers, the routers of the API and the pages."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from ._errors import install_handlers
from ._state import ServerState

if TYPE_CHECKING:
    from ..catalog import Repository

__all__ = ["ROUTER_MODULES", "create_app"]

#: The modules whose ``router`` the app includes, in this order (each owns one kind of route).
ROUTER_MODULES = (
    "_api_meta",  # /api/whoami, /healthz
    "_api_access",  # login, logout, users, datasets (access)
    "_api_images",  # /api/images, image records, thumbnails
    "_tiles",  # /api/images/{id}/tiles/...
    "_zarr",  # /zarr/... read-only OME-Zarr over HTTP
    "_api_runs",  # /api/runs, features, POST /api/runs
    "_api_ingest",  # POST /api/ingest
    "_pages",  # the portal's HTML pages: search, image, plate map, QC dashboard
    "_pages_runs",  # pages: runs, features, benchmarks
    "_pages_access",  # pages: sign in, datasets
)


def _has_users(repo: Repository) -> bool:
    access = getattr(repo, "access", None)
    return bool(access is not None and access.has_users())


def create_app(
    repo: str | os.PathLike[str] | Repository,
    *,
    cors_origins: tuple[str, ...] | list[str] = (),
    single_user: bool | None = None,
) -> FastAPI:
    """The ASGI app serving repository ``repo``.

    Parameters
    ----------
    repo
        A repository folder, or an open :class:`~quantscope.catalog.Repository`.
    cors_origins
        Origins whose browsers may read the API and ``/zarr/`` (an external viewer).
    single_user
        Treat every caller as the local admin. By default, when the repository has no users.
        :func:`quantscope.server.serve` binds 127.0.0.1 only in that mode.
    """
    from ..catalog import Repository

    opened = repo if isinstance(repo, Repository) else Repository.open(Path(repo))
    if single_user is None:
        single_user = not _has_users(opened)
    opened.analyze()  # a catalog written by older versions may have no planner statistics
    app = FastAPI(
        title="quantscope",
        summary="Images, metadata, quality, analyses and their provenance, over HTTP.",
        version=_version(),
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.quantscope = ServerState(
        repo=opened, single_user=single_user, cors_origins=tuple(cors_origins)
    )
    install_handlers(app)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["Range", "Authorization", "If-None-Match"],
            expose_headers=["Content-Range", "Content-Length", "ETag", "Accept-Ranges"],
        )
    for name in ROUTER_MODULES:
        module: Any = importlib.import_module(f"{__package__}.{name}")
        app.include_router(module.router)
    _mount_static(app)
    return app


def _mount_static(app: FastAPI) -> None:
    """``/static/portal/``: the portal's CSS and JavaScript (written here, in
    ``quantscope/_html/static/portal``); ``/static/vendor/``: the front-end libraries the
    Makefile installs from the npm registry (lock file ``web/package-lock.json``) into
    ``quantscope/server/static/vendor``."""
    from importlib import resources

    from fastapi.staticfiles import StaticFiles

    portal = resources.files("quantscope._html") / "static" / "portal"
    app.mount("/static/portal", StaticFiles(directory=str(portal)), name="portal-static")
    vendor = Path(__file__).resolve().parent / "static" / "vendor"
    app.mount("/static/vendor", StaticFiles(directory=str(vendor), check_dir=False), name="vendor")


def _version() -> str:
    from importlib.metadata import version

    return version("quantscope")


def app_from_environment() -> FastAPI:
    """The app of ``quantscope serve --workers N`` (uvicorn's factory; options from the
    environment variables that :func:`quantscope.server.serve` sets)."""
    root = os.environ["QUANTSCOPE_SERVE_REPO"]
    cors = tuple(o for o in os.environ.get("QUANTSCOPE_SERVE_CORS", "").split("\n") if o)
    single = os.environ.get("QUANTSCOPE_SERVE_SINGLE_USER") == "1"
    return create_app(root, cors_origins=cors, single_user=single)
