"""Annotations (key-value pairs, tags, ontology terms) on images, plates and datasets.

Rows live in the ``annotations`` table: ``target_kind`` (image | plate | dataset),
``target_id`` (image id, plate name, dataset name), ``key`` (``"tag"`` for tags, otherwise a
dotted key such as ``biosample.organism``; see :mod:`quantscope.metadata`), ``value`` (text;
the label of an ontology term), ``num_value`` (the number, in ``unit``, of a quantity),
``curie`` (the ontology term, e.g. ``NCBITaxon:9606``), ``source`` (``user`` or
``sidecar:<file>``) and ``created_at``.

A key that holds one value (``biosample.organism``) is *set*: writing it replaces the target's
previous value. A multi-valued key (``tag``, ``study.authors``) *accumulates* distinct values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidInput, NotFound, QuantscopeError
from ..model import TAG_KEY, Annotation, TargetKind
from . import _schema as S

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from ..model import Image

__all__ = ["AnnotationRecords", "SidecarOutcome", "SidecarReport"]

_CHUNK = 500  # rows per IN (...) list


@dataclass(frozen=True)
class SidecarOutcome:
    """Something to report about a sidecar applied during ingest: an error or a note."""

    path: str
    message: str
    error: bool = False


@dataclass
class SidecarReport:
    """What applying one sidecar did."""

    path: str
    images: int = 0
    annotations: int = 0
    notes: list[str] = field(default_factory=list)


def _multi(key: str) -> bool:
    from ..metadata import key_spec

    spec = key_spec(key)
    return key == TAG_KEY or (spec is not None and spec.multi)


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class AnnotationRecords:
    """Mixed into :class:`~quantscope.catalog.Repository`."""

    engine: Engine
    root: Path

    if TYPE_CHECKING:

        def images(self, ids: Sequence[str] | None = None) -> list[Image]: ...

        def image(self, image_id: str) -> Image: ...

    # ------------------------------------------------------------------ writes
    def annotate(self, annotations: Iterable[Annotation]) -> int:
        """Record annotations in one transaction; returns the number of rows written.

        Keys with one value replace the target's previous value; multi-valued keys (tags)
        add the value unless the target already has it.

        Raises
        ------
        NotFound
            An image id or plate name that is not in the catalog.
        """
        anns = list(annotations)
        if not anns:
            return 0
        with self.engine.begin() as conn:
            self._check_targets(conn, anns)
            return self._write(conn, anns)

    def _check_targets(self, conn: Connection, anns: Sequence[Annotation]) -> None:
        for kind, col in (("image", S.images.c.id), ("plate", S.plates.c.name)):
            wanted = sorted({a.target_id for a in anns if a.target_kind == kind})
            found: set[str] = set()
            for chunk in _chunks(wanted):
                found.update(conn.execute(sa.select(col).where(col.in_(chunk))).scalars())
            missing = [w for w in wanted if w not in found]
            if missing:
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                raise NotFound(
                    f"{self.root}: no {kind} {', '.join(map(repr, missing[:3]))}{more} "
                    f"(see `quantscope ls`)"
                )

    def _write(self, conn: Connection, anns: Sequence[Annotation]) -> int:
        a = S.annotations
        latest: dict[tuple[str, str, str, str | None], Annotation] = {}
        for ann in anns:  # the last of duplicate values wins
            latest[(ann.target_kind, ann.target_id, ann.key, ann.value)] = ann
        single: dict[tuple[str, str, str], Annotation] = {}
        multi: list[Annotation] = []
        for ann in latest.values():
            if _multi(ann.key):
                multi.append(ann)
            else:
                single[(ann.target_kind, ann.target_id, ann.key)] = ann
        rows = list(single.values())
        triples = list(single)
        for chunk in _chunks(triples):
            conn.execute(
                a.delete().where(sa.tuple_(a.c.target_kind, a.c.target_id, a.c.key).in_(chunk))
            )
        if multi:
            quads = [(m.target_kind, m.target_id, m.key, m.value) for m in multi]
            present: set[tuple[Any, ...]] = set()
            for chunk in _chunks(quads):
                present.update(
                    tuple(r)
                    for r in conn.execute(
                        sa.select(a.c.target_kind, a.c.target_id, a.c.key, a.c.value).where(
                            sa.tuple_(a.c.target_kind, a.c.target_id, a.c.key, a.c.value).in_(chunk)
                        )
                    )
                )
            rows += [m for m, q in zip(multi, quads, strict=True) if q not in present]
        if rows:
            now = datetime.now(UTC)
            conn.execute(
                a.insert(),
                [
                    {
                        "target_kind": r.target_kind,
                        "target_id": r.target_id,
                        "key": r.key,
                        "value": r.value,
                        "num_value": r.num_value,
                        "unit": r.unit,
                        "curie": r.curie,
                        "source": r.source,
                        "created_at": now,
                    }
                    for r in rows
                ],
            )
        return len(rows)

    def set_annotation(
        self,
        targets: Sequence[str],
        key: str,
        value: Any,
        *,
        source: str = "user",
    ) -> int:
        """Check ``value`` against ``key`` (type, unit, ontology term) and set it on
        ``targets`` (image ids or prefixes, ``plate:NAME``, ``dataset:NAME``).

        Raises
        ------
        InvalidInput
            Unknown key (with a suggestion) or a value of the wrong type or unit.
        NotFound
            A target that does not exist.
        """
        from ..metadata import parse_value

        try:
            parsed = parse_value(key, value)
        except ValueError as e:
            raise InvalidInput(f"{key}={value}: {e}") from None
        anns = [
            Annotation(
                target_kind=kind,
                target_id=tid,
                key=key,
                value=parsed.value,
                num_value=parsed.num_value,
                unit=parsed.unit,
                curie=parsed.curie,
                source=source,
            )
            for kind, tid in self.resolve_targets(targets)
        ]
        return self.annotate(anns)

    def tag(self, targets: Sequence[str], tags: Sequence[str], *, source: str = "user") -> int:
        """Add ``tags`` to ``targets`` (image ids or prefixes, ``plate:NAME``,
        ``dataset:NAME``); returns the number of tags added (existing ones are kept)."""
        clean = [t.strip() for t in tags if t.strip()]
        if not clean:
            raise InvalidInput("no tag given")
        resolved = self.resolve_targets(targets)
        return self.annotate(
            Annotation(target_kind=k, target_id=i, key=TAG_KEY, value=t, source=source)
            for k, i in resolved
            for t in clean
        )

    def untag(self, targets: Sequence[str], tags: Sequence[str]) -> int:
        """Remove ``tags`` from ``targets``; returns the number of tags removed."""
        return sum(
            self.remove_annotations(targets, TAG_KEY, value=t.strip()) for t in tags if t.strip()
        )

    def remove_annotations(
        self, targets: Sequence[str], key: str | None = None, *, value: str | None = None
    ) -> int:
        """Remove the annotations of ``targets`` with ``key`` (every key when None) and, if
        given, ``value``; returns the number of rows removed."""
        resolved = self.resolve_targets(targets)
        a = S.annotations
        removed = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(resolved):
                q = a.delete().where(sa.tuple_(a.c.target_kind, a.c.target_id).in_(list(chunk)))
                if key is not None:
                    q = q.where(a.c.key == key)
                if value is not None:
                    q = q.where(a.c.value == value)
                removed += conn.execute(q).rowcount or 0
        return removed

    # ------------------------------------------------------------------ reads
    def annotations(
        self,
        target_kind: str | None = None,
        target_ids: Sequence[str] | None = None,
        key: str | None = None,
    ) -> list[Annotation]:
        """Annotations, optionally of one kind of target, of some targets, with one key;
        ordered by target, key and value."""
        a = S.annotations
        q = sa.select(a).order_by(a.c.target_kind, a.c.target_id, a.c.key, a.c.value, a.c.id)
        if target_kind is not None:
            q = q.where(a.c.target_kind == target_kind)
        if key is not None:
            q = q.where(a.c.key == key)
        out: list[Annotation] = []
        with self.engine.connect() as conn:
            chunks: Iterable[Sequence[str] | None] = (
                _chunks(list(target_ids)) if target_ids is not None else [None]
            )
            for chunk in chunks:
                qq = q if chunk is None else q.where(a.c.target_id.in_(list(chunk)))
                out += [_annotation(r) for r in conn.execute(qq).mappings()]
        return out

    def image_annotations(self, image_ids: Sequence[str]) -> dict[str, list[Annotation]]:
        """{image id: its annotations} for ``image_ids`` (images without any are left out)."""
        out: dict[str, list[Annotation]] = {}
        for ann in self.annotations("image", image_ids):
            out.setdefault(ann.target_id, []).append(ann)
        return out

    def tags(self, target: str) -> list[str]:
        """Tags of one target (image id or prefix, ``plate:NAME``, ``dataset:NAME``)."""
        [(kind, tid)] = self.resolve_targets([target])
        return [a.value or "" for a in self.annotations(kind, [tid], TAG_KEY)]

    def resolve_targets(self, targets: Sequence[str]) -> list[tuple[TargetKind, str]]:
        """``(kind, id)`` of targets written as an image id (or unique prefix),
        ``image:ID``, ``plate:NAME`` or ``dataset:NAME``.

        Raises
        ------
        NotFound
            An image or plate that does not exist.
        InvalidInput
            No target, or an ambiguous image id prefix.
        """
        if not targets:
            raise InvalidInput("no target given (an image id, plate:NAME or dataset:NAME)")
        out: list[tuple[TargetKind, str]] = []
        for t in targets:
            kind, sep, name = t.partition(":")
            if sep and kind in ("plate", "dataset", "image") and name:
                if kind == "plate":
                    with self.engine.connect() as conn:
                        ok = conn.execute(
                            sa.select(S.plates.c.name).where(S.plates.c.name == name)
                        ).scalar()
                    if ok is None:
                        raise NotFound(f"{self.root}: no plate named {name!r}")
                    out.append(("plate", name))
                elif kind == "dataset":
                    out.append(("dataset", name))
                else:
                    out.append(("image", self.image(name).id))
            else:
                out.append(("image", self.image(t).id))
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ sidecars
    def apply_sidecar(
        self, sidecar: Any, *, all_images: bool = False, images: Sequence[Image] | None = None
    ) -> SidecarReport:
        """Apply a sidecar (a path or a parsed :class:`~quantscope.metadata.Sidecar`).

        It applies to the images whose source files lie in the sidecar's folder (or below),
        or, with ``all_images``, to every image in the repository. Values this sidecar wrote
        before on those images are replaced, so applying a corrected sidecar again updates
        them.

        Raises
        ------
        InvalidInput
            The sidecar is invalid (every problem named with file, line and field).
        """
        from ..metadata import Sidecar, load_sidecar

        sc: Sidecar = sidecar if isinstance(sidecar, Sidecar) else load_sidecar(sidecar)
        if images is None:
            images = self.images() if all_images else self._images_under(sc.base)
        anns, notes = sc.annotations_for(images, all_in_scope=all_images)
        report = SidecarReport(str(sc.path), notes=notes)
        scope = sorted({a.target_id for a in anns})
        a = S.annotations
        with self.engine.begin() as conn:
            for chunk in _chunks(scope):
                conn.execute(
                    a.delete().where(
                        a.c.target_kind == "image",
                        a.c.target_id.in_(list(chunk)),
                        a.c.source == sc.source,
                    )
                )
            report.annotations = self._write(conn, anns)
        report.images = len(scope)
        return report

    def _images_under(self, folder: Path) -> list[Image]:
        """Images with a source file in ``folder`` or below."""
        base = os.path.abspath(folder).rstrip(os.sep) + os.sep
        like = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = (
            sa.select(S.image_sources.c.image_id)
            .join(S.source_files, S.source_files.c.id == S.image_sources.c.file_id)
            .where(S.source_files.c.path.like(like, escape="\\"))
            .distinct()
        )
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        return self.images(ids) if ids else []

    def apply_sidecars(self, paths: Sequence[str | os.PathLike[str]]) -> list[SidecarOutcome]:
        """Find the sidecars in (and beside) ``paths`` and apply each (see
        :meth:`apply_sidecar`); never raises for a bad sidecar: its problem is returned as an
        error outcome, notes (entries that matched no image) as notes. Used by ingest."""
        from ..metadata import find_sidecars

        out: list[SidecarOutcome] = []
        for path in find_sidecars(paths):
            try:
                rep = self.apply_sidecar(path)
            except QuantscopeError as e:
                msg = str(e)
                prefix = f"{path.absolute()}: "
                out.append(
                    SidecarOutcome(
                        str(path), msg[len(prefix) :] if msg.startswith(prefix) else msg, True
                    )
                )
                continue
            out += [SidecarOutcome(str(path), n) for n in rep.notes]
            out.append(
                SidecarOutcome(
                    str(path),
                    f"sidecar applied: {rep.annotations} annotation(s) on {rep.images} image(s)",
                )
            )
        return out


def _annotation(r: Any) -> Annotation:
    return Annotation(
        target_kind=r["target_kind"],
        target_id=r["target_id"],
        key=r["key"],
        value=r["value"],
        num_value=r["num_value"],
        unit=r["unit"],
        curie=r["curie"],
        source=r["source"],
    )
