"""Typed records of the benchmark tables (``_schema_bench``), as ``repo.bench`` returns them.

A ground-truth set comes back as :class:`BenchSetInfo` (its row, from
:meth:`~quantscope.catalog._bench.BenchmarkRecords.sets`) or :class:`BenchSetRecord` (the row
with its :class:`BenchItemRecord` items, from ``get_set``); a scored method as
:class:`BenchRunRecord` and its per-item outcome as :class:`BenchResultRecord`. Each record is a
frozen dataclass whose field names are the keys of its JSON form: ``to_dict()`` gives that form
(lists where the record holds tuples), what ``--json`` output and the leaderboard print.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "BenchItemRecord",
    "BenchResultRecord",
    "BenchRunRecord",
    "BenchSetInfo",
    "BenchSetRecord",
]


@dataclass(frozen=True)
class BenchItemRecord:
    """One annotated image of a ground-truth set: its stored labels and where they came from.

    ``labels_path`` is relative to the repository root; ``image_id`` is set when the image was
    ingested, else ``image_path`` and ``image_sha256`` name the source file (or are None for a
    labels-only set).
    """

    name: str
    image_id: str | None
    image_path: str | None
    image_sha256: str | None
    labels_path: str
    labels_sha256: str
    source_labels_path: str
    shape: tuple[int, ...]
    n_objects: int

    def to_dict(self) -> dict[str, Any]:
        """The item as a JSON-ready dict (``shape`` a list)."""
        return {
            "name": self.name,
            "image_id": self.image_id,
            "image_path": self.image_path,
            "image_sha256": self.image_sha256,
            "labels_path": self.labels_path,
            "labels_sha256": self.labels_sha256,
            "source_labels_path": self.source_labels_path,
            "shape": list(self.shape),
            "n_objects": self.n_objects,
        }


@dataclass(frozen=True)
class BenchSetInfo:
    """A registered ground-truth set, without its items (``repo.bench.sets()``).

    ``provenance`` holds where the set came from (source folders, ``match`` pattern, how masks
    were labelled, the source's license text as ``source_text``, or the synthetic options).
    """

    id: int
    name: str
    kind: str
    description: str | None
    license: str
    provenance: dict[str, Any]
    n_items: int
    n_objects: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The set's row as a dict (a copy of ``provenance``; ``created_at`` a datetime)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "license": self.license,
            "provenance": dict(self.provenance),
            "n_items": self.n_items,
            "n_objects": self.n_objects,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class BenchSetRecord(BenchSetInfo):
    """A registered ground-truth set with its items, by name (``repo.bench.get_set(name)``)."""

    items: tuple[BenchItemRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        """The set's row with ``items`` (a list of item dicts)."""
        return {**super().to_dict(), "items": [i.to_dict() for i in self.items]}


@dataclass(frozen=True)
class BenchRunRecord:
    """A stored benchmark run: a method scored on a set, with its provenance and summary.

    ``set`` is the set's name; ``source_kind`` is ``"predictions"`` (``source`` the folder)
    or ``"pipeline"`` (``source`` the spec file, ``analysis_run_id`` the analysis run);
    ``summary`` is :meth:`quantscope.benchmark.BenchResult.summary` as stored.
    """

    id: str
    set_id: int
    set: str
    method: str
    tool: str
    tool_version: str | None
    parameters: dict[str, Any]
    source_kind: str
    source: str
    analysis_run_id: str | None
    thresholds: tuple[float, ...]
    software: dict[str, str]
    host: str
    user: str
    created_at: datetime
    n_images: int
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The run as a dict (``thresholds`` a list, copies of the mappings)."""
        return {
            "id": self.id,
            "set_id": self.set_id,
            "set": self.set,
            "method": self.method,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "parameters": dict(self.parameters),
            "source_kind": self.source_kind,
            "source": self.source,
            "analysis_run_id": self.analysis_run_id,
            "thresholds": list(self.thresholds),
            "software": dict(self.software),
            "host": self.host,
            "user": self.user,
            "created_at": self.created_at,
            "n_images": self.n_images,
            "summary": dict(self.summary),
        }


@dataclass(frozen=True)
class BenchResultRecord:
    """What a run stored for one item: its prediction's copy (path relative to the repository
    root) and SHA-256, the file it was copied from (None for arrays), and the matching counts
    (:meth:`quantscope.benchmark.InstanceScores.to_dict`)."""

    item: str
    pred_path: str
    pred_sha256: str
    source_pred_path: str | None
    counts: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The result as a dict."""
        return {
            "item": self.item,
            "pred_path": self.pred_path,
            "pred_sha256": self.pred_sha256,
            "source_pred_path": self.source_pred_path,
            "counts": dict(self.counts),
        }
