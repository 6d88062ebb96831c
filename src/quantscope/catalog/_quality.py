"""Quality-control records of the catalog: metric values, statuses, illumination profiles.

:class:`QualityRecords` is the ``quality`` part of a :class:`~quantscope.catalog.Repository`
(``repo.quality``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from . import _schema as S
from ._part import Part

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..quality import QCFlag

__all__ = ["IlluminationProfileRecord", "QualityPeer", "QualityRecords"]

ChannelMetrics = Mapping[int, Mapping[str, float]]


@dataclass(frozen=True)
class IlluminationProfileRecord:
    """A stored illumination profile of one channel of a plate (``repo.quality``).

    ``store_path`` is the profile's folder relative to the repository root; ``n_images`` how
    many images it was estimated from; ``sha256`` the digest of its flat (and dark) field.
    """

    plate: str
    channel: int
    channel_name: str
    store_path: str
    n_images: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """The profile's catalog row as a dict."""
        return {
            "plate": self.plate,
            "channel": self.channel,
            "channel_name": self.channel_name,
            "store_path": self.store_path,
            "n_images": self.n_images,
            "sha256": self.sha256,
        }


_IN_CHUNK = 500  # ids per IN (...) list: well below every backend's bound-parameter limit


def _on_plates(plates: Collection[str | None]) -> sa.ColumnElement[bool]:
    """Images on the named plates (None: on no plate); needs images joined to plates."""
    names = [n for n in plates if n is not None]
    conds: list[sa.ColumnElement[bool]] = []
    if names:
        conds.append(S.plates.c.name.in_(names))
    if None in plates:
        conds.append(S.images.c.plate_id.is_(None))
    return sa.or_(*conds) if conds else sa.false()


def _flag_row(image_id: str, seq: int, flag: QCFlag) -> dict[str, Any]:
    from ..quality import finite_or_none as real

    return {
        "image_id": image_id,
        "seq": seq,
        "rule": flag.rule,
        "level": flag.level,
        "kind": flag.kind,
        "metric": flag.metric or None,
        "channel": flag.channel_index,
        "channel_name": flag.channel,
        "direction": flag.direction,
        "value": real(flag.value),
        "bound": real(flag.bound),
        "zscore": real(flag.zscore),
        "median": real(flag.median),
        "peers": flag.peers,
        "detail": flag.detail,
    }


def _read_flags(conn: Connection, sel: sa.Select[Any], out: dict[str, list[QCFlag]]) -> None:
    from ..quality import QCFlag

    for r in conn.execute(sel).mappings():
        # an infinite z-score (a group of identical values) is stored as NULL: its side stays
        zscore, value = r["zscore"], r["value"]
        if zscore is None and r["kind"] == "outlier":
            zscore = -math.inf if r["direction"] == "below" else math.inf
        if value is None and r["kind"] in ("limit", "outlier"):
            value = math.nan
        out.setdefault(r["image_id"], []).append(
            QCFlag(
                metric=r["metric"] or "",
                level=r["level"],
                kind=r["kind"],
                value=value,
                bound=r["bound"],
                zscore=zscore,
                median=r["median"],
                peers=r["peers"],
                channel=r["channel_name"],
                channel_index=r["channel"],
                detail=r["detail"],
            )
        )


class QualityPeer(NamedTuple):
    """What QC compares an image's peers by (:meth:`QualityRecords.peers`)."""

    plate: str | None
    channels: tuple[str, ...]
    datasets: tuple[str, ...]  # dataset names, sorted
    instrument: tuple[str | None, str | None] | None  # (manufacturer, model); None: unknown
    shape: tuple[int, int]  # (y, x) px
    dtype: str
    source_format: str  # of the first source file ("" when none is recorded)
    source_folder: str  # folder of the first source file, as recorded
    well: str | None = None  # e.g. "B03"; None without a plate
    field: int | None = None  # 1-based site within the well


