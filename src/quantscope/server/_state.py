"""What every request of one server process shares: the open repository and the options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from ..catalog import Repository

__all__ = ["ServerState", "state"]


@dataclass
class ServerState:
    """The server's shared state (one per process; the repository's engine is thread-safe).

    ``single_user``: the repository has no users; every caller is the local admin, and the
    server listens on 127.0.0.1 only (:func:`quantscope.server.serve` refuses anything else).
    """

    repo: Repository
    single_user: bool
    cors_origins: tuple[str, ...] = ()
    # background runs and uploads started by this process: id -> progress record
    jobs: dict[str, object] = field(default_factory=dict)


def state(request: Request) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    st: ServerState = request.app.state.quantscope
    return st
