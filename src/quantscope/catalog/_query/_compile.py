"""Compile a query tree into an SQLAlchemy Core boolean expression over ``images``.

Every literal becomes a bound parameter; nothing of the query text is pasted into SQL.

Semantics (also in the README):

* A comparison on a missing value (NULL) is false, so ``objective.na != 1.4`` leaves out images
  without a recorded NA, while ``not objective.na == 1.4`` keeps them: ``not`` is the complement
  at the image level.
* Multi-valued fields (channels, source files, per-channel quality metrics, annotations) match
  when one of the image's rows matches. Channel predicates (``channel.*`` and ``qc.<metric>``
  without a ``[channel]`` qualifier) combined with ``and``/``or`` (no ``not`` in between) are
  evaluated on ONE channel: ``channel.name == "DAPI" and channel.exposure_time_s > 0.1`` needs a
  DAPI channel exposed longer than 0.1 s, and ``channel.name == "DAPI" and qc.focus_plls <
  -2.5`` tests the DAPI channel's focus. The same holds for ``source.*`` predicates (one file).
  ``not channel.name == "DAPI"`` means "no DAPI channel"; ``channel.name != "DAPI"`` means "a
  channel other than DAPI". QC flag predicates (``qc.flag``, ``qc.flag.*``) likewise describe
  one flag: ``qc.flag == "saturation" and qc.flag.level == "fail"``; ``qc.flags`` (like
  ``channels``) tests each predicate on its own.
* Annotations apply to the image, to every image of an annotated plate and to every member of
  an annotated dataset (membership is the image annotation ``dataset = NAME``). A number literal
  compares the annotation's numeric value, a string its text (or its CURIE, for ``==``).
* A date literal compared with a date-time field means the whole day (UTC): ``acquired ==
  2024-01-01`` is that day, ``acquired <= 2024-01-01`` includes it.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ...errors import InvalidInput
from ...model import parse_well, well_name
from .. import _schema as S
from .._annotations import DATASET_KEY
from ._ast import (
    And,
    Compare,
    Exists,
    Field,
    In,
    Like,
    Node,
    Not,
    Or,
    Value,
    to_text,
    value_text,
)
from ._fields import FieldInfo, static_fields, vocabulary
from ._parser import caret

__all__ = ["Compiler", "distinct_values"]

Expr = ColumnElement[bool]
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:[^\s:]+$|^CVCL_[0-9A-Z]{4}$")
_INT64 = 2**63 - 1
_SCOPED = {"channel": "channel", "source": "source", "qc_flag": "flag"}


def distinct_values(conn: Connection, column: Any, limit: int = 10_000) -> list[Any]:
    """Distinct non-NULL values of an indexed column, by a loose index scan (a recursive CTE
    that jumps from one value to the next: fast on a large table with few distinct values)."""
    table = column.table
    first = sa.select(sa.func.min(column).label("v"))
    cte = first.cte("qs_distinct", recursive=True)
    inner = sa.select(sa.func.min(column)).where(column > cte.c.v).scalar_subquery()
    cte = cte.union_all(sa.select(inner).select_from(cte).where(cte.c.v.is_not(None)))
    del table
    q = sa.select(cte.c.v).where(cte.c.v.is_not(None)).limit(limit)
    return [v for (v,) in conn.execute(q)]


class Compiler:
    """Resolves the fields of one query against a catalog connection and compiles it."""

    def __init__(self, conn: Connection, query: str) -> None:
        self.conn = conn
        self.query = query
        self.fields, self.aliases = static_fields()
        self._resolved: dict[Field, FieldInfo] = {}
        self.dialect = conn.dialect.name
        self._kinds: dict[str, tuple[bool, bool, bool]] = {}

    # ------------------------------------------------------------------ errors
    def error(self, msg: str, pos: int) -> InvalidInput:
        return InvalidInput(f"invalid query: {msg}\n{caret(self.query, pos)}")

    # ------------------------------------------------------------------ fields
    def resolve(self, f: Field) -> FieldInfo:
        if f in self._resolved:
            return self._resolved[f]
        info = self._resolve(f)
        if f.qualifier is not None and info.kind != "qc":
            raise self.error(
                f"field {f.name!r} takes no [qualifier]; only quality metrics do, as in "
                "qc.focus_plls[DAPI] (a channel name) or qc.focus_plls[0] (a channel index)",
                f.pos,
            )
        if f.qualifier is not None:
            self._check_channel(f)
        self._resolved[f] = info
        return info

    def _check_channel(self, f: Field) -> None:
        """A channel qualifier names a channel that some image has: ``qc.focus_plls[DAPI]``
        where no image has DAPI is a mistake to report, not an empty result."""
        q = f.qualifier
        if isinstance(q, int):
            qm = S.quality_metrics
            hit = sa.select(qm.c.channel).where(qm.c.channel == q).limit(1)
            if self.conn.execute(hit).first() is None:
                raise self.error(f"no image has a measured channel {q} (0-based index)", f.pos)
            return
        ch = S.channels
        if self.conn.execute(sa.select(ch.c.name).where(ch.c.name == q).limit(1)).first():
            return
        known = [str(n) for n in distinct_values(self.conn, ch.c.name)]
        listed = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
        raise self.error(
            f"no image has a channel named {q!r}{self._suggest(str(q), known)} "
            f"(channels: {listed or 'none'})",
            f.pos,
        )

    def _resolve(self, f: Field) -> FieldInfo:
        name = f.name
        name = self.aliases.get(name, name)
        if name in self.fields:
            return self.fields[name]
        head, rest = f.path[0], ".".join(f.path[1:])
        if head == "annotation" and rest:
            return FieldInfo(name, "annotation", "text", "value", key=rest)
        if head == "qc" and rest:
            qm = S.quality_metrics
            found = self.conn.execute(sa.select(qm.c.name).where(qm.c.name == rest).limit(1))
            if found.first() is not None:
                return FieldInfo(name, "qc", "number", "value", key=rest)
            known = [f"qc.{m}" for m in distinct_values(self.conn, qm.c.name)]
            hint = (
                "; no quality metrics are recorded yet (run `quantscope qc REPO`)"
                if not known
                else ""
            )
            raise self.error(
                f"unknown quality metric {name!r}{self._suggest(name, known)}{hint}", f.pos
            )
        a = S.annotations
        found = self.conn.execute(sa.select(a.c.key).where(a.c.key == name).limit(1))
        if found.first() is not None:
            return FieldInfo(name, "annotation", "text", "value", key=name)
        known = list(self.fields)
        known += [str(k) for k in distinct_values(self.conn, a.c.key)]
        known += [f"qc.{m}" for m in distinct_values(self.conn, S.quality_metrics.c.name)]
        raise self.error(
            f"unknown field {name!r}{self._suggest(name, known)} "
            "(`quantscope fields REPO` lists every field)",
            f.pos,
        )

    @staticmethod
    def _suggest(name: str, known: Sequence[str]) -> str:
        close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=3, cutoff=0.6)
        if not close:
            lower = {k.lower(): k for k in known}
            close = [lower[name.lower()]] if name.lower() in lower else []
        if not close:
            return ""
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"

    # ------------------------------------------------------------------ structure
    def scope(self, node: Node) -> str | None:
        """ "channel", "source" or "flag" where every leaf of ``node`` is a predicate on one row of
        that relation (joined by and/or, no not), else None."""
        if isinstance(node, Not):
            return None
        if isinstance(node, And | Or):
            scopes = {self.scope(n) for n in node.items}
            return scopes.pop() if len(scopes) == 1 else None
        assert not isinstance(node, Not)
        info = self.resolve(node.field)
        if info.kind == "qc" and node.field.qualifier is None:
            return "channel"
        return _SCOPED.get(info.kind)

    def compile(self, node: Node) -> Expr:
        """A boolean expression over ``images``.

        Leaves may be NULL where a value is missing (SQL's three-valued logic); that only
        matters under ``not``, which compiles to ``NOT coalesce(x, false)``: the complement at
        the image level. (No guards on the leaves, so the planner keeps its indexes.)
        """
        if isinstance(node, Not):
            return sa.not_(sa.func.coalesce(self.compile(node.item), sa.false()))
        scope = self.scope(node)
        if scope is not None:
            return self._group(scope, [node])
        if isinstance(node, Or):
            return sa.or_(*(self.compile(n) for n in node.items))
        if isinstance(node, And):
            conjuncts = _flatten(node)
            anchored = self._anchored
            if any(self._is_anchor(n) for n in conjuncts):
                self._anchored = True
            try:
                groups: dict[str, list[Node]] = {}
                parts: list[Expr] = []
                for n in conjuncts:
                    s = self.scope(n)
                    if s is None:
                        parts.append(self.compile(n))
                    else:
                        groups.setdefault(s, []).append(n)
                parts += [self._group(s, ns) for s, ns in groups.items()]
            finally:
                self._anchored = anchored
            return sa.and_(*parts)
        return self._leaf(node)

    # ------------------------------------------------------------------ query plans
    _anchored = False

    def _is_anchor(self, node: Node) -> bool:
        """Whether ``node`` narrows the images through an index (== or in on an indexed image
        column, or on the plate): then the rest of the conjunction is tested image by image
        (correlated EXISTS), instead of building the full list of matching related rows."""
        if not isinstance(node, Compare | In) or (isinstance(node, In) and node.negated):
            return False
        if isinstance(node, Compare) and (node.op != "==" or node.value is None):
            return False
        info = self.resolve(node.field)
        return info.kind == "plate" or (info.kind == "image" and info.column in _indexed())

    def _member(self, sel: sa.Select[Any], image_id: Any) -> Expr:
        """The image is among the ``image_id`` values of ``sel``: a correlated EXISTS when the
        conjunction is anchored on an index, else ``id IN (subquery)``."""
        img = S.images.c
        if self._anchored:
            return sa.exists(sel.where(image_id == img.id))
        return img.id.in_(sel)

    # ------------------------------------------------------------------ scoped groups
    def _group(self, scope: str, nodes: list[Node]) -> Expr:
        if scope == "flag":
            return self._flag_group(nodes)
        if scope == "source":
            src, sf = S.image_sources, S.source_files
            sel = (
                sa.select(src.c.image_id)
                .join(sf, sf.c.id == src.c.file_id)
                .where(sa.and_(*(self._row(n, sf, None) for n in nodes)))
            )
            return self._member(sel, src.c.image_id)
        qm = S.quality_metrics
        if len(nodes) == 1 and not isinstance(nodes[0], And | Or):
            leaf = nodes[0]
            assert not isinstance(leaf, Not)
            info = self.resolve(leaf.field)
            if info.kind == "qc":  # a lone metric: no need to go through the channels
                sel = sa.select(qm.c.image_id).where(
                    qm.c.name == info.key, self._pred(qm.c.value, leaf, info)
                )
                return self._member(sel, qm.c.image_id)
        self._check_one_channel(nodes)
        ch = S.channels
        sel = sa.select(ch.c.image_id).where(sa.and_(*(self._row(n, ch, ch) for n in nodes)))
        return self._member(sel, ch.c.image_id)

    def _flag_group(self, nodes: list[Node]) -> Expr:
        """Predicates on one QC flag record of the image (``qc_flags``)."""
        qf = S.qc_flags
        if len(nodes) == 1 and _is_null_test(nodes[0]):  # qc.flag == null: no flags at all
            present = self._member(sa.select(qf.c.image_id), qf.c.image_id)
            return sa.not_(present) if _null_eq(nodes[0]) else present
        self._check_one_channel(nodes, "flag")
        sel = sa.select(qf.c.image_id).where(sa.and_(*(self._row(n, qf, None) for n in nodes)))
        return self._member(sel, qf.c.image_id)

    def _check_one_channel(self, nodes: list[Node], what: str = "channel") -> None:
        """Refuse ``channel.name == "A" and channel.name == "B"``: conjoined channel predicates
        describe one channel, so this can never hold; say how to ask for both channels."""
        seen: dict[Field, Compare] = {}
        flat: list[Node] = []
        for n in nodes:
            flat.extend(_flatten(n) if isinstance(n, And) else [n])
        for n in flat:
            if not (isinstance(n, Compare) and n.op == "==" and n.value is not None):
                continue
            key = Field(n.field.path, n.field.qualifier)
            first = seen.setdefault(key, n)
            if first is not n and first.value != n.value:
                name = self.resolve(n.field).name
                plural = {"channel.name": "channels", "qc.flag": "qc.flags"}.get(name)
                if plural is not None:
                    hint = (
                        f"{plural} == {value_text(first.value)} and {plural} == "
                        f"{value_text(n.value)}"
                    )
                elif what == "flag":
                    hint = "qc.flags == RULE for each rule it needs (each tested on its own)"
                else:
                    hint = "channels == NAME for each channel it needs (each tested on its own)"
                raise self.error(
                    f"{to_text(first)} and {to_text(n)} can never hold on one {what}: {what} "
                    f"predicates joined by `and` describe the same {what}; for images that "
                    f"have both, write {hint}",
                    n.field.pos,
                )

    def _row(self, node: Node, table: sa.Table, channel: sa.Table | None) -> Expr:
        if isinstance(node, And):
            return sa.and_(*(self._row(n, table, channel) for n in node.items))
        if isinstance(node, Or):
            return sa.or_(*(self._row(n, table, channel) for n in node.items))
        assert not isinstance(node, Not)
        info = self.resolve(node.field)
        if info.kind == "qc":
            assert channel is not None
            qm = S.quality_metrics
            return sa.exists(
                sa.select(sa.literal(1)).where(
                    qm.c.image_id == channel.c.image_id,
                    qm.c.channel == channel.c.idx,
                    qm.c.name == info.key,
                    self._pred(qm.c.value, node, info),
                )
            )
        return self._pred(table.c[_col(info)], node, info)

    # ------------------------------------------------------------------ image-level leaves
    def _leaf(self, node: Compare | In | Like | Exists) -> Expr:
        info = self.resolve(node.field)
        img = S.images.c
        if info.kind == "image":
            return self._pred(img[_col(info)], node, info)
        if info.kind == "plate":
            return self._plate(node, info)
        if info.kind == "channels":  # unscoped: any channel, each predicate on its own
            ch = S.channels
            if _is_null_test(node):  # == null: no channels at all
                present = self._member(sa.select(ch.c.image_id), ch.c.image_id)
                return sa.not_(present) if _null_eq(node) else present
            sel = sa.select(ch.c.image_id).where(self._pred(ch.c.name, node, info))
            return self._member(sel, ch.c.image_id)
        if info.kind == "qc_flags":  # unscoped: any flag, each predicate on its own
            qf = S.qc_flags
            if _is_null_test(node):  # == null: no flags at all
                present = self._member(sa.select(qf.c.image_id), qf.c.image_id)
                return sa.not_(present) if _null_eq(node) else present
            sel = sa.select(qf.c.image_id).where(self._pred(qf.c.rule, node, info))
            return self._member(sel, qf.c.image_id)
        if info.kind == "qc_status":
            qs = S.quality_status
            if isinstance(node, Exists) or _is_null_test(node):
                present = self._member(sa.select(qs.c.image_id), qs.c.image_id)
                return sa.not_(present) if _null_eq(node) else present
            sel = sa.select(qs.c.image_id).where(self._pred(qs.c[_col(info)], node, info))
            return self._member(sel, qs.c.image_id)
        if info.kind == "qc":  # qualified: qc.<metric>[channel]
            qm, ch = S.quality_metrics, S.channels
            q = node.field.qualifier
            sel = sa.select(qm.c.image_id).where(
                qm.c.name == info.key, self._pred(qm.c.value, node, info)
            )
            if isinstance(q, int):
                sel = sel.where(qm.c.channel == q)
            else:
                sel = sel.join(
                    ch, sa.and_(ch.c.image_id == qm.c.image_id, ch.c.idx == qm.c.channel)
                ).where(ch.c.name == q)
            return self._member(sel, qm.c.image_id)
        if info.kind == "annotation":
            return self._annotation(node, info)
        raise AssertionError(info.kind)  # pragma: no cover

    def _plate(self, node: Compare | In | Like | Exists, info: FieldInfo) -> Expr:
        p, img = S.plates, S.images.c
        if isinstance(node, Exists) or _is_null_test(node):
            present = img.plate_id.is_not(None)
            return sa.not_(present) if _null_eq(node) else present

        def plate_id(name: Value) -> Any:  # plates.name is unique: a scalar lookup
            return (
                sa.select(p.c.id).where(p.c.name == self._coerce(name, info, 0)).scalar_subquery()
            )

        # == and in(...) as scalar lookups, so the planner uses the plate_id index
        if isinstance(node, Compare) and node.op == "==":
            return img.plate_id == plate_id(node.value)
        if isinstance(node, In) and not node.negated:
            return img.plate_id.in_([plate_id(v) for v in node.values])
        return img.plate_id.in_(sa.select(p.c.id).where(self._pred(p.c.name, node, info)))

    def _annotation(self, node: Compare | In | Like | Exists, info: FieldInfo) -> Expr:
        """Annotations on the image, on its plate (plates.name is the target id) or on a
        dataset it belongs to (membership rows: image annotations ``dataset = NAME``)."""
        a, p = S.annotations, S.plates
        img = S.images.c
        negate = False
        if _is_null_test(node):
            negate = _null_eq(node)
            pred: Expr = sa.true()
        elif isinstance(node, Exists):
            pred = sa.true()
        else:
            pred = self._annotation_value(a, node)
        wanted = sa.and_(a.c.key == info.key, pred)
        on_images, on_plates, on_datasets = self._annotated_kinds(str(info.key))
        m = a.alias("membership")
        member_of = sa.and_(
            m.c.target_kind == "image", m.c.key == DATASET_KEY, a.c.target_id == m.c.value
        )
        parts: list[Expr] = []
        if self._anchored:  # image by image: index probes on annotations.target_id
            if on_images:
                parts.append(
                    sa.exists(
                        sa.select(a.c.id).where(
                            a.c.target_id == img.id, a.c.target_kind == "image", wanted
                        )
                    )
                )
            if on_plates:
                plate_name = (
                    sa.select(p.c.name)
                    .where(p.c.id == img.plate_id)
                    .correlate_except(p)
                    .scalar_subquery()
                )
                parts.append(
                    sa.exists(
                        sa.select(a.c.id).where(
                            a.c.target_id == plate_name, a.c.target_kind == "plate", wanted
                        )
                    )
                )
            if on_datasets:
                parts.append(
                    sa.exists(
                        sa.select(a.c.id).where(
                            m.c.target_id == img.id,
                            member_of,
                            a.c.target_kind == "dataset",
                            wanted,
                        )
                    )
                )
        else:  # lists: ids of annotated images, plates, members of annotated datasets
            if on_images:
                parts.append(
                    img.id.in_(sa.select(a.c.target_id).where(a.c.target_kind == "image", wanted))
                )
            if on_plates:
                parts.append(
                    img.plate_id.in_(
                        sa.select(p.c.id)
                        .join(a, a.c.target_id == p.c.name)
                        .where(a.c.target_kind == "plate", wanted)
                    )
                )
            if on_datasets:  # from the (few) dataset annotations to their members
                # ``m.target_kind || ''``: members through the (key, value) index, not a scan
                # of every image annotation through the unique index led by target_kind
                names = sa.select(a.c.target_id).where(a.c.target_kind == "dataset", wanted)
                parts.append(
                    img.id.in_(
                        sa.select(m.c.target_id).where(
                            m.c.key == DATASET_KEY,
                            m.c.value.in_(names),
                            m.c.target_kind.concat("") == "image",
                        )
                    )
                )
        expr = sa.or_(*parts) if parts else sa.false()
        return sa.not_(expr) if negate else expr

    def _annotated_kinds(self, key: str) -> tuple[bool, bool, bool]:
        """Whether any image, any plate and any dataset carries annotation ``key``: a branch
        that cannot match is left out of the SQL, so the planner is not handed an OR it cannot
        index. The probes are bounded by the number of plates and of dataset annotations
        (index on (key, value), on target_id, and the unique index led by target_kind),
        however many images the catalog holds."""
        if key not in self._kinds:
            a, p = S.annotations, S.plates
            # ``target_kind || ''`` keeps the planner on the (key, value) index: the unique
            # index led by target_kind would scan every image annotation of the catalog
            on_images = self.conn.execute(
                sa.select(sa.literal(1))
                .where(a.c.key == key, a.c.target_kind.concat("") == "image")
                .limit(1)
            ).first()
            on_plates = self.conn.execute(
                sa.select(sa.literal(1))
                .where(
                    sa.exists(
                        sa.select(a.c.id).where(
                            a.c.target_id == p.c.name,
                            a.c.target_kind == "plate",
                            a.c.key == key,
                        )
                    )
                )
                .select_from(p)
                .limit(1)
            ).first()
            # ``key || ''``: the other way round, the unique index led by target_kind scans
            # only dataset annotations, where (key, value) would scan every image's tag
            on_datasets = (
                key != DATASET_KEY
                and self.conn.execute(
                    sa.select(sa.literal(1))
                    .where(a.c.target_kind == "dataset", a.c.key.concat("") == key)
                    .limit(1)
                ).first()
                is not None
            )
            self._kinds[key] = (on_images is not None, on_plates is not None, on_datasets)
        return self._kinds[key]

    def _check_pattern(self, node: Like) -> None:
        trailing = len(node.pattern) - len(node.pattern.rstrip("\\"))
        if trailing % 2:
            raise self.error(
                "a like pattern cannot end with a lone backslash (it escapes the next "
                "character: \\% is a literal %); write \\\\ for a backslash",
                node.value_pos,
            )

    def _annotation_value(self, a: sa.Table, node: Compare | In | Like) -> Expr:
        if isinstance(node, Like):
            self._check_pattern(node)
            return _like(a.c.value, node, self.dialect)
        if isinstance(node, In):
            nums = [_num(v) for v in node.values if _is_number(v)]
            texts = [_text(v) for v in node.values if not _is_number(v) and v is not None]
            parts: list[Expr] = []
            if texts:
                parts.append(a.c.value.in_(texts))
                curies = [t for t in texts if _CURIE.match(t)]
                if curies:
                    parts.append(a.c.curie.in_(curies))
            if nums:
                parts.append(a.c.num_value.in_(nums))
            if not parts:
                raise self.error(
                    "an annotation value list needs strings or numbers", node.value_pos
                )
            expr = sa.or_(*parts)
            return sa.not_(expr) if node.negated else expr
        v, op = node.value, node.op
        if _is_number(v):
            return _OPS[op](a.c.num_value, _num(v))
        text = _text(v)
        expr = _OPS[op](a.c.value, text)
        if op == "==" and _CURIE.match(text):
            expr = sa.or_(expr, a.c.curie == text)
        return expr

    # ------------------------------------------------------------------ one column
    def _pred(self, col: Any, node: Compare | In | Like | Exists, info: FieldInfo) -> Expr:
        if isinstance(node, Exists):
            return col.is_not(None)
        if isinstance(node, Like):
            self._check_pattern(node)
            if info.type != "text":
                raise self.error(
                    f"like compares text, but {info.name!r} is {_article(info.type)}; use "
                    "== < > ... instead",
                    node.value_pos,
                )
            return _like(col, node, self.dialect)
        if isinstance(node, In):
            if any(v is None for v in node.values):
                raise self.error("null cannot be in a list; use `exists FIELD`", node.value_pos)
            if info.type == "datetime":
                ranges = [self._datetime(col, "==", v, info, node.value_pos) for v in node.values]
                expr = sa.or_(*ranges)
                return sa.not_(expr) if node.negated else expr
            vals = [self._coerce(v, info, node.value_pos) for v in node.values]
            return col.not_in(vals) if node.negated else col.in_(vals)
        v, op = node.value, node.op
        if v is None:
            if op == "==":
                return col.is_(None)
            if op == "!=":
                return col.is_not(None)
            raise self.error(f"null can only be compared with == or != (got {op})", node.value_pos)
        if info.type == "datetime":
            return self._datetime(col, op, v, info, node.value_pos)
        return _OPS[op](col, self._coerce(v, info, node.value_pos))

    def _coerce(self, v: Value, info: FieldInfo, pos: int) -> Any:
        t = info.type
        if t in ("number", "integer"):
            if not _is_number(v):
                raise self.error(
                    f"{info.name!r} is a number, but {value_text(v)} is {_kind_of(v)}", pos
                )
            return _num(v)
        if t == "boolean":
            if not isinstance(v, bool):
                raise self.error(f"{info.name!r} is true or false, not {value_text(v)}", pos)
            return v
        # text
        if isinstance(v, bool) or _is_number(v):
            raise self.error(
                f"{info.name!r} is text, but {value_text(v)} is {_kind_of(v)}; "
                f'write it in quotes: "{v}"',
                pos,
            )
        s = _text(v)
        if info.vocabulary is not None:
            known = vocabulary(info.vocabulary)
            if s not in known:
                raise self.error(
                    f"{info.name!r} is one of {', '.join(repr(k) for k in known)}, not "
                    f"{value_text(v)}" + self._suggest(s, known),
                    pos,
                )
        if info.name == "well":
            try:
                return well_name(*parse_well(s))
            except ValueError:
                return s
        return s

    def _datetime(self, col: Any, op: str, v: Value, info: FieldInfo, pos: int) -> Expr:
        if isinstance(v, str):
            try:
                v = datetime.fromisoformat(v) if "T" in v or " " in v else date.fromisoformat(v)
            except ValueError:
                raise self.error(
                    f"{info.name!r} is a date-time; {value_text(v)} is not a date "
                    "(write 2024-01-31 or 2024-01-31T12:00:00)",
                    pos,
                ) from None
        if isinstance(v, datetime):
            t = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
            return _OPS[op](col, t)
        if not isinstance(v, date) or isinstance(v, bool):
            raise self.error(
                f"{info.name!r} is a date-time, but {value_text(v)} is {_kind_of(v)}", pos
            )
        start = datetime.combine(v, time(0), tzinfo=UTC)
        end = start + timedelta(days=1)
        if op == "==":
            return sa.and_(col >= start, col < end)
        if op == "!=":
            return sa.or_(col < start, col >= end)
        if op == "<":
            return col < start
        if op == "<=":
            return col < end
        if op == ">":
            return col >= end
        return col >= start


def _col(info: FieldInfo) -> str:
    assert info.column is not None
    return info.column


_OPS: dict[str, Callable[[Any, Any], Expr]] = {
    "==": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


@functools.cache
def _indexed() -> frozenset[str]:
    """Columns of ``images`` that lead an index, a unique constraint or the primary key."""
    cols = {S.images.primary_key.columns.values()[0].name}
    for ix in S.images.indexes:
        cols.add(next(iter(ix.columns)).name)
    for c in S.images.constraints:
        if isinstance(c, sa.UniqueConstraint) and len(c.columns):
            cols.add(next(iter(c.columns)).name)
    return frozenset(cols)


def _flatten(node: And) -> list[Node]:
    """The conjuncts of ``node``, with nested conjunctions (parentheses) expanded."""
    out: list[Node] = []
    for n in node.items:
        out.extend(_flatten(n) if isinstance(n, And) else [n])
    return out


def _like(col: Any, node: Like, dialect: str = "") -> Expr:
    # case-insensitive: SQLite's LIKE already is (ASCII, as its lower()), PostgreSQL needs ILIKE
    if dialect == "sqlite":
        expr: Expr = col.like(node.pattern, escape="\\")
    else:
        expr = col.ilike(node.pattern, escape="\\")
    return sa.not_(expr) if node.negated else expr


def _is_null_test(node: Node) -> bool:
    return isinstance(node, Compare) and node.value is None and node.op in ("==", "!=")


def _null_eq(node: Node) -> bool:
    return isinstance(node, Compare) and node.value is None and node.op == "=="


def _is_number(v: Value) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(v: Any) -> int | float:
    if isinstance(v, int) and abs(v) > _INT64:
        return float(v)
    return v  # type: ignore[no-any-return]


def _text(v: Value) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, date | datetime):
        return v.isoformat()
    return str(v)


def _kind_of(v: Value) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, datetime):
        return "a date-time"
    if isinstance(v, date):
        return "a date"
    return "a number"


def _article(t: str) -> str:
    return {"integer": "an integer", "number": "a number", "datetime": "a date-time"}.get(
        t, f"a {t}"
    )
