"""``quantscope serve``: the web portal and HTTP API over a repository.

FastAPI and uvicorn are imported when the command runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import RepoArg, _console


def serve(
    repo: RepoArg,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; 127.0.0.1 (this machine only) unless you ask for "
            "another, e.g. 0.0.0.0 (every interface; needs users: quantscope user add).",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", help="Server processes (each serves any request).")
    ] = 1,
    cors: Annotated[
        list[str] | None,
        typer.Option(
            "--cors",
            metavar="ORIGIN",
            help="Let pages of ORIGIN (e.g. https://viewer.example.org) read the API and "
            "/zarr/ from a browser; repeat for several.",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Run the pipelines started from the portal on this Dask scheduler "
            "(tcp://HOST:8786), as `quantscope run --scheduler` does; default: local processes.",
        ),
    ] = None,
) -> None:
    """Serve the repository: web portal, JSON API (/docs) and read-only OME-Zarr (/zarr/)."""
    from ..server import ServeOptions, check_options
    from ..server import serve as run_server

    opts = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        cors_origins=tuple(cors or ()),
        scheduler=scheduler,
    )
    from ..catalog import Repository

    with Repository.open(repo) as r:
        access = getattr(r, "access", None)
        has_users = bool(access is not None and access.has_users())
    check_options(opts, has_users=has_users)
    mode = "with sign-in" if has_users else "in single-user mode: no users, you are its admin"
    _console(stderr=True).print(
        f"quantscope: serving {repo} at {opts.url()} ({mode}); API docs at {opts.url()}docs; "
        "stop with Ctrl+C"
    )
    run_server(repo, opts)


def register(app: typer.Typer) -> None:
    app.command()(serve)
