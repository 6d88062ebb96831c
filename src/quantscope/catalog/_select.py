"""One answer to "which images?": image ids, plates, datasets and a query resolved to image ids.

Every command that works on a set of images (``quantscope qc``, ``run``, ``set``, ``metadata
check``...) and, next, the web API resolve their selection here, so a selection means the same
thing everywhere:

- explicit images (ids or unique prefixes of at least 3 characters), plates and datasets are
  joined, in the order given, without repeats; a plate contributes its fields in plate order
  (row, column, field), a dataset its members by id;
- a query (``where``, the language of ``quantscope find``) narrows them to the images that also
  match it, or, without explicit images, plates or datasets, selects on its own;
- nothing at all selects every image (:attr:`Selection.everything`).

The one-string form that ``quantscope set`` takes (``ID``, ``image:ID``, ``plate:NAME``,
``dataset:NAME``, else a query) is :meth:`Selection.parse`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import InvalidInput, NotFound
from . import _schema as S

if TYPE_CHECKING:
    from ._repository import Repository

__all__ = ["Selection", "select_images"]

_HEX = re.compile(r"^[0-9a-fA-F]{3,32}$")


def _names(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    """``value`` as a tuple of stripped names; one string is one name."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(
                f"selection: {what} must be given as text, got {type(item).__name__} {item!r}"
            )
        name = item.strip()
        if not name:
            raise InvalidInput(f"selection: an empty {what[:-1]} name was given")
        out.append(name)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Selection:
    """A selection of images, resolved by :func:`select_images`.

    Attributes
    ----------
    images : tuple of str
        Image ids or unique prefixes.
    plates : tuple of str
        Plate names: their images.
    datasets : tuple of str
        Dataset names: their member images.
    where : str or None
        A query (``quantscope find``'s language): alone, the images that match it; with
        images, plates or datasets, those of them that match it.
    """

    images: tuple[str, ...] = ()
    plates: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    where: str | None = None

    @classmethod
    def of(
        cls,
        *,
        images: str | Sequence[str] | None = None,
        plates: str | Sequence[str] | None = None,
        datasets: str | Sequence[str] | None = None,
        where: str | None = None,
    ) -> Selection:
        """A selection from loose arguments (a string or a list each; ``None`` for none).

        Raises
        ------
        InvalidInput
            A name that is not text or is empty, a query that is not text.
        """
        if where is not None and not isinstance(where, str):
            raise InvalidInput(f"selection: where must be a query string, got {where!r}")
        return cls(
            _names(images, "images"), _names(plates, "plates"), _names(datasets, "datasets"), where
        )

    @classmethod
    def parse(cls, text: str) -> Selection:
        """The one-string form: an image id or unique prefix (``image:ID`` too),
        ``plate:NAME``, ``dataset:NAME``, or else a query.

        Raises
        ------
        InvalidInput
            An empty string or one that is not text.
        """
        if not isinstance(text, str):
            raise InvalidInput(f"selection: expected text, got {type(text).__name__} {text!r}")
        s = text.strip()
        if not s:
            raise InvalidInput(
                "empty selection: give an image id, plate:NAME, dataset:NAME or a query"
            )
        kind, sep, name = s.partition(":")
        name = name.strip()
        if sep and kind == "image" and name:
            return cls(images=(name,))
        if sep and kind == "plate" and name:
            return cls(plates=(name,))
        if sep and kind == "dataset" and name:
            return cls(datasets=(name,))
        if _HEX.match(s):
            return cls(images=(s,))
        return cls(where=s)

    @property
    def explicit(self) -> bool:
        """Whether images, plates or datasets are named (a query then only narrows them)."""
        return bool(self.images or self.plates or self.datasets)

    @property
    def everything(self) -> bool:
        """Whether nothing narrows the selection: it is every image of the repository."""
        return not self.explicit and self.where is None


def _plate_ids(repo: Repository, names: Sequence[str], *, strict: bool) -> list[str]:
    known = {p.name: p for p in repo.images.plates()}
    out: list[str] = []
    for name in names:
        if name not in known:
            if not strict:
                continue
            raise NotFound(
                f"{repo.root}: no plate named {name!r}"
                + (f" (plates: {', '.join(known)})" if known else "")
            )
        out += [image_id for _r, _c, _f, image_id, _slot in known[name].fields]
    return out


def _dataset_ids(repo: Repository, names: Sequence[str]) -> list[str]:
    a = S.annotations.c
    q = sa.select(a.target_id).where(
        a.target_kind == "image", a.key == "dataset", a.value.in_(list(names))
    )
    with repo.engine.connect() as conn:
        return sorted(set(conn.execute(q).scalars()))


def _resolve(repo: Repository, sel: Selection, *, strict: bool) -> list[str]:
    chosen: dict[str, None] = {}
    for i in sel.images:
        chosen[repo.images.get(i).id] = None
    for image_id in _plate_ids(repo, sel.plates, strict=strict):
        chosen[image_id] = None
    if sel.datasets:
        for image_id in _dataset_ids(repo, sel.datasets):
            chosen[image_id] = None
    if sel.where is None:
        return list(chosen) if sel.explicit else repo.query.find_ids("")
    matching = repo.query.find_ids(sel.where)
    if not sel.explicit:
        return matching
    keep = set(matching)
    return [i for i in chosen if i in keep]


def select_images(
    repo: Repository,
    selection: Selection | str | None = None,
    *,
    images: str | Sequence[str] | None = None,
    plates: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    where: str | None = None,
) -> list[str]:
    """Image ids of a selection, in a stable order and without repeats.

    Parameters
    ----------
    repo
        An open repository.
    selection
        A :class:`Selection`, or the one-string form of :meth:`Selection.parse`. Cannot be
        combined with the keyword arguments.
    images, plates, datasets, where
        As the attributes of :class:`Selection` (a string or a list each).

    Returns
    -------
    list of str
        The ids; empty when a query or a dataset selects nothing (the caller says what that
        means: ``quantscope set`` refuses, a pipeline run has nothing to do). Nothing given at
        all selects every image.

    Raises
    ------
    NotFound
        An image id or a plate name that does not exist. In the one-string form an unknown
        plate selects nothing instead, as a query that matches nothing.
    InvalidInput
        An ambiguous image id prefix, a query that does not parse, an empty name or string,
        arguments of the wrong type, or ``selection`` together with keyword arguments.
    """
    keywords = (images, plates, datasets, where)
    strict = True
    if selection is not None:
        if any(k is not None for k in keywords):
            raise InvalidInput(
                "selection: give a Selection (or its one-string form) or keyword arguments, "
                "not both"
            )
        if isinstance(selection, str):
            selection, strict = Selection.parse(selection), False
        elif not isinstance(selection, Selection):
            raise InvalidInput(
                f"selection: expected a Selection or a string, got {type(selection).__name__}"
            )
        sel = selection
    else:
        sel = Selection.of(images=images, plates=plates, datasets=datasets, where=where)
    return list(dict.fromkeys(_resolve(repo, sel, strict=strict)))
