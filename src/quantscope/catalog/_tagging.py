"""Tags and key-value annotations of images, plates and datasets changed in one call: what
``quantscope tag`` does, callable from Python (and the web API) with the same result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Annotation
    from ._repository import Repository

__all__ = ["AnnotationChanges", "edit_annotations"]


@dataclass
class AnnotationChanges:
    """What :func:`edit_annotations` changed, and the targets' annotations afterwards."""

    tags_added: int = 0
    tags_removed: int = 0
    values_set: int = 0
    values_removed: int = 0
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """The four counts by name (``tags_added``...)."""
        return {
            "tags_added": self.tags_added,
            "tags_removed": self.tags_removed,
            "values_set": self.values_set,
            "values_removed": self.values_removed,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts and every annotation of the targets; what
        ``quantscope tag --json`` prints."""
        return {**self.counts, "annotations": [a.model_dump() for a in self.annotations]}


def edit_annotations(
    repo: Repository,
    targets: Sequence[str],
    *,
    values: Sequence[tuple[str, str]] = (),
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    unset: Sequence[str] = (),
) -> AnnotationChanges:
    """Set values, add and remove tags, and remove annotation keys on ``targets``, then list
    their annotations. Without changes, only lists them.

    Parameters
    ----------
    repo
        An open repository; its write lock is taken when something changes.
    targets
        Image ids (or unique prefixes), ``image:ID``, ``plate:NAME``, ``dataset:NAME``.
    values
        ``(key, value)`` pairs to set (checked against the known keys), in order.
    add, remove
        Tags to add, then tags to remove.
    unset
        Annotation keys to remove.

    Raises
    ------
    InvalidInput
        No target, an ambiguous prefix, an unknown key or a bad value.
    NotFound
        An image or plate that does not exist.
    """
    out = AnnotationChanges()
    resolved = repo.annotations.resolve_targets(targets)
    names = [f"{k}:{i}" if k != "image" else i for k, i in resolved]
    if add or remove or values or unset:
        with repo.write_lock():
            for key, value in values:
                out.values_set += repo.annotations.set(names, key.strip(), value.strip())
            if add:
                out.tags_added = repo.annotations.tag(names, add)
            if remove:
                out.tags_removed = repo.annotations.untag(names, remove)
            for key in unset:
                out.values_removed += repo.annotations.remove(names, key)
    out.annotations = [
        a
        for kind, tid in resolved
        for a in repo.annotations.all(kind, [tid])  # one target at a time: kinds differ
    ]
    return out
