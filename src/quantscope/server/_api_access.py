"""Signing in and out, and datasets: who owns them, who they are shared with, public or not.

- ``POST /login`` (form ``name``, ``password``, ``csrf``, ``next``): a session cookie, then a
  redirect to ``next`` (a local path only);
- ``POST /logout`` (form ``csrf``): ends the session;
- ``GET /api/datasets``: the datasets the caller may see, with their access records;
- ``POST /api/datasets`` ``{"name", "q", "public"?}``: put the images of a query (those the
  caller may see) into a dataset; a new one is owned by the caller;
- ``POST /api/datasets/{name}/share`` ``{"user"}``, ``.../unshare`` ``{"user"}``,
  ``.../visibility`` ``{"visibility": "public"|"private"}``: its owner and the admins.

A dataset the caller may not see answers 404, one they may see but not change 403, an
anonymous caller 401. The functions below the routes are what the pages call too.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.responses import Response

from ..catalog import DatasetAccess, Principal, Repository, may_read, may_write
from ..errors import InvalidInput, NotAuthenticated
from ._auth import (
    CSRF,
    SESSION_COOKIE,
    auth_via,
    check_login_csrf,
    clear_session_cookie,
    principal,
    set_session_cookie,
)
from ._guard import dataset_for, filter_visible, require_dataset_write, require_user
from ._state import ServerState, state

__all__ = [
    "create_dataset",
    "dataset_dict",
    "local_path",
    "prepare_dataset_write",
    "router",
    "set_dataset_visibility",
    "share_dataset",
    "visible_datasets",
]

router = APIRouter()


class DatasetCreate(BaseModel):
    """A dataset made from a query."""

    name: str = Field(min_length=1, max_length=255, description="Dataset name.")
    q: str = Field("", max_length=10000, description="Query (empty: every image you may see).")
    public: bool = Field(False, description="Make it public (everyone, signed in or not).")


class ShareWith(BaseModel):
    user: str = Field(min_length=1, max_length=64, description="User name.")


class SetVisibility(BaseModel):
    visibility: str = Field(description="'public' or 'private'.")


# ---------------------------------------------------------------------------- library side
def dataset_dict(
    repo: Repository, who: Principal, ds: DatasetAccess, images: int
) -> dict[str, Any]:
    """A dataset as the API shows it to ``who`` (members only to those who may change it)."""
    out = ds.to_dict()
    writable = may_write(who, ds)
    if not writable:
        out["members"] = None
    out.update(images=images, writable=writable)
    return out


def visible_datasets(repo: Repository, who: Principal) -> list[dict[str, Any]]:
    """The datasets ``who`` may see, by name, with their number of images."""
    counts = {d.name: d.images for d in repo.annotations.datasets()}
    return [
        dataset_dict(repo, who, ds, counts.get(ds.name, 0))
        for ds in repo.access.datasets()
        if may_read(who, ds)
    ]


def _images_in(repo: Repository, name: str) -> int:
    return next((d.images for d in repo.annotations.datasets() if d.name == name), 0)


def prepare_dataset_write(repo: Repository, who: Principal, name: str) -> DatasetAccess:
    """Check that ``who`` may add images to dataset ``name`` and, for a new name, record
    ``who`` as its owner first (so that what they add stays theirs; the local user of
    single-user mode owns nothing: admins only). Call it before writing images into a
    dataset (uploads, datasets made from a query). Returns the dataset's access record.

    Raises
    ------
    NotAuthenticated, AccessDenied
        As :func:`~._guard.require_dataset_write`.
    """
    require_dataset_write(repo, who, name)
    try:
        return repo.access.dataset_access(name)
    except LookupError:
        return repo.access.set_owner(name, who.name if who.user_id is not None else None)


def create_dataset(
    repo: Repository, who: Principal, name: str, q: str = "", *, public: bool = False
) -> dict[str, Any]:
    """Put the images matching ``q`` that ``who`` may see into dataset ``name``; a new
    dataset is owned by ``who`` (signed-in users; the owner or an admin for an existing one).

    Raises
    ------
    NotAuthenticated, AccessDenied
        As :func:`~._guard.require_dataset_write`.
    InvalidInput
        A query with a syntax error, a malformed name.
    """
    require_dataset_write(repo, who, name)
    ids = filter_visible(repo, who, repo.query.find_ids(q))  # (a bad query changes nothing)
    prepare_dataset_write(repo, who, name)
    name = name.strip()
    if ids:
        repo.annotations.add_to_dataset(name, ids, source=f"user:{who.name}")
    ds = repo.access.set_visibility(name, "public") if public else repo.access.dataset_access(name)
    return {**dataset_dict(repo, who, ds, _images_in(repo, name)), "added": len(ids)}


def share_dataset(
    repo: Repository, who: Principal, name: str, user: str, *, unshare: bool = False
) -> dict[str, Any]:
    """Share dataset ``name`` with ``user`` (or stop sharing it): its owner and the admins."""
    require_user(who)
    dataset_for(repo, who, name)
    require_dataset_write(repo, who, name)
    act = repo.access.unshare if unshare else repo.access.share
    return dataset_dict(repo, who, act(name, user), _images_in(repo, name))


def set_dataset_visibility(
    repo: Repository, who: Principal, name: str, visibility: str
) -> dict[str, Any]:
    """Make dataset ``name`` public or private: its owner and the admins."""
    require_user(who)
    dataset_for(repo, who, name)
    require_dataset_write(repo, who, name)
    ds = repo.access.set_visibility(name, visibility)
    return dataset_dict(repo, who, ds, _images_in(repo, name))


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path of this site (``/...``, not ``//host`` nor a URL with a
    scheme), else ``default``: a login never redirects to another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 32 or ch == "\\" for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# ---------------------------------------------------------------------------- routes
@router.post(
    "/login",
    dependencies=[CSRF],
    tags=["access"],
    summary="Sign in (form); sets the session cookie",
)
def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    st = state(request)
    if st.single_user:
        raise InvalidInput("this repository has no users: everyone here is its admin already")
    if auth_via(request) != "session":  # a signed-in form passed require_csrf already
        check_login_csrf(request, csrf)
    try:
        who = st.repo.access.verify_password(name, password)
    except NotAuthenticated:
        from ._pages_access import login_page

        return login_page(request, next_path=local_path(next), error="wrong name or password")
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        st.repo.access.end_session(old)
    session_id, _ = st.repo.access.create_session(who)
    response = RedirectResponse(local_path(next), status_code=303)
    set_session_cookie(request, response, session_id)
    return response


@router.post(
    "/logout", dependencies=[CSRF], tags=["access"], summary="Sign out (form); ends the session"
)
def logout(request: Request) -> Response:
    st = state(request)
    sid = request.cookies.get(SESSION_COOKIE)
    if sid and not st.single_user:
        st.repo.access.end_session(sid)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(request, response)
    return response


@router.get("/api/datasets", tags=["access"], summary="The datasets you may see")
def list_datasets(
    who: Principal = Depends(principal), st: ServerState = Depends(state)
) -> dict[str, Any]:
    items = visible_datasets(st.repo, who)
    return {"items": items, "total": len(items)}


@router.post(
    "/api/datasets",
    dependencies=[CSRF],
    tags=["access"],
    summary="Make a dataset from a query",
    status_code=201,
)
def post_dataset(
    body: DatasetCreate, who: Principal = Depends(principal), st: ServerState = Depends(state)
) -> dict[str, Any]:
    return create_dataset(st.repo, who, body.name, body.q, public=body.public)


@router.post(
    "/api/datasets/{name}/share", dependencies=[CSRF], tags=["access"], summary="Share a dataset"
)
def post_share(
    name: str,
    body: ShareWith,
    who: Principal = Depends(principal),
    st: ServerState = Depends(state),
) -> dict[str, Any]:
    return share_dataset(st.repo, who, name, body.user)


@router.post(
    "/api/datasets/{name}/unshare", dependencies=[CSRF], tags=["access"], summary="Stop sharing"
)
def post_unshare(
    name: str,
    body: ShareWith,
    who: Principal = Depends(principal),
    st: ServerState = Depends(state),
) -> dict[str, Any]:
    return share_dataset(st.repo, who, name, body.user, unshare=True)


@router.post(
    "/api/datasets/{name}/visibility",
    dependencies=[CSRF],
    tags=["access"],
    summary="Public or private",
)
def post_visibility(
    name: str,
    body: SetVisibility,
    who: Principal = Depends(principal),
    st: ServerState = Depends(state),
) -> dict[str, Any]:
    return set_dataset_visibility(st.repo, who, name, body.visibility)
