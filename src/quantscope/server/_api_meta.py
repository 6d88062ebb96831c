"""Who am I, and is the server up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..catalog import Principal
from ._auth import principal
from ._state import ServerState, state

router = APIRouter()


@router.get("/healthz", tags=["meta"], summary="The server answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/api/whoami", tags=["meta"], summary="The caller, as the server sees it")
def whoami(who: Principal = Depends(principal), st: ServerState = Depends(state)) -> dict[str, Any]:
    return {**who.to_dict(), "single_user": st.single_user}
