"""The one place every route asks what the caller may see or do.

- :func:`image_for`: an image the caller may see, or :class:`~quantscope.errors.NotFound`
  (a forbidden image answers 404, like one that does not exist: a caller who may not see it
  need not learn it exists);
- :func:`visible_images`: the SQL condition on ``images.id`` a search adds, so that it never
  counts or returns what the caller may not see;
- :func:`filter_visible`: the ids of a list the caller may see (feature rows, runs, plates);
- :func:`dataset_for`, :func:`require_dataset_write`: a dataset the caller may see, change;
- :func:`require_user`, :func:`require_admin`: actions for signed-in users and admins.

The rule itself is the catalog's (:func:`quantscope.catalog.may_see_image` and its SQL form).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..catalog import may_read, may_see_image, may_write
from ..errors import AccessDenied, NotAuthenticated, NotFound

if TYPE_CHECKING:
    from ..catalog import DatasetAccess, Principal, Repository
    from ..model import Image

__all__ = [
    "check_image_id",
    "dataset_for",
    "filter_visible",
    "image_for",
    "may_see",
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
    """The condition on ``images.id`` that keeps what ``who`` may see (``None``: everything);
    give it to ``repo.query.page(..., only=...)`` so a search never counts what it hides."""
    clause: Any | None = repo.access.visible_images_clause(who)
    return clause


def may_see(repo: Repository, who: Principal, image_id: str) -> bool:
    """Whether ``who`` may see image ``image_id`` (by the catalog's one policy)."""
    if who.is_admin:
        return True
    return may_see_image(who, repo.access.datasets_of_images([image_id])[image_id])


def image_for(repo: Repository, who: Principal, image_id: str) -> Image:
    """The image ``image_id`` if ``who`` may see it.

    Raises
    ------
    NotFound
        No such image, or one ``who`` may not see (the same answer).
    """
    check_image_id(image_id)
    found = repo.images.all([image_id])
    if not found or not may_see(repo, who, image_id):
        raise NotFound(f"no image with id {image_id!r}")
    return found[0]


def filter_visible(repo: Repository, who: Principal, image_ids: Iterable[str]) -> list[str]:
    """The ids of ``image_ids`` that ``who`` may see, in their order (feature tables, runs and
    plates show only those rows)."""
    ids = list(image_ids)
    if who.is_admin:
        return ids
    datasets = repo.access.datasets_of_images(ids)
    return [i for i in ids if may_see_image(who, datasets[i])]


def dataset_for(repo: Repository, who: Principal, name: str) -> DatasetAccess:
    """The access record of dataset ``name`` if ``who`` may see it.

    Raises
    ------
    NotFound
        No such dataset, or one ``who`` may not see (the same answer).
    """
    try:
        ds = repo.access.dataset_access(name)
    except NotFound:
        raise NotFound(f"no dataset named {name!r}") from None
    if not may_read(who, ds):
        raise NotFound(f"no dataset named {name!r}")
    return ds


def require_dataset_write(repo: Repository, who: Principal, name: str) -> Principal:
    """``who`` if they may add images to dataset ``name`` (upload into it, share it, publish
    it): its owner or an admin; a new dataset name may be created by any signed-in user.

    Raises
    ------
    NotAuthenticated
        An anonymous caller.
    AccessDenied
        A dataset ``who`` may see but not change, or one they may not see at all (its name
        is taken: the answer does not say more).
    """
    require_user(who)
    try:
        ds = repo.access.dataset_access(name)
    except NotFound:
        return who  # a new dataset
    if not may_write(who, ds):
        raise AccessDenied(
            f"user {who.name!r} may not change dataset {name!r} (its owner and the admins may)"
        )
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
