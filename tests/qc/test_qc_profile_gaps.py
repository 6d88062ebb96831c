"""Plates (and channels) without an illumination profile are reported, with the reason: in
:func:`profile_gaps`, the HTML report, and ``quantscope qc --profiles`` (text and JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import Result

from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.qc import collect_report_data, estimate_profiles, profile_gaps, write_html_report


def _field(seed: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(200.0, 5.0, shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(6):
        cy, cx = rng.uniform(8, shape[0] - 8), rng.uniform(8, shape[1] - 8)
        img += 2000.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
    return np.clip(img, 0, 65535).astype(np.uint16)


@pytest.fixture
def mixed(tmp_path: Path, repo: Repository) -> Repository:
    """Plate GOOD: 3 fields of one size (a profile); plate ONE: a single field; plate SIZES:
    two fields of different sizes; one image on no plate."""
    src = tmp_path / "in"
    src.mkdir()
    for i, well in enumerate(("A01", "A02", "B01")):
        tifffile.imwrite(src / f"GOOD_{well}_s1_w1.tif", _field(i, (64, 80)))
    tifffile.imwrite(src / "ONE_A01_s1_w1.tif", _field(5, (64, 80)))
    tifffile.imwrite(src / "SIZES_A01_s1_w1.tif", _field(6, (64, 80)))
    tifffile.imwrite(src / "SIZES_A02_s1_w1.tif", _field(7, (72, 96)))
    tifffile.imwrite(src / "loose.tif", _field(8, (64, 80)))
    report = ingest(repo, [src])
    assert report.ok and len(report.added) == 7, report.failed
    assert {p.name for p in repo.images.plates()} == {"GOOD", "ONE", "SIZES"}
    return repo


def test_profile_gaps_say_why(mixed: Repository) -> None:
    gaps = profile_gaps(mixed)
    by_plate = {g.plate: g for g in gaps}
    # nothing estimated yet: GOOD could have one, and the gap says how to get it
    assert set(by_plate) == {"GOOD", "ONE", "SIZES", None}
    assert "not estimated yet" in by_plate["GOOD"].reason
    assert "--profiles --plate GOOD" in by_plate["GOOD"].reason
    assert "only 1 image" in by_plate["ONE"].reason
    assert "differ in size" in by_plate["SIZES"].reason
    assert "1 image is on no plate" in by_plate[None].reason
    assert by_plate["ONE"].channel == 0 and by_plate["ONE"].channel_name == "w1"
    stored = estimate_profiles(mixed)
    assert [(p.plate, p.channel) for p in stored] == [("GOOD", 0)]
    after = {g.plate for g in profile_gaps(mixed)}
    assert after == {"ONE", "SIZES", None}
    assert [g.plate for g in profile_gaps(mixed, "ONE")] == ["ONE"]


def test_report_lists_plates_without_a_profile(mixed: Repository, tmp_path: Path) -> None:
    estimate_profiles(mixed)
    data = collect_report_data(mixed)
    assert {g.plate for g in data.missing_profiles} == {"ONE", "SIZES", None}
    page = write_html_report(mixed, tmp_path / "qc.html", data).read_text(encoding="utf-8")
    assert "id='missing-profiles'" in page
    assert "no illumination profile for plate ONE channel w1: only 1 image" in page
    assert "no illumination profile for plate SIZES channel w1" in page
    assert "images without a plate" in page


def test_cli_reports_plates_without_a_profile(
    mixed: Repository, cli: Callable[..., Result]
) -> None:
    root = mixed.root
    mixed.close()
    result = cli("qc", root, "--profiles", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(p["plate"], p["channel"]) for p in doc["profiles"]] == [("GOOD", 0)]
    missing = {m["plate"]: m for m in doc["missing_profiles"]}
    assert set(missing) == {"ONE", "SIZES", None}
    assert missing["ONE"]["channel_name"] == "w1" and "only 1 image" in missing["ONE"]["reason"]
    text = cli("qc", root, "--profiles", "--plate", "SIZES")
    assert text.exit_code == 0, text.output
    assert "no illumination profile for plate SIZES channel w1: its 2 images" in " ".join(
        text.stdout.split()
    )
