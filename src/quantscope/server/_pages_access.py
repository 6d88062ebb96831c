"""Pages of access control: sign in, and the datasets page (list, make one from a query,
share it, make it public). The forms post here and are answered with the page again (or a
redirect); what they do is :mod:`._api_access`'s, the same functions as the API."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from ..catalog import Principal
from ..errors import QuantscopeError
from ._api_access import (
    create_dataset,
    local_path,
    set_dataset_visibility,
    share_dataset,
    visible_datasets,
)
from ._auth import CSRF, login_csrf, principal, set_login_csrf_cookie
from ._errors import status_of
from ._page import page
from ._state import state

__all__ = ["login_page", "router"]

router = APIRouter()


def login_page(
    request: Request, *, next_path: str = "/", error: str = "", status_code: int | None = None
) -> HTMLResponse:
    """The sign-in page (with a fresh double-submit token and its cookie)."""
    token = login_csrf(request)
    response = page(
        request,
        "login.html.j2",
        status_code=status_code or (401 if error else 200),
        title="Sign in",
        nav="login",
        next_path=next_path,
        error=error,
    )
    set_login_csrf_cookie(request, response, token)
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def get_login(request: Request, next: str = "/") -> HTMLResponse:
    return login_page(request, next_path=local_path(next))


def _datasets_page(
    request: Request,
    who: Principal,
    *,
    message: str = "",
    error: str = "",
    q: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    items: list[dict[str, Any]] = []
    for d in visible_datasets(state(request).repo, who):
        query = 'dataset == "' + d["name"].replace("\\", "\\\\").replace('"', '\\"') + '"'
        items.append({**d, "path": quote(d["name"], safe=""), "search": quote(query, safe="")})
    return page(
        request,
        "datasets.html.j2",
        status_code=status_code,
        title="Datasets",
        nav="datasets",
        datasets=items,
        message=message,
        error=error,
        q=q,
    )


@router.get("/datasets", response_class=HTMLResponse, include_in_schema=False)
def get_datasets(
    request: Request, done: str = "", who: Principal = Depends(principal)
) -> HTMLResponse:
    return _datasets_page(request, who, message=done[:300])


def _after(request: Request, who: Principal, action: Any, done: str, q: str = "") -> Response:
    """Run a form's action; on success back to the list (303), else the page with the error
    and the status the API would answer."""
    try:
        action()
    except QuantscopeError as e:
        code = status_of(e)
        if code == 404 or code >= 500:
            raise
        return _datasets_page(request, who, error=str(e), q=q, status_code=code)
    return RedirectResponse("/datasets?done=" + quote(done, safe=""), status_code=303)


@router.post("/datasets", dependencies=[CSRF], include_in_schema=False)
def post_dataset_form(
    request: Request,
    name: Annotated[str, Form(max_length=255)],
    q: Annotated[str, Form(max_length=10000)] = "",
    public: Annotated[str, Form(max_length=8)] = "",
    who: Principal = Depends(principal),
) -> Response:
    repo = state(request).repo
    return _after(
        request,
        who,
        lambda: create_dataset(repo, who, name, q, public=bool(public)),
        f"dataset {name.strip()} saved",
        q,
    )


@router.post("/datasets/{name}/share", dependencies=[CSRF], include_in_schema=False)
def post_share_form(
    request: Request,
    name: str,
    user: Annotated[str, Form(max_length=64)],
    who: Principal = Depends(principal),
) -> Response:
    repo = state(request).repo
    return _after(
        request,
        who,
        lambda: share_dataset(repo, who, name, user.strip()),
        f"{name} shared with {user.strip()}",
    )


@router.post("/datasets/{name}/visibility", dependencies=[CSRF], include_in_schema=False)
def post_visibility_form(
    request: Request,
    name: str,
    visibility: Annotated[str, Form(max_length=16)],
    who: Principal = Depends(principal),
) -> Response:
    repo = state(request).repo
    return _after(
        request,
        who,
        lambda: set_dataset_visibility(repo, who, name, visibility),
        f"{name} is {visibility}",
    )
