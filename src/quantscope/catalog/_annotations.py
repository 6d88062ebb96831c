"""Annotations (key-value pairs, tags, ontology terms) on images, plates and datasets.

Rows live in the ``annotations`` table: ``target_kind`` (image | plate | dataset),
``target_id`` (image id, plate name, dataset name), ``key`` (``"tag"`` for tags, otherwise a
dotted key such as ``biosample.organism``; see :mod:`quantscope.metadata`), ``value`` (text;
the label of an ontology term), ``num_value`` (the number, in ``unit``, of a quantity),
``curie`` (the ontology term, e.g. ``NCBITaxon:9606``), ``source`` (``user`` or
``sidecar:<file>``) and ``created_at``.

A key that holds one value (``biosample.organism``) is *set*: writing it replaces the target's
previous value. A multi-valued key (``tag``, ``study.authors``) *accumulates* distinct values.

Datasets (as in OMERO: a named set of images, possibly from several plates) are annotations too.
An image belongs to dataset NAME when it carries the annotation ``key = "dataset"``, ``value =
NAME`` (target_kind ``image``); an image may belong to several datasets. Annotations on
``dataset:NAME`` (target_kind ``dataset``, target_id NAME) apply to every member image, as plate
annotations apply to the plate's images: in queries (``study.title == "..."``, ``tag == "x"``), in
exports and in completeness checks (:meth:`AnnotationRecords.effective`). The key
``dataset`` is only valid on images. A dataset exists while it has a member or an annotation.

:class:`AnnotationRecords` is the ``annotations`` part of a
:class:`~quantscope.catalog.Repository` (``repo.annotations``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._text import plural
from ..errors import InvalidInput, NotFound, QuantscopeError
from ..model import TAG_KEY, Annotation, Image, TargetKind
from . import _schema as S
from ._part import Part

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["DATASET_KEY", "AnnotationRecords", "DatasetInfo", "SidecarOutcome", "SidecarReport"]

_CHUNK = 500  # rows per IN (...) list
DATASET_KEY = "dataset"  # membership: annotation (image, "dataset", NAME)
_NAME_MAX = 255  # annotations.target_id / value length


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: its name, how many images belong to it, and its own annotations."""

    name: str
    images: int
    annotations: list[Annotation] = field(default_factory=list)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; what ``quantscope metadata annotate --json`` prints."""
        return {
            "sidecar": self.path,
            "images": self.images,
            "annotations": self.annotations,
            "notes": self.notes,
        }


def _multi(key: str) -> bool:
    from ..metadata import key_spec

    spec = key_spec(key)
    return key in (TAG_KEY, DATASET_KEY) or (spec is not None and spec.multi)


def _dataset_name(name: str) -> str:
    clean = name.strip() if isinstance(name, str) else ""
    if not clean:
        raise InvalidInput("a dataset needs a name (e.g. screen-7); got an empty one")
    if len(clean) > _NAME_MAX:
        raise InvalidInput(
            f"dataset name {clean[:40]!r}... is {len(clean)} characters long; at most {_NAME_MAX}"
        )
    return clean


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class AnnotationRecords(Part):
    """``repo.annotations``: annotations, tags, datasets and sidecars."""

    # ------------------------------------------------------------------ writes
    def add(self, annotations: Iterable[Annotation]) -> int:
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
        for ann in anns:
            if ann.key == DATASET_KEY and ann.target_kind != "image":
                raise InvalidInput(
                    f"{ann.target_kind}:{ann.target_id}: the key 'dataset' (membership) goes on "
                    "images only; add the images instead: quantscope dataset add REPO NAME "
                    "--where 'plate == \"...\"'"
                )
            if ann.key == DATASET_KEY:
                _dataset_name(ann.value or "")
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

    def set(
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
        return self.add(anns)

    def tag(self, targets: Sequence[str], tags: Sequence[str], *, source: str = "user") -> int:
        """Add ``tags`` to ``targets`` (image ids or prefixes, ``plate:NAME``,
        ``dataset:NAME``); returns the number of tags added (existing ones are kept)."""
        clean = [t.strip() for t in tags if t.strip()]
        if not clean:
            raise InvalidInput("no tag given")
        resolved = self.resolve_targets(targets)
        return self.add(
            Annotation(target_kind=k, target_id=i, key=TAG_KEY, value=t, source=source)
            for k, i in resolved
            for t in clean
        )

    def untag(self, targets: Sequence[str], tags: Sequence[str]) -> int:
        """Remove ``tags`` from ``targets``; returns the number of tags removed."""
        return sum(self.remove(targets, TAG_KEY, value=t.strip()) for t in tags if t.strip())

    def remove(
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
    def all(
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

    def of_images(self, image_ids: Sequence[str]) -> dict[str, list[Annotation]]:
        """{image id: its annotations} for ``image_ids`` (images without any are left out)."""
        out: dict[str, list[Annotation]] = {}
        for ann in self.all("image", image_ids):
            out.setdefault(ann.target_id, []).append(ann)
        return out

    def tags(self, target: str) -> list[str]:
        """Tags of one target (image id or prefix, ``plate:NAME``, ``dataset:NAME``)."""
        [(kind, tid)] = self.resolve_targets([target])
        return [a.value or "" for a in self.all(kind, [tid], TAG_KEY)]

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
                    out.append(("image", self._repo.images.get(name).id))
            else:
                out.append(("image", self._repo.images.get(t).id))
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ datasets
    def _image_ids(self, conn: Connection, ids: Sequence[str], where: str | None) -> list[str]:
        """Image ids of ``ids`` (exact ids or unique prefixes) and of the images matching
        ``where``; every unknown id is named in one :class:`NotFound`."""
        wanted = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
        found: set[str] = set()
        i = S.images.c
        for chunk in _chunks(wanted):
            found.update(conn.execute(sa.select(i.id).where(i.id.in_(list(chunk)))).scalars())
        out: list[str] = []
        missing: list[str] = []
        for w in wanted:
            if w in found:
                out.append(w)
                continue
            try:
                out.append(self._repo.images.get(w).id)  # a unique prefix
            except NotFound:
                missing.append(w)
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise NotFound(
                f"{self.root}: no image {', '.join(map(repr, missing[:3]))}{more}; nothing "
                "was changed (see `quantscope ls` or `quantscope find`)"
            )
        if where is not None:
            out += self._repo.query.find_ids(where)
        return list(dict.fromkeys(out))

    def add_to_dataset(
        self,
        name: str,
        ids: Sequence[str] = (),
        *,
        where: str | None = None,
        source: str = "user",
    ) -> int:
        """Put images into dataset ``name`` (created by its first member); returns the number
        of images added (those already in it are kept).

        Parameters
        ----------
        name
            Dataset name.
        ids
            Image ids (or unique prefixes).
        where
            A query (see ``repo.query.find``): its matching images are added too.
        source
            Recorded as the annotation's source.

        Raises
        ------
        NotFound
            An image id that is not in the catalog (nothing is changed).
        InvalidInput
            No image given, an empty name, or an invalid query.
        """
        name = _dataset_name(name)
        if not ids and where is None:
            raise InvalidInput(
                f"dataset {name!r}: no image given (image ids, or a query with --where)"
            )
        with self.engine.begin() as conn:
            image_ids = self._image_ids(conn, ids, where)
            return self._write(
                conn,
                [
                    Annotation(
                        target_kind="image",
                        target_id=i,
                        key=DATASET_KEY,
                        value=name,
                        source=source,
                    )
                    for i in image_ids
                ],
            )

    def remove_from_dataset(
        self,
        name: str,
        ids: Sequence[str] = (),
        *,
        where: str | None = None,
        everything: bool = False,
    ) -> int:
        """Take images out of dataset ``name``; returns the number of images removed.

        With ``everything``, every member is removed and so are the dataset's own annotations
        (the dataset is gone).

        Raises
        ------
        NotFound
            No dataset ``name``, or an image id that is not in the catalog (nothing changed).
        InvalidInput
            No image given (and not ``everything``).
        """
        name = _dataset_name(name)
        a = S.annotations
        member = sa.and_(a.c.target_kind == "image", a.c.key == DATASET_KEY, a.c.value == name)
        own = sa.and_(a.c.target_kind == "dataset", a.c.target_id == name)
        if not ids and where is None and not everything:
            raise InvalidInput(
                f"dataset {name!r}: no image given (image ids, --where QUERY, or --all)"
            )
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(a.c.id).where(sa.or_(member, own)).limit(1)).first()
            if exists is None:
                known = [d.name for d in self.datasets()]
                import difflib

                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise NotFound(
                    f"{self.root}: no dataset named {name!r}{hint} (see `quantscope dataset ls`)"
                )
            if everything:
                n = conn.execute(a.delete().where(member)).rowcount or 0
                conn.execute(a.delete().where(own))
                return n
            image_ids = self._image_ids(conn, ids, where)
            n = 0
            for chunk in _chunks(image_ids):
                n += (
                    conn.execute(a.delete().where(member, a.c.target_id.in_(list(chunk)))).rowcount
                    or 0
                )
            return n

    def datasets(self) -> list[DatasetInfo]:
        """Every dataset (one with members or annotations), by name: its number of images and
        its own annotations."""
        a = S.annotations
        with self.engine.connect() as conn:
            counts: dict[str, int] = {
                str(v): int(n)
                for v, n in conn.execute(
                    sa.select(a.c.value, sa.func.count())
                    .where(a.c.target_kind == "image", a.c.key == DATASET_KEY)
                    .group_by(a.c.value)
                )
            }
        own: dict[str, list[Annotation]] = {}
        for ann in self.all("dataset"):
            own.setdefault(ann.target_id, []).append(ann)
        names = sorted(set(counts) | set(own))
        return [DatasetInfo(n, counts.get(n, 0), own.get(n, [])) for n in names]

    def effective(self, images: Sequence[Image]) -> dict[str, list[Annotation]]:
        """{image id: annotations that apply to it}: its own, its plate's and those of the
        datasets it belongs to (in that order), for every image of ``images``
        (:class:`~quantscope.model.Image` records, e.g. from ``repo.images.all(ids)``)."""
        wrong = [i for i in images if not isinstance(i, Image)]
        if wrong:
            raise InvalidInput(
                f"images: expected Image records (repo.images.all(ids)), got "
                f"{type(wrong[0]).__name__} {wrong[0]!r}"
            )
        own = self.of_images([i.id for i in images])
        plates = sorted({i.position.plate for i in images if i.position is not None})
        plate_anns: dict[str, list[Annotation]] = {}
        for ann in self.all("plate", plates) if plates else []:
            plate_anns.setdefault(ann.target_id, []).append(ann)
        names = sorted(
            {a.value for anns in own.values() for a in anns if a.key == DATASET_KEY and a.value}
        )
        ds_anns: dict[str, list[Annotation]] = {}
        for ann in self.all("dataset", names) if names else []:
            ds_anns.setdefault(ann.target_id, []).append(ann)
        out: dict[str, list[Annotation]] = {}
        for img in images:
            mine = own.get(img.id, [])
            anns = list(mine)
            if img.position is not None:
                anns += plate_anns.get(img.position.plate, [])
            for a in mine:
                if a.key == DATASET_KEY and a.value:
                    anns += ds_anns.get(a.value, [])
            out[img.id] = anns
        return out

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
            images = self._repo.images.all() if all_images else self._images_under(sc.base)
        anns, notes = sc.annotations_for(images, all_in_scope=all_images)
        for ann in anns:
            if ann.key == DATASET_KEY:
                try:
                    _dataset_name(ann.value or "")
                except InvalidInput as e:
                    raise InvalidInput(f"{sc.path}: dataset: {e}") from None
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
        return self._repo.images.all(ids) if ids else []

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
                    f"sidecar applied: {plural(rep.annotations, 'annotation')} on "
                    f"{plural(rep.images, 'image')}",
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
