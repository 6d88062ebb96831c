"""Metadata completeness of a repository's images: each image (with the annotations of its
plate and datasets, and its stored OME-XML) checked against the 4DN-BINA-OME (NBO) tiers and
the REMBI modules (:func:`quantscope.metadata.check_completeness`); what
``quantscope metadata check`` runs and prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ._select import select_images

if TYPE_CHECKING:
    from ..metadata import CompletenessReport
    from ._repository import Repository

__all__ = ["MetadataCheck", "check_metadata"]


@dataclass
class MetadataCheck:
    """Completeness of the images checked, per image against NBO (up to ``tier``) and REMBI.

    Attributes
    ----------
    tier : int
        The NBO tier checked.
    nbo, rembi : list of CompletenessReport
        One report per image, in the same order.
    require_tier : int or None
        The tier every image must meet (``--require-tier``); None: no requirement.
    """

    tier: int
    nbo: list[CompletenessReport] = field(default_factory=list)
    rembi: list[CompletenessReport] = field(default_factory=list)
    require_tier: int | None = None

    @property
    def failing(self) -> list[CompletenessReport]:
        """The NBO reports of images that miss a requirement of :attr:`require_tier`."""
        return [rep for rep in self.nbo if not rep.complete] if self.require_tier else []

    @property
    def passed(self) -> bool:
        """Whether every image meets :attr:`require_tier` (always True without one)."""
        return not self.failing

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tier, per image both reports, the aggregate of each standard, the
        requirement and whether it passed; what ``quantscope metadata check --json`` prints."""
        from ..metadata import summarize

        return {
            "tier": self.tier,
            "images": [
                {"id": n.image_id, "name": n.image_name, "nbo": n.to_dict(), "rembi": m.to_dict()}
                for n, m in zip(self.nbo, self.rembi, strict=True)
            ],
            "aggregate": {"nbo": summarize(self.nbo), "rembi": summarize(self.rembi)},
            "require_tier": self.require_tier,
            "passed": self.passed,
        }


def check_metadata(
    repo: Repository,
    image_ids: Sequence[str] | None = None,
    *,
    tier: int = 1,
    require_tier: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MetadataCheck:
    """Check the metadata completeness of images of ``repo``.

    Parameters
    ----------
    repo
        An open repository.
    image_ids
        Image ids or unique prefixes (default: every image), resolved by
        :func:`~quantscope.catalog.select_images`.
    tier
        NBO tier to report (1 or 2); the check uses the higher of ``tier`` and
        ``require_tier``.
    require_tier
        A tier every image must meet (see :attr:`MetadataCheck.passed`).
    progress
        ``progress(done, total)`` after each image.

    Raises
    ------
    InvalidInput
        A tier other than 1 or 2, an ambiguous id prefix.
    NotFound
        An unknown image id.
    """
    from ..metadata import check_completeness, enrich, stored_ome_xml

    for name, value in (("tier", tier), ("require_tier", require_tier)):
        if value is not None and value not in (1, 2):
            raise InvalidInput(f"{name}: NBO tier {value!r} is not checked (tiers 1 and 2 are)")
    level = max(tier, require_tier or 0)
    if image_ids:
        ids = select_images(repo, images=image_ids)
        by_id = {img.id: img for img in repo.images.all(ids)}
        selected = [by_id[i] for i in ids]
    else:
        selected = repo.images.all()
    anns = repo.annotations.effective(selected)
    out = MetadataCheck(level, require_tier=require_tier)
    for k, img in enumerate(selected):
        full = enrich(img, stored_ome_xml(repo.root, img))
        out.nbo.append(check_completeness(full, anns[img.id], standard="nbo", tier=level))
        out.rembi.append(check_completeness(full, anns[img.id], standard="rembi"))
        if progress is not None:
            progress(k + 1, len(selected))
    return out
