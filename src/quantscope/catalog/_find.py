"""The query language: ``find`` and the catalog's queryable fields.

See :mod:`quantscope.catalog._query` for the grammar and the README ("Finding images") for the
language; in short::

    channel.name == "DAPI" and objective.na >= 1.3 and well in ("A01", "B02")
        and tag == "control" and acquired >= 2024-01-01 and not qc.status == "fail"

Annotations on a plate apply to its images, those on a dataset to its members (images with
the annotation ``dataset = NAME``, see :mod:`quantscope.catalog._annotations`).

:class:`QueryMethods` is the ``query`` part of a :class:`~quantscope.catalog.Repository`
(``repo.query.find``, ``repo.query.find_ids``, ``repo.query.fields``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import InvalidInput
from . import _schema as S
from ._annotations import DATASET_KEY
from ._part import Part

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement

__all__ = ["DEFAULT_COLUMNS", "QueryMethods"]

DEFAULT_COLUMNS = (
    "id",
    "name",
    "plate",
    "well",
    "field",
    "channels",
    "size.t",
    "size.c",
    "size.z",
    "size.y",
    "size.x",
    "dtype",
    "pixel.size_x_um",
    "pixel.size_y_um",
    "pixel.size_z_um",
    "objective.na",
    "acquired",
)
_CHUNK = 900  # ids per IN (...) when fetching per-image lists


def _where(conn: Connection, query: str) -> ColumnElement[bool] | None:
    from ._query import Compiler, parse

    tree = parse(query)
    if tree is None:
        return None
    return Compiler(conn, query).compile(tree)


def _ordered(sel: Any) -> Any:
    i, p = S.images.c, S.plates.c
    # plates first (by name and position), then images without a plate, on every backend
    return sel.order_by(
        p.name.is_(None), p.name, i.plate_row, i.plate_column, i.field, i.name, i.id
    )


def _check_limit(limit: int | None) -> int | None:
    """``limit`` as an int, or None (no limit); a negative or non-integer limit is refused."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidInput(f"limit: expected a whole number >= 0 (or None for all), got {limit!r}")
    return limit


