"""The one place every route asks what the caller may see or do.

- :func:`image_for`: an image the caller may see, or :class:`~quantscope.errors.NotFound`
  (a forbidden image answers 404, like one that does not exist: a caller who may not see it
  need not learn it exists);
- :func:`visible_images`: the SQL condition on ``images.id`` a search adds, so that it never
  counts or returns what the caller may not see;
- :func:`require_user`, :func:`require_admin`: actions for signed-in users and admins.

The rule itself is the catalog's (:func:`quantscope.catalog.may_see_image` and its SQL form).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import AccessDenied, NotAuthenticated, NotFound

if TYPE_CHECKING:
    from ..catalog import Principal, Repository
    from ..model import Image

__all__ = [
    "check_image_id",
    "filter_visible",
    "image_for",
    "require_admin",
    "require_dataset_write",
    "require_user",
    "visible_images",
]

# full image ids only (the server takes no prefixes: a prefix would let a caller probe ids)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_image_id(image_id: str) -> str:
    """``image_id`` if it has the form of an id; otherwise :class:`NotFound`."""
    if not isinstance(image_id, str) or not _ID.match(image_id):
        raise NotFound(f"no image with id {str(image_id)[:80]!r}")
    return image_id


def visible_images(repo: Repository, who: Principal) -> Any | None:
    """The condition on ``images.id`` that keeps what ``who`` may see (``None``: everything)."""
    if who.is_admin:
        return None
    return sa.false()


def image_for(repo: Repository, who: Principal, image_id: str) -> Image:
    """The image ``image_id`` if ``who`` may see it.

    Raises
    ------
    NotFound
        No such image, or one ``who`` may not see (the same answer).
    """
    check_image_id(image_id)
    found = repo.images.all([image_id])
    if not found or not who.is_admin:
        raise NotFound(f"no image with id {image_id!r}")
    return found[0]


def filter_visible(repo: Repository, who: Principal, image_ids: Iterable[str]) -> list[str]:
    """The ids of ``image_ids`` that ``who`` may see, in their order (feature tables, runs and
    plates show only those rows)."""
    ids = list(image_ids)
    return ids if who.is_admin else []


def require_dataset_write(repo: Repository, who: Principal, name: str) -> Principal:
    """``who`` if they may add images to dataset ``name`` (upload into it, share it, publish
    it): its owner or an admin; a new dataset name may be created by any signed-in user.

    Raises
    ------
    NotAuthenticated, AccessDenied
    """
    require_user(who)
    if not who.is_admin:
        raise AccessDenied(f"user {who.name!r} may not write to dataset {name!r}")
    return who


def require_user(who: Principal) -> Principal:
    """``who`` if signed in (or the local user); otherwise :class:`NotAuthenticated`."""
    if who.is_anonymous:
        raise NotAuthenticated("sign in first (the login page, or a bearer token)")
    return who


def require_admin(who: Principal) -> Principal:
    """``who`` if an admin; otherwise :class:`AccessDenied` (or NotAuthenticated)."""
    require_user(who)
    if not who.is_admin:
        raise AccessDenied(f"user {who.name!r} is not an admin")
    return who
