"""Quality-control records of the catalog: metric values, statuses, illumination profiles."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import _schema as S

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["QualityRecords"]

ChannelMetrics = Mapping[int, Mapping[str, float]]


class QualityRecords:
    """Mixed into :class:`~quantscope.catalog.Repository`: QC rows keyed by image id."""

    engine: Engine

    def set_quality(self, items: Iterable[tuple[str, ChannelMetrics]]) -> None:
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

    def set_quality_status(self, results: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        """Replace the (status, reasons) of each image, in one transaction."""
        if not results:
            return
        now = datetime.now(UTC)
        q = S.quality_status
        with self.engine.begin() as conn:
            conn.execute(q.delete().where(q.c.image_id.in_(list(results))))
            conn.execute(
                q.insert(),
                [
                    {
                        "image_id": k,
                        "status": st,
                        "reasons": json.dumps(list(rs)),
                        "computed_at": now,
                    }
                    for k, (st, rs) in results.items()
                ],
            )

    def quality_metrics(
        self, image_ids: Sequence[str] | None = None
    ) -> dict[str, dict[int, dict[str, float]]]:
        """{image id: {channel: {metric: value}}}; undefined values come back as NaN."""
        q = S.quality_metrics
        sel = sa.select(q.c.image_id, q.c.channel, q.c.name, q.c.value)
        if image_ids is not None:
            sel = sel.where(q.c.image_id.in_(list(image_ids)))
        out: dict[str, dict[int, dict[str, float]]] = {}
        with self.engine.connect() as conn:
            for image_id, channel, name, value in conn.execute(sel):
                out.setdefault(image_id, {}).setdefault(channel, {})[name] = (
                    math.nan if value is None else value
                )
        return out

    def image_names(self, image_ids: Sequence[str]) -> dict[str, str]:
        """{image id: name} of the images of ``image_ids`` in the catalog (one light query; ids
        not in the catalog are left out)."""
        i = S.images
        sel = sa.select(i.c.id, i.c.name).where(i.c.id.in_(list(image_ids)))
        with self.engine.connect() as conn:
            return {k: v for k, v in conn.execute(sel)}

    def quality_groups(self) -> dict[str, tuple[str | None, list[str]]]:
        """{image id: (plate name or None, channel names by index)} of every image: what QC
        groups peers by and names channels with (two light queries, no full image records)."""
        i, p, c = S.images, S.plates, S.channels
        sel = sa.select(i.c.id, p.c.name).select_from(i.outerjoin(p, p.c.id == i.c.plate_id))
        names: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            plates: dict[str, str | None] = {k: v for k, v in conn.execute(sel)}
            for image_id, name in conn.execute(
                sa.select(c.c.image_id, c.c.name).order_by(c.c.image_id, c.c.idx)
            ):
                names.setdefault(image_id, []).append(name)
        return {k: (v, names.get(k, [])) for k, v in plates.items()}

    def quality_status(
        self, image_ids: Sequence[str] | None = None
    ) -> dict[str, tuple[str, list[str]]]:
        """{image id: (status, reasons)} of the images QC has evaluated."""
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

    def illumination_profiles(self) -> list[dict[str, Any]]:
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
            return [dict(r) for r in conn.execute(sel).mappings()]