class QueryMethods(Part):
    """``repo.query``: images selected by the query language, and its fields."""

    def find_ids(self, query: str, *, limit: int | None = None) -> list[str]:
        """Ids of the images matching ``query``: those on plates by plate name and position,
        then the others by name.

        An empty query matches every image. Other areas (QC ``--where``, pipeline ``--where``)
        use this to select images.

        Raises
        ------
        InvalidInput
            The query has a syntax error (the message shows where, with a caret), names an
            unknown field (with the nearest known ones) or compares a field with a value of
            the wrong type.
        """
        limit = _check_limit(limit)
        i, p = S.images, S.plates
        with self.engine.connect() as conn:
            where = _where(conn, query)
            sel = sa.select(i.c.id).select_from(i.outerjoin(p, p.c.id == i.c.plate_id))
            if where is not None:
                sel = sel.where(where)
            sel = _ordered(sel)
            if limit is not None:
                sel = sel.limit(int(limit))
            return list(conn.execute(sel).scalars())

    def page(
        self,
        query: str,
        *,
        limit: int,
        offset: int = 0,
        only: ColumnElement[bool] | None = None,
    ) -> tuple[list[str], int]:
        """One page of the ids matching ``query`` (in :meth:`find_ids` order) and the number
        of matches in all.

        ``only`` narrows the images further (an SQL condition on ``images.id``, e.g. what a
        caller may see, from ``repo.access``): neither the page nor the total counts what it
        leaves out.

        Raises
        ------
        InvalidInput
            As :meth:`find_ids`, or a negative ``limit`` or ``offset``.
        """
        lim = _check_limit(limit)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset: expected a whole number >= 0, got {offset!r}")
        i, p = S.images, S.plates
        with self.engine.connect() as conn:
            where = _where(conn, query)
            conds = [c for c in (where, only) if c is not None]
            frm = i.outerjoin(p, p.c.id == i.c.plate_id)
            count = sa.select(sa.func.count()).select_from(frm)
            sel = sa.select(i.c.id).select_from(frm)
            if conds:
                count = count.where(*conds)
                sel = sel.where(*conds)
            total = int(conn.execute(count).scalar_one())
            ids = list(conn.execute(_ordered(sel).limit(lim).offset(offset)).scalars())
            return ids, total

    def find(
        self,
        query: str,
        columns: Sequence[str] | None = None,
        *,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The images matching ``query``, one row per image, as a pandas DataFrame.

        Parameters
        ----------
        query
            A query in quantscope's query language (see the README, "Finding images"), e.g.
            ``'channel.name == "DAPI" and objective.na >= 1.3 and tag == "control"'``. An
            empty query matches every image.
        columns
            Field names to return (see :meth:`fields`); by default :data:`DEFAULT_COLUMNS`.
            Besides the image fields: ``channels`` (channel names, comma-separated),
            ``channel.<column>`` (one value per channel, comma-separated), ``tag``,
            ``dataset`` and any annotation key (values comma-separated; those of the
            image's plate and datasets included), ``qc.status``, and
            ``qc.<metric>[<channel>]`` (a per-channel quality metric needs its channel).
        limit
            At most this many rows.

        Returns
        -------
        pandas.DataFrame
            Columns named as the fields; date-times are UTC.
        """
        import pandas as pd

        from ._query import Compiler, FieldInfo, parse, static_fields

        limit = _check_limit(limit)
        cols = list(DEFAULT_COLUMNS if columns is None else columns)
        if not cols:
            raise InvalidInput("find: columns is empty; name at least one field")
        i, p = S.images, S.plates
        with self.engine.connect() as conn:
            where = _where(conn, query)
            resolver = Compiler(conn, ",".join(cols))
            infos: dict[str, FieldInfo | None] = {}
            static, aliases = static_fields()
            for c in cols:
                if c == "channels":
                    infos[c] = None
                    continue
                known = static.get(aliases.get(c, c))
                if known is not None:  # a schema field: no need to parse the name
                    infos[c] = known
                    continue
                try:
                    tree = parse(f"exists {c}")
                except InvalidInput as e:
                    raise InvalidInput(f"find: {c!r} is not a field name ({e})") from None
                assert tree is not None
                f = tree.field  # type: ignore[union-attr]
                try:
                    infos[c] = resolver.resolve(f)
                except InvalidInput as e:
                    raise InvalidInput(
                        f"find: column {c!r}: "
                        + str(e).splitlines()[0].removeprefix("invalid query: ")
                    ) from None
                if infos[c].kind == "qc" and f.qualifier is None:  # type: ignore[union-attr]
                    raise InvalidInput(
                        f"find: column {c!r} has one value per channel; name the channel, "
                        f"e.g. {c}[DAPI] or {c}[0]"
                    )
            base = [
                i.c.id.label("__id"),
                *[
                    (i.c[str(info.column)] if info.kind == "image" else p.c.name).label(c)
                    for c, info in infos.items()
                    if info is not None and info.kind in ("image", "plate")
                ],
            ]
            sel = sa.select(*base).select_from(i.outerjoin(p, p.c.id == i.c.plate_id))
            if where is not None:
                sel = sel.where(where)
            sel = _ordered(sel)
            if limit is not None:
                sel = sel.limit(int(limit))
            df = pd.DataFrame(conn.execute(sel).all(), columns=[b.name for b in base])
            ids = df["__id"].tolist()
            for c, info in infos.items():
                if info is not None and info.kind in ("image", "plate"):
                    continue
                df[c] = self._per_image(conn, ids, c, info)
        out = df[cols].copy() if cols else df
        for c, info in infos.items():
            if info is not None and info.type == "datetime" and c in out:
                out[c] = pd.to_datetime(out[c], utc=True)
        return out.reset_index(drop=True)

    @staticmethod
    def _per_image(conn: Connection, ids: list[str], column: str, info: Any) -> list[Any]:
        """Values of a multi-valued or related field for each image id (in order)."""
        from ._query import parse

        ch, a, p, qs, qm = (
            S.channels,
            S.annotations,
            S.plates,
            S.quality_status,
            S.quality_metrics,
        )
        found: dict[str, list[Any]] = {}
        scalar = False
        for k in range(0, len(ids), _CHUNK):
            part = ids[k : k + _CHUNK]
            if info is None or info.kind == "channel":
                col = ch.c.name if info is None else ch.c[info.column]
                q = (
                    sa.select(ch.c.image_id, col)
                    .where(ch.c.image_id.in_(part))
                    .order_by(ch.c.image_id, ch.c.idx)
                )
            elif info.kind == "source":
                src, sf = S.image_sources, S.source_files
                q = (
                    sa.select(src.c.image_id, sf.c[info.column])
                    .join(sf, sf.c.id == src.c.file_id)
                    .where(src.c.image_id.in_(part))
                    .order_by(src.c.image_id, src.c.channel_offset)
                )
            elif info.kind in ("qc_flag", "qc_flags"):
                qf = S.qc_flags
                q = (
                    sa.select(qf.c.image_id, qf.c[info.column])
                    .where(qf.c.image_id.in_(part))
                    .order_by(qf.c.image_id, qf.c.seq)
                )
            elif info.kind == "qc_status":
                scalar = True
                q = sa.select(qs.c.image_id, qs.c[info.column]).where(qs.c.image_id.in_(part))
            elif info.kind == "qc":
                scalar = True
                qual = parse(f"exists {column}").field.qualifier  # type: ignore[union-attr]
                q = sa.select(qm.c.image_id, qm.c.value).where(
                    qm.c.image_id.in_(part), qm.c.name == info.key
                )
                if isinstance(qual, int):
                    q = q.where(qm.c.channel == qual)
                else:
                    q = q.join(
                        ch, sa.and_(ch.c.image_id == qm.c.image_id, ch.c.idx == qm.c.channel)
                    ).where(ch.c.name == qual)
            else:  # annotation: on the image, on its plate, on its datasets
                i = S.images
                m = a.alias("membership")
                q = sa.union_all(  # type: ignore[assignment]
                    sa.select(a.c.target_id.label("image_id"), a.c.value).where(
                        a.c.target_kind == "image", a.c.key == info.key, a.c.target_id.in_(part)
                    ),
                    sa.select(i.c.id, a.c.value)
                    .join(p, p.c.id == i.c.plate_id)
                    .join(a, sa.and_(a.c.target_id == p.c.name, a.c.target_kind == "plate"))
                    .where(a.c.key == info.key, i.c.id.in_(part)),
                    sa.select(m.c.target_id, a.c.value)
                    .join(a, sa.and_(a.c.target_id == m.c.value, a.c.target_kind == "dataset"))
                    .where(
                        m.c.target_kind == "image",
                        m.c.key == DATASET_KEY,
                        m.c.target_id.in_(part),
                        a.c.key == info.key,
                    ),
                )
            for image_id, value in conn.execute(q):
                found.setdefault(image_id, []).append(value)
        if scalar:
            return [found.get(x, [None])[0] for x in ids]
        if info is not None and info.kind == "annotation":  # no inherent order: sort
            found = {k: sorted(v, key=str) for k, v in found.items()}
        return [
            ", ".join(str(v) for v in dict.fromkeys(found[x]) if v is not None)
            if x in found
            else None
            for x in ids
        ]

    def fields(self, *, examples: int = 3) -> list[dict[str, Any]]:
        """Every queryable field: name, kind, type, unit, description and example values.

        ``kind`` is where the field lives: ``image``, ``plate``, ``channel`` (matches when one
        of the image's channels does), ``source`` (one of its source files), ``qc`` (a quality
        metric per channel), ``qc_status``, ``qc_flag`` (one of its QC flag records),
        ``qc_flags`` (the rules of its flags, each predicate on its own) or ``annotation`` (a
        key-value annotation; every key present in the catalog is listed). Examples are up to
        ``examples`` distinct values found in the catalog (an empty list where the field has no
        value yet).
        """
        from ._query import FieldInfo, distinct_values, static_fields

        static, aliases = static_fields()
        by_name = {v: k for k, v in aliases.items()}
        a, qm = S.annotations, S.quality_metrics
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            infos = list(static.values())
            for key in distinct_values(conn, a.c.key):
                if key not in static:
                    infos.append(FieldInfo(key, "annotation", "text", "value", key=key))
            for metric in distinct_values(conn, qm.c.name):
                infos.append(FieldInfo(f"qc.{metric}", "qc", "number", "value", key=metric))
            for info in infos:
                typ, values = info.type, self._examples(conn, info, examples)
                if info.kind == "annotation":
                    nums = conn.execute(
                        sa.select(sa.func.count()).select_from(
                            sa.select(a.c.id)
                            .where(a.c.key == info.key, a.c.num_value.is_not(None))
                            .limit(1)
                            .subquery()
                        )
                    ).scalar()
                    typ = "number" if nums else "text"
                    if info.kind == "annotation" and info.key != "tag":
                        unit = conn.execute(
                            sa.select(a.c.unit)
                            .where(a.c.key == info.key, a.c.unit.is_not(None))
                            .limit(1)
                        ).scalar()
                    else:
                        unit = None
                else:
                    unit = info.unit
                out.append(
                    {
                        "name": info.name,
                        "kind": info.kind,
                        "type": typ,
                        "unit": unit,
                        "description": info.description
                        or (
                            f"quality metric {info.key} (per channel; qualify with [channel])"
                            if info.kind == "qc"
                            else f"annotation {info.key!r}"
                        ),
                        "aliases": [by_name[info.name]] if info.name in by_name else [],
                        "examples": values,
                    }
                )
        return out

    @staticmethod
    def _examples(conn: Connection, info: Any, n: int) -> list[Any]:
        if n <= 0:
            return []
        i, p, ch, a = S.images, S.plates, S.channels, S.annotations
        if info.kind == "image":
            col = i.c[info.column]
        elif info.kind == "plate":
            col = p.c.name
        elif info.kind in ("channel", "channels"):
            col = ch.c[info.column]
        elif info.kind == "source":
            col = S.source_files.c[info.column]
        elif info.kind == "qc_status":
            col = S.quality_status.c[info.column]
        elif info.kind in ("qc_flag", "qc_flags"):
            col = S.qc_flags.c[info.column]
        elif info.kind == "qc":
            qm = S.quality_metrics
            row = conn.execute(
                sa.select(sa.func.min(qm.c.value), sa.func.max(qm.c.value)).where(
                    qm.c.name == info.key
                )
            ).one()
            return [v for v in row if v is not None]
        else:
            q = (
                sa.select(a.c.value)
                .where(a.c.key == info.key, a.c.value.is_not(None))
                .distinct()
                .order_by(a.c.value)
                .limit(n)
            )
            return [_jsonable(v) for v in conn.execute(q).scalars()]
        # a bounded sample: distinct values among the first rows (cheap on a large catalog)
        sample = sa.select(col.label("v")).where(col.is_not(None)).limit(5000).subquery()
        q = sa.select(sample.c.v).distinct().order_by(sample.c.v).limit(n)
        return [_jsonable(v) for v in conn.execute(q).scalars()]


def _jsonable(v: Any) -> Any:
    from datetime import date

    return v.isoformat() if isinstance(v, date) else v
