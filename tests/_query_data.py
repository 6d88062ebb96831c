"""A small catalog with known metadata, annotations and QC values for the query tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from quantscope.catalog import ImageRegistration, Repository
from quantscope.catalog import _schema as S
from quantscope.model import (
    Acquisition,
    Channel,
    Image,
    Instrument,
    Objective,
    PlatePosition,
    SourceFile,
)
from quantscope.quality import QCFlag

# name: (plate, row, column, NA, acquired, [(channel, exposure s, fluor)], source format)
IMAGES = {
    "a": (
        "P1",
        0,
        0,
        1.3,
        datetime(2024, 1, 1, 9, 0, tzinfo=UTC),
        [("DAPI", 0.05, None), ("GFP", 0.2, "EGFP")],
        "tiff",
    ),
    "b": (
        "P1",
        1,
        1,
        1.4,
        datetime(2024, 1, 1, 23, 30, tzinfo=UTC),
        [("DAPI", 0.2, "Hoechst"), ("GFP", 0.05, None)],
        "tiff",
    ),
    "c": (
        "P2",
        0,
        0,
        0.75,
        datetime(2023, 12, 31, 12, 0, tzinfo=UTC),
        [("GFP", 0.3, "EGFP")],
        "czi",
    ),
    "d": ("P2", 0, 1, None, None, [("DAPI", 0.5, None)], "czi"),
    "e": (None, 0, 0, 0.95, datetime(2024, 6, 1, tzinfo=UTC), [("Brightfield", None, None)], "nd2"),
}


def image_id(name: str) -> str:
    return (name * 32)[:32].encode().hex()[:32]


def build(root: Path, catalog_url: str | None = None) -> Repository:
    """Register IMAGES, then annotations, QC metrics and QC statuses."""
    repo = Repository.init(root, catalog_url)
    regs = []
    for k, (name, (plate, row, col, na, when, chans, fmt)) in enumerate(IMAGES.items()):
        iid = image_id(name)
        img = Image(
            id=iid,
            name=f"img_{name}.tif",
            shape=(1, len(chans), 1, 64, 64 + k),
            dtype="uint16",
            physical_size_x_um=0.1 * (k + 1),
            physical_size_y_um=0.1 * (k + 1),
            channels=tuple(
                Channel(index=i, name=c, exposure_time_s=t, fluor=f)
                for i, (c, t, f) in enumerate(chans)
            ),
            acquisition=Acquisition(
                acquired_at=when,
                instrument=Instrument(manufacturer="Zeiss" if fmt == "czi" else "Nikon"),
                objective=Objective(lens_na=na, nominal_magnification=40.0) if na else None,
            ),
            position=PlatePosition(plate=plate, row=row, column=col) if plate else None,
            sources=(
                SourceFile(
                    path=f"/data/{plate or 'loose'}/img_{name}.{fmt}",
                    size=1000 + k,
                    sha256=f"{k:064x}",
                    reader=fmt,
                ),
            ),
            store_path=f"images/{iid}.ome.zarr",
            levels=1,
            bytes_stored=100,
        )
        regs.append(ImageRegistration(image=img, source_formats={f"{k:064x}": fmt}, manifest=[]))
    repo.images.register_many(regs)
    now = datetime.now(UTC)
    ann = [
        ("image", image_id("a"), "tag", "control", None, None),
        ("image", image_id("a"), "tag", "batch1", None, None),
        ("image", image_id("b"), "tag", "treated", None, None),
        ("image", image_id("c"), "tag", "control", None, None),
        ("plate", "P2", "biosample.organism", "Homo sapiens", None, "NCBITaxon:9606"),
        ("plate", "P1", "study.title", "Screen A", None, None),
        ("image", image_id("e"), "biosample.organism", "Mus musculus", None, "NCBITaxon:10090"),
        ("image", image_id("a"), "treatment.concentration", "5", 5.0, None),
        ("image", image_id("b"), "treatment.concentration", "50", 50.0, None),
        ("image", image_id("c"), "treatment.concentration", "0.5", 0.5, None),
    ]
    with repo.engine.begin() as conn:
        conn.execute(
            sa.insert(S.annotations),
            [
                {
                    "target_kind": kind,
                    "target_id": tid,
                    "key": key,
                    "value": value,
                    "num_value": num,
                    "unit": "µM" if key.startswith("treatment") else None,
                    "curie": curie,
                    "source": "test",
                    "created_at": now,
                }
                for kind, tid, key, value, num, curie in ann
            ],
        )
    repo.quality.set_metrics(
        [
            (
                image_id("a"),
                {0: {"focus_plls": -3.0, "saturation_pct": 0.0}, 1: {"focus_plls": -1.0}},
            ),
            (
                image_id("b"),
                {0: {"focus_plls": -1.0, "saturation_pct": 2.0}, 1: {"focus_plls": -3.0}},
            ),
            (image_id("c"), {0: {"focus_plls": float("nan")}}),
        ]
    )
    repo.quality.set_status(
        {
            image_id("a"): ("pass", []),
            image_id("b"): (
                "fail",
                [
                    "focus",
                    QCFlag(
                        "saturation_pct", "fail", "limit", 2.0, 1.0, channel="DAPI", channel_index=0
                    ),
                ],
            ),
            image_id("c"): ("warn", []),
        }
    )
    return repo
