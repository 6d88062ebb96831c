"""Metadata completeness against the 4DN-BINA-OME (NBO) tiers and the REMBI modules.

The requirements are data (``data/requirements.yaml``), not code branches: each names the
standard's attribute, where quantscope keeps it (a model path or an annotation key) and its
tier or module. :func:`check_completeness` evaluates them on an image and its annotations.

References
----------
Hammer M. et al. (2021) Towards community-driven metadata standards for light microscopy:
tiered specifications extending the OME model. Nat Methods 18:1427-1440,
doi:10.1038/s41592-021-01327-9.
Sarkans U. et al. (2021) REMBI: Recommended Metadata for Biological Images. Nat Methods
18:1418-1422, doi:10.1038/s41592-021-01166-8.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..errors import InvalidInput
from ..model import Annotation, Channel, Image

__all__ = [
    "CompletenessReport",
    "Requirement",
    "check_completeness",
    "requirements",
    "summarize",
]

_DEFAULT_CHANNEL_NAME = re.compile(r"^C\d+$")  # names made up by readers, not metadata
_MODEL_ROOTS = {
    "image",
    "pixels",
    "acquired_at",
    "instrument",
    "objective",
    "objective_settings",
    "environment",
    "stage",
    "light_sources",
    "light_source",
    "detectors",
    "detector",
    "channel",
}


@dataclass(frozen=True)
class Requirement:
    """One required attribute of a standard (see ``data/requirements.yaml``)."""

    standard: str  # "nbo" or "rembi"
    id: str
    fields: tuple[str, ...]  # one of them suffices
    tier: int | None = None
    module: str | None = None
    each_channel: bool = False
    when: tuple[tuple[str, str], ...] = ()
    ref: str = ""

    @property
    def label(self) -> str:
        return self.id


@dataclass
class CompletenessReport:
    """Which requirements of one standard (and tier) an image meets.

    ``score`` is the fraction (0-1) of the requirements met; ``missing`` lists the ids of
    those not met with the field quantscope looked at.
    """

    image_id: str
    image_name: str
    standard: str
    tier: int | None
    met: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (requirement id, field)

    @property
    def total(self) -> int:
        return len(self.met) + len(self.missing)

    @property
    def score(self) -> float:
        return len(self.met) / self.total if self.total else 1.0

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "image_name": self.image_name,
            "standard": self.standard,
            "tier": self.tier,
            "score": round(self.score, 4),
            "met": len(self.met),
            "total": self.total,
            "missing": [{"id": i, "field": f} for i, f in self.missing],
        }


@functools.cache
def _load() -> tuple[Requirement, ...]:
    import yaml

    text = resources.files(__package__).joinpath("data/requirements.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    out = []
    for standard, items in raw.items():
        for item in items:
            fields = tuple(item["any_of"]) if "any_of" in item else (item["field"],)
            out.append(
                Requirement(
                    standard=standard,
                    id=item["id"],
                    fields=fields,
                    tier=item.get("tier"),
                    module=item.get("module"),
                    each_channel=item.get("each") == "channel",
                    when=tuple((k, str(v)) for k, v in (item.get("when") or {}).items()),
                    ref=item.get("ref", ""),
                )
            )
    return tuple(out)


def requirements(standard: str = "nbo", tier: int | None = None) -> list[Requirement]:
    """Requirements of ``standard`` ("nbo" or "rembi"); for NBO those of tiers ``<= tier``
    (tiers are cumulative; all tiers when None).

    Raises
    ------
    InvalidInput
        Unknown standard, or an NBO tier other than 1 or 2.
    """
    if standard not in ("nbo", "rembi"):
        raise InvalidInput(f"unknown standard {standard!r} (nbo or rembi)")
    if standard == "nbo" and tier is not None and tier not in (1, 2):
        raise InvalidInput(f"NBO tier {tier} is not checked (tiers 1 and 2 are)")
    return [
        r
        for r in _load()
        if r.standard == standard and (tier is None or r.tier is None or r.tier <= tier)
    ]


def _present(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, str):
        return bool(v.strip())
    if isinstance(v, tuple | list):
        return len(v) > 0
    return True


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None) if obj is not None else None


class _Facts:
    """What is known of one image: its model and its annotations (own, its plate's and the
    dataset-wide ones)."""

    def __init__(self, image: Image, annotations: Iterable[Annotation]) -> None:
        self.image = image
        self.keys: dict[str, list[Annotation]] = {}
        for a in annotations:
            self.keys.setdefault(a.key, []).append(a)

    def channel_value(self, ch: Channel, name: str) -> Any:
        v = getattr(ch, name, None)
        if name == "name" and isinstance(v, str) and _DEFAULT_CHANNEL_NAME.match(v):
            return None
        return v

    def has(self, path: str, channel: Channel | None = None) -> bool:
        img = self.image
        acq = img.acquisition
        inst = acq.instrument
        root, _, rest = path.partition(".")
        if root not in _MODEL_ROOTS:
            key, _, part = path.partition("#")
            anns = self.keys.get(key, [])
            if part == "curie":
                return any(a.curie for a in anns)
            return any(_present(a.value) or a.num_value is not None for a in anns)
        if root == "channel":
            chans = [channel] if channel is not None else list(img.channels)
            return bool(chans) and any(_present(self.channel_value(c, rest)) for c in chans)
        if root == "image":
            return _present(getattr(img, rest, None))
        if root == "pixels":
            return _present(getattr(img, rest, None))
        if root == "acquired_at":
            return acq.acquired_at is not None
        if root in ("light_sources", "detectors"):
            return inst is not None and len(getattr(inst, root)) > 0
        if root in ("light_source", "detector"):
            items = list(getattr(inst, root + "s")) if inst is not None else []
            return bool(items) and all(_present(getattr(i, rest, None)) for i in items)
        if root == "instrument" and not rest:
            return inst is not None
        target = {
            "instrument": inst,
            "objective": acq.objective,
            "objective_settings": acq.objective_settings,
            "environment": acq.environment,
            "stage": acq.stage,
        }[root]
        if not rest:
            return target is not None
        return _present(_attr(target, rest))


def _applies(req: Requirement, facts: _Facts, ch: Channel) -> bool:
    return all(str(facts.channel_value(ch, n) or "") == want for n, want in req.when)


def check_completeness(
    image: Image,
    annotations: Iterable[Annotation] = (),
    *,
    standard: str = "nbo",
    tier: int | None = 1,
) -> CompletenessReport:
    """Which requirements of ``standard`` (NBO up to ``tier``, or REMBI) ``image`` meets.

    ``annotations`` are those of the image (its plate's and dataset-wide ones may be added:
    they apply to the image too). A per-channel requirement counts once per channel it applies
    to (a fluorophore only for fluorescence channels).

    Raises
    ------
    InvalidInput
        Unknown standard or tier.
    """
    reqs = requirements(standard, tier if standard == "nbo" else None)
    facts = _Facts(image, annotations)
    rep = CompletenessReport(image.id, image.name, standard, tier if standard == "nbo" else None)
    for req in reqs:
        if req.each_channel:
            chans = [c for c in image.channels if _applies(req, facts, c)]
            for ch in chans:
                label = f"{req.id}[{ch.name}]"
                if any(facts.has(f, ch) for f in req.fields):
                    rep.met.append(label)
                else:
                    rep.missing.append((label, " | ".join(req.fields)))
            continue
        if any(facts.has(f) for f in req.fields):
            rep.met.append(req.id)
        else:
            rep.missing.append((req.id, " | ".join(req.fields)))
    return rep


def summarize(reports: Sequence[CompletenessReport]) -> dict[str, Any]:
    """Aggregate of per-image reports of one standard: images, how many are complete, mean
    and minimum score, and the requirements most often missing (with counts)."""
    if not reports:
        return {"images": 0, "complete": 0, "mean_score": None, "min_score": None, "missing": []}
    counts: Counter[str] = Counter()
    for r in reports:
        counts.update({re.sub(r"\[.*\]$", "", i) for i, _ in r.missing})
    scores = [r.score for r in reports]
    return {
        "images": len(reports),
        "complete": sum(r.complete for r in reports),
        "mean_score": round(sum(scores) / len(scores), 4),
        "min_score": round(min(scores), 4),
        "missing": [{"id": k, "images": n} for k, n in counts.most_common()],
    }
