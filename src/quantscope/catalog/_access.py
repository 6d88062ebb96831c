"""Who may see and change what: principals, dataset access records and the one policy.

OMERO's private/shared/public model is the reference. Every image belongs to zero or more
datasets (:mod:`._annotations`); a dataset has an owner, members and a visibility:

- ``private``: its owner, its members and the admins see it;
- ``public``: everyone sees it, anonymous callers included.

An image is visible to a caller when one of its datasets is; an image in no dataset is visible to
admins only. Writing to a dataset (uploading into it, sharing it, making it public) is for its
owner and the admins; members read.

The rule lives here, as pure functions over records (:func:`may_read`, :func:`may_write`,
:func:`may_see_image`), so the CLI, the API, the pages, ``/zarr/`` and search all ask the same
question. The catalog turns the same rule into SQL for searches (``repo.access``); the tests check
that both agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "VISIBILITIES",
    "DatasetAccess",
    "Principal",
    "Visibility",
    "may_read",
    "may_see_image",
    "may_write",
]

Visibility = Literal["private", "public"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "public")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user of the repository, an anonymous caller, or the local single user.

    ``user_id`` is ``None`` for anonymous callers and for the local user of single-user mode
    (a repository without users, served on 127.0.0.1 only), who is an admin.
    """

    name: str | None
    user_id: int | None = None
    is_admin: bool = False

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(name=None)

    @classmethod
    def local(cls) -> Principal:
        """The single user of a repository without users (``quantscope serve`` on 127.0.0.1)."""
        return cls(name="local", is_admin=True)

    @property
    def is_anonymous(self) -> bool:
        return self.name is None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "admin": self.is_admin, "anonymous": self.is_anonymous}


@dataclass(frozen=True)
class DatasetAccess:
    """The access record of one dataset: owner (a user name, or ``None`` when nobody owns it
    yet), members (user names) and visibility."""

    name: str
    owner: str | None = None
    members: frozenset[str] = field(default_factory=frozenset)
    visibility: Visibility = "private"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "members": sorted(self.members),
            "visibility": self.visibility,
        }


def may_read(who: Principal, ds: DatasetAccess) -> bool:
    """Whether ``who`` may see dataset ``ds`` and its images."""
    if who.is_admin or ds.visibility == "public":
        return True
    if who.is_anonymous:
        return False
    return who.name == ds.owner or who.name in ds.members


def may_write(who: Principal, ds: DatasetAccess) -> bool:
    """Whether ``who`` may add to, share or publish dataset ``ds`` (owner and admins)."""
    if who.is_admin:
        return True
    return not who.is_anonymous and who.name == ds.owner


def may_see_image(who: Principal, datasets: Iterable[DatasetAccess]) -> bool:
    """Whether ``who`` may see an image that belongs to ``datasets`` (none: admins only)."""
    return who.is_admin or any(may_read(who, ds) for ds in datasets)
