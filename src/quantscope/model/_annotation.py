"""Annotations: key-value pairs, tags and ontology terms attached to images, plates, datasets."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["TAG_KEY", "Annotation", "TargetKind"]

TAG_KEY = "tag"
"""The key under which tags are stored (a tag is an annotation ``tag = <name>``)."""

TargetKind = Literal["image", "plate", "dataset"]
_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9][A-Za-z0-9_\-+]*)*$")
_CURIE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*:[A-Za-z0-9_.\-]+$|^CVCL_[0-9A-Z]{4}$")


class Annotation(BaseModel):
    """One annotation on an image (by id), a plate (by name) or a dataset (by name).

    ``key`` is ``"tag"`` for a tag, otherwise a dotted path such as ``biosample.organism``
    (see :mod:`quantscope.metadata` for the keys quantscope knows). ``value`` is the text of
    the value (for an ontology term its label, with the term in ``curie``, e.g. ``"Homo
    sapiens"`` and ``NCBITaxon:9606``); ``num_value`` is the number, in ``unit``, where the value
    is a quantity. ``source`` says where it came from: ``"user"`` or ``"sidecar:<file>"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    target_kind: TargetKind = "image"
    target_id: str = Field(min_length=1, max_length=255)
    key: str = Field(min_length=1, max_length=255)
    value: str | None = None
    num_value: float | None = None
    unit: str | None = Field(default=None, max_length=32)
    curie: str | None = Field(default=None, max_length=128)
    source: str = Field(default="user", min_length=1, max_length=64)

    @field_validator("key")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not _KEY_RE.match(v):
            raise ValueError(
                f"annotation key {v!r} is not a dotted name (letters, digits, '_' between dots, "
                "e.g. 'biosample.cell_line')"
            )
        return v

    @field_validator("curie")
    @classmethod
    def _curie(cls, v: str | None) -> str | None:
        if v is not None and not _CURIE_RE.match(v):
            raise ValueError(
                f"{v!r} is not a CURIE (prefix:id, e.g. 'NCBITaxon:9606', or a Cellosaurus "
                "accession such as 'CVCL_0030')"
            )
        return v

    @model_validator(mode="after")
    def _has_value(self) -> Annotation:
        if self.value is None and self.num_value is None and self.curie is None:
            raise ValueError(f"annotation {self.key!r} has no value")
        if self.key == TAG_KEY and not self.value:
            raise ValueError("a tag needs a name")
        return self

    @property
    def is_tag(self) -> bool:
        return self.key == TAG_KEY
