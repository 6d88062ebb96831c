"""``quantscope serve``: run the app under uvicorn with the repository's access mode."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import AccessDenied, InvalidInput

__all__ = ["ServeOptions", "serve"]

log = logging.getLogger("quantscope.server")


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: address, port, worker processes and the origins allowed by CORS."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    cors_origins: tuple[str, ...] = ()
    scheduler: str | None = None  # a Dask scheduler (tcp://HOST:8786) for runs started over HTTP

    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_options(opts: ServeOptions, *, has_users: bool) -> None:
    """Refuse options that cannot work or would expose a repository without users.

    Raises
    ------
    InvalidInput
        A port outside 1-65535 or fewer than one worker.
    AccessDenied
        A repository without users (single-user mode) served on an address other than
        loopback.
    """
    if not 0 < opts.port < 65536:
        raise InvalidInput(f"--port: expected 1-65535, got {opts.port}")
    if opts.workers < 1:
        raise InvalidInput(f"--workers: expected at least 1, got {opts.workers}")
    if not has_users and not is_loopback(opts.host):
        raise AccessDenied(
            f"--host {opts.host}: this repository has no users, so it is served in single-user "
            "mode, where every caller is its admin; that mode listens on 127.0.0.1 only. Add a "
            "user first: quantscope user add REPO NAME --admin"
        )


def serve(root: str | os.PathLike[str], opts: ServeOptions) -> None:
    """Serve repository ``root`` until interrupted (blocks).

    Raises
    ------
    InvalidInput, AccessDenied
        As :func:`check_options`.
    """
    import uvicorn

    from ..catalog import Repository

    with Repository.open(Path(root)) as repo:
        access = getattr(repo, "access", None)
        has_users = bool(access is not None and access.has_users())
        resolved = str(repo.root)
    check_options(opts, has_users=has_users)
    os.environ["QUANTSCOPE_SERVE_REPO"] = resolved
    os.environ["QUANTSCOPE_SERVE_CORS"] = "\n".join(opts.cors_origins)
    os.environ["QUANTSCOPE_SERVE_SINGLE_USER"] = "0" if has_users else "1"
    if opts.scheduler:
        os.environ["QUANTSCOPE_SERVE_SCHEDULER"] = opts.scheduler
    uvicorn.run(
        "quantscope.server._app:app_from_environment",
        factory=True,
        host=opts.host,
        port=opts.port,
        workers=opts.workers,
        log_level="warning",
        access_log=False,
    )