class QualityRecords(Part):
    """``repo.quality``: QC rows keyed by image id."""

    def set_metrics(self, items: Iterable[tuple[str, ChannelMetrics]]) -> None:
        """Replace the metric values of each (image id, {channel: {metric: value}}), in one
        transaction. NaN (an undefined metric) is stored as NULL."""
        items = list(items)
        if not items:
            return
        q = S.quality_metrics
        rows = [
            {
                "image_id": image_id,
                "channel": int(channel),
                "name": name,
                "value": None if value is None or not math.isfinite(value) else float(value),
            }
            for image_id, metrics in items
            for channel, values in metrics.items()
            for name, value in values.items()
        ]
        with self.engine.begin() as conn:
            conn.execute(q.delete().where(q.c.image_id.in_([i for i, _ in items])))
            if rows:
                conn.execute(q.insert(), rows)

    def set_status(self, results: Mapping[str, tuple[str, Sequence[str | QCFlag]]]) -> None:
        """Replace the (status, flags) of each image, in one transaction.

        The flags are :class:`quantscope.quality.QCFlag` records, stored one row each
        (``qc_flags``), with the sentences rendered from them (``quality_status.reasons``, for
        ``qc.reasons like``). A reason given as text is stored as a ``"note"`` flag that keeps
        it, at the level of the status (``"warn"`` for a pass).
        """
        if not results:
            return
        from ..quality import QCFlag

        now = datetime.now(UTC)
        status_rows: list[dict[str, Any]] = []
        flag_rows: list[dict[str, Any]] = []
        for image_id, (status, items) in results.items():
            level: Any = "fail" if status == "fail" else "warn"
            flags = [QCFlag.note(f, level) if isinstance(f, str) else f for f in items]
            status_rows.append(
                {
                    "image_id": image_id,
                    "status": status,
                    "reasons": json.dumps([f.message for f in flags]),
                    "computed_at": now,
                }
            )
            flag_rows += [_flag_row(image_id, seq, f) for seq, f in enumerate(flags)]
        q, qf = S.quality_status, S.qc_flags
        ids = list(results)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                part = ids[start : start + _IN_CHUNK]
                conn.execute(qf.delete().where(qf.c.image_id.in_(part)))
                conn.execute(q.delete().where(q.c.image_id.in_(part)))
            conn.execute(q.insert(), status_rows)
            if flag_rows:
                conn.execute(qf.insert(), flag_rows)

    def flags(self, image_ids: Sequence[str] | None = None) -> dict[str, list[QCFlag]]:
        """{image id: its QC flags, in order (fails first)} of the images QC has flagged
        (of ``image_ids``); images that passed are left out."""
        qf = S.qc_flags
        sel = sa.select(qf).order_by(qf.c.image_id, qf.c.seq)
        out: dict[str, list[QCFlag]] = {}
        with self.engine.connect() as conn:
            if image_ids is None:
                _read_flags(conn, sel, out)
            else:
                ids = list(dict.fromkeys(image_ids))
                for start in range(0, len(ids), _IN_CHUNK):
                    part = ids[start : start + _IN_CHUNK]
                    _read_flags(conn, sel.where(qf.c.image_id.in_(part)), out)
        return out

    def metrics(
        self,
        image_ids: Sequence[str] | None = None,
        *,
        plates: Collection[str | None] | None = None,
    ) -> dict[str, dict[int, dict[str, float]]]:
        """{image id: {channel: {metric: value}}}; undefined values come back as NaN.

        ``image_ids`` and ``plates`` (plate names, None for the images on no plate) each
        restrict the images read."""
        q, i, p = S.quality_metrics, S.images, S.plates
        sel = sa.select(q.c.image_id, q.c.channel, q.c.name, q.c.value)
        if image_ids is not None:
            sel = sel.where(q.c.image_id.in_(list(image_ids)))
        if plates is not None:
            sel = sel.select_from(
                q.join(i, i.c.id == q.c.image_id).outerjoin(p, p.c.id == i.c.plate_id)
            ).where(_on_plates(plates))
        out: dict[str, dict[int, dict[str, float]]] = {}
        with self.engine.connect() as conn:
            for image_id, channel, name, value in conn.execute(sel):
                out.setdefault(image_id, {}).setdefault(channel, {})[name] = (
                    math.nan if value is None else value
                )
        return out

    def groups(
        self, plates: Collection[str | None] | None = None
    ) -> dict[str, tuple[str | None, list[str]]]:
        """{image id: (plate name or None, channel names by index)} of every image (of the
        images on ``plates``, None standing for no plate): what QC groups peers by and names
        channels with (two light queries, no full image records)."""
        i, p, c = S.images, S.plates, S.channels
        joined = i.outerjoin(p, p.c.id == i.c.plate_id)
        sel = sa.select(i.c.id, p.c.name).select_from(joined)
        chans = sa.select(c.c.image_id, c.c.name).order_by(c.c.image_id, c.c.idx)
        if plates is not None:
            sel = sel.where(_on_plates(plates))
            chans = chans.select_from(c.join(joined, i.c.id == c.c.image_id)).where(
                _on_plates(plates)
            )
        names: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            found: dict[str, str | None] = {k: v for k, v in conn.execute(sel)}
            for image_id, name in conn.execute(chans):
                names.setdefault(image_id, []).append(name)
        return {k: (v, names.get(k, [])) for k, v in found.items()}

    def peers(self, plates: Collection[str | None] | None = None) -> dict[str, QualityPeer]:
        """{image id: :class:`QualityPeer`} of every image (of the images on ``plates``, None
        standing for no plate): what QC needs to decide which images are comparable peers
        (plate, datasets, instrument, size, dtype, source format and folder) and to name
        channels (four light queries, no full image records)."""
        i, p, c = S.images, S.plates, S.channels
        joined = i.outerjoin(p, p.c.id == i.c.plate_id)
        sel = sa.select(
            i.c.id,
            p.c.name,
            i.c.instrument_manufacturer,
            i.c.instrument_model,
            i.c.size_y,
            i.c.size_x,
            i.c.dtype,
            i.c.well,
            i.c.field,
        ).select_from(joined)
        chans = sa.select(c.c.image_id, c.c.name).order_by(c.c.image_id, c.c.idx)
        a = S.annotations
        sets = (
            sa.select(a.c.target_id, a.c.value)
            .where(a.c.target_kind == "image", a.c.key == "dataset")
            .order_by(a.c.target_id, a.c.value)
        )
        src, f = S.image_sources, S.source_files
        files_from = src.join(f, f.c.id == src.c.file_id)
        sets_from: Any = a
        chans_from: Any = c
        if plates is not None:
            files_from = files_from.join(joined, i.c.id == src.c.image_id)
            sets_from = a.join(joined, i.c.id == a.c.target_id)
            chans_from = c.join(joined, i.c.id == c.c.image_id)
        chans = chans.select_from(chans_from)
        sets = sets.select_from(sets_from)
        files = (
            sa.select(src.c.image_id, f.c.path, f.c.format)
            .select_from(files_from)
            .order_by(src.c.image_id, src.c.channel_offset, f.c.path)
        )
        if plates is not None:
            sel = sel.where(_on_plates(plates))
            chans = chans.where(_on_plates(plates))
            sets = sets.where(_on_plates(plates))
            files = files.where(_on_plates(plates))
        names: dict[str, list[str]] = {}
        datasets: dict[str, list[str]] = {}
        first_file: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            rows = list(conn.execute(sel))
            for image_id, name in conn.execute(chans):
                names.setdefault(image_id, []).append(name)
            for image_id, value in conn.execute(sets):
                if value:
                    datasets.setdefault(image_id, []).append(value)
            for image_id, path, fmt in conn.execute(files):
                first_file.setdefault(image_id, (path, fmt))
        out: dict[str, QualityPeer] = {}
        for image_id, plate, maker, model, ny, nx, dtype, well, site in rows:
            path, fmt = first_file.get(image_id, ("", ""))
            out[image_id] = QualityPeer(
                plate=plate,
                channels=tuple(names.get(image_id, [])),
                datasets=tuple(datasets.get(image_id, [])),
                instrument=(maker, model) if maker or model else None,
                shape=(int(ny), int(nx)),
                dtype=str(dtype),
                source_format=fmt,
                source_folder=os.path.dirname(path) if path else "",
                well=well,
                field=site,
            )
        return out

    def plates(self, image_ids: Iterable[str]) -> set[str | None]:
        """The plates (names; None for no plate) the images of ``image_ids`` are on: the
        groups whose QC flags change when these images are measured."""
        i, p = S.images, S.plates
        ids = list(dict.fromkeys(image_ids))
        out: set[str | None] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                sel = (
                    sa.select(p.c.name)
                    .select_from(i.outerjoin(p, p.c.id == i.c.plate_id))
                    .where(i.c.id.in_(ids[start : start + _IN_CHUNK]))
                    .distinct()
                )
                out.update(name for (name,) in conn.execute(sel))
        return out

    def unchecked(self) -> list[str]:
        """Ids of the images QC has not given a status (new, or left by an interrupted run)."""
        i, q = S.images, S.quality_status
        sel = (
            sa.select(i.c.id)
            .select_from(i.outerjoin(q, q.c.image_id == i.c.id))
            .where(q.c.image_id.is_(None))
            .order_by(i.c.id)
        )
        with self.engine.connect() as conn:
            return [k for (k,) in conn.execute(sel)]

    def status(self, image_ids: Sequence[str] | None = None) -> dict[str, tuple[str, list[str]]]:
        """{image id: (status, reasons)} of the images QC has evaluated: the sentences rendered
        from the flags when they were stored (:meth:`flags` gives the records)."""
        q = S.quality_status
        sel = sa.select(q.c.image_id, q.c.status, q.c.reasons)
        if image_ids is not None:
            sel = sel.where(q.c.image_id.in_(list(image_ids)))
        with self.engine.connect() as conn:
            return {i: (st, json.loads(rs)) for i, st, rs in conn.execute(sel)}

    def set_illumination_profile(
        self,
        plate: str,
        channel: int,
        channel_name: str,
        store_path: str,
        n_images: int,
        sha256: str,
    ) -> None:
        """Record (or replace) the illumination profile of one channel of a plate."""
        ip, p = S.illumination_profiles, S.plates
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            plate_id = conn.execute(sa.select(p.c.id).where(p.c.name == plate)).scalar()
            if plate_id is None:
                from ..errors import NotFound

                raise NotFound(f"no plate named {plate!r} in the catalog")
            conn.execute(ip.delete().where(ip.c.plate_id == plate_id, ip.c.channel == channel))
            conn.execute(
                ip.insert().values(
                    plate_id=plate_id,
                    channel=channel,
                    channel_name=channel_name,
                    store_path=store_path,
                    n_images=n_images,
                    sha256=sha256,
                    created_at=now,
                )
            )

    def illumination_profiles(self) -> list[IlluminationProfileRecord]:
        """Every stored illumination profile: plate, channel, channel name, path, image count."""
        ip, p = S.illumination_profiles, S.plates
        sel = (
            sa.select(
                p.c.name.label("plate"),
                ip.c.channel,
                ip.c.channel_name,
                ip.c.store_path,
                ip.c.n_images,
                ip.c.sha256,
            )
            .join(p, p.c.id == ip.c.plate_id)
            .order_by(p.c.name, ip.c.channel)
        )
        with self.engine.connect() as conn:
            return [
                IlluminationProfileRecord(
                    plate=r.plate,
                    channel=int(r.channel),
                    channel_name=r.channel_name,
                    store_path=r.store_path,
                    n_images=int(r.n_images),
                    sha256=r.sha256,
                )
                for r in conn.execute(sel)
            ]
