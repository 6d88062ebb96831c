"""The bulk insert path of ``register_many`` (catalog._bulk.insert_rows) on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from _query_data import build, image_id
from quantscope.catalog import Repository
from quantscope.catalog import _schema as S
from quantscope.catalog._bulk import insert_rows
from quantscope.errors import CatalogError


def test_insert_rows_round_trips_types_and_nulls(tmp_path: Path, catalog_url: str | None) -> None:
    with Repository.init(tmp_path / "r", catalog_url) as repo:
        when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        rows = [
            {"name": "P1", "store_path": "plates/P1.ome.zarr", "created_at": when},
            {"name": "P'2\"", "store_path": "x", "created_at": when},
        ]
        with repo.engine.begin() as conn:
            insert_rows(conn, S.plates, rows)
            insert_rows(conn, S.plates, [])  # nothing to do
        with repo.engine.connect() as conn:
            got = conn.execute(
                sa.select(S.plates.c.name, S.plates.c.created_at).order_by(S.plates.c.name)
            ).all()
        assert [g[0] for g in got] == ["P'2\"", "P1"]
        assert got[0][1].replace(tzinfo=UTC) == when


def test_register_many_through_insert_rows_keeps_every_value(
    tmp_path: Path, catalog_url: str | None
) -> None:
    repo = build(tmp_path / "r", catalog_url)
    img = repo.images.get(image_id("b"))
    assert img.position is not None and img.position.well == "B02"
    assert [c.name for c in img.channels] == ["DAPI", "GFP"]
    assert img.channels[0].fluor == "Hoechst" and img.channels[1].fluor is None
    assert img.acquisition.acquired_at is not None
    assert img.acquisition.acquired_at.replace(tzinfo=UTC) == datetime(
        2024, 1, 1, 23, 30, tzinfo=UTC
    )
    assert img.acquisition.objective is not None and img.acquisition.objective.lens_na == 1.4
    assert img.sources[0].path.endswith("img_b.tiff")
    repo.close()


def test_a_failing_batch_records_nothing(tmp_path: Path) -> None:
    from quantscope.catalog import ImageRegistration

    repo = build(tmp_path / "r")
    before = repo.summary()["images"]
    again = repo.images.all([image_id("a")])[0]
    fresh = again.model_copy(update={"id": "f" * 32, "position": None})
    with pytest.raises(CatalogError, match="cannot be registered"):
        repo.images.register_many(
            [
                ImageRegistration(image=fresh, source_formats={}, manifest=[]),
                ImageRegistration(image=again, source_formats={}, manifest=[]),  # id taken
            ]
        )
    assert repo.summary()["images"] == before
    assert repo.query.find_ids(f'id == "{"f" * 32}"') == []
    repo.close()
