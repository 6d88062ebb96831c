"""A plate that is out of focus as a whole fails on the absolute focus limits, without sharp
peers; an in-focus plate passes them (limits calibrated by bench/qc_focus_limits.py on these
files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.quality import DEFAULT_LIMITS, QCThresholds


def _copy(paths: list[Path], dest: Path) -> Path:
    dest.mkdir()
    for p in paths:
        shutil.copy(p, dest / p.name)
    return dest


@pytest.fixture
def defocused(shared_data: Path) -> list[Path]:
    q = shared_data / "image_quality"
    paths = sorted(q.glob("00_*.tif")) + sorted(q.glob("bbbc006_raw_fields/*/*.tif"))
    if len(paths) != 12:
        pytest.skip(f"the 12 defocused BBBC006 fields are not under {q}")
    return paths


@pytest.fixture
def in_focus(shared_data: Path) -> list[Path]:
    q = shared_data / "image_quality"
    paths = sorted(q.glob("BBBC006_z_aligned__*_10.png"))
    if len(paths) != 9:
        pytest.skip(f"the 9 in-focus BBBC006 fields are not under {q}")
    return paths


def test_a_wholly_defocused_plate_fails(
    tmp_path: Path, repo: Repository, defocused: list[Path]
) -> None:
    """The 12 defocused BBBC006 fields form one plate (ImageXpress names): each is its own
    peers' median, so outliers cannot catch them; the absolute limit does."""
    report = ingest(repo, [_copy(defocused, tmp_path / "blurred")])
    assert report.ok and len(report.added) == 12, report.failed
    assert {img.position.plate for img in repo.images.all() if img.position} != {None}
    status = repo.quality.status()
    assert len(status) == 12
    for st, reasons in status.values():
        assert st == "fail", reasons
        assert any(
            r.startswith("ch ") and "focus_plls" in r and "fail limit -4" in r for r in reasons
        ), reasons
    # without the limit (the old defaults) the same plate is not failed for focus
    no_limit = {k: v for k, v in DEFAULT_LIMITS.items() if k != "focus_plls"}
    from quantscope.qc import run_qc

    old = run_qc(repo, recompute=False, thresholds=QCThresholds(limits=no_limit))
    assert not any(
        "focus_plls" in r and "limit" in r for q in old.images.values() for r in q.reasons
    )


def test_an_in_focus_set_passes_the_focus_limits(
    tmp_path: Path, repo: Repository, in_focus: list[Path]
) -> None:
    report = ingest(repo, [_copy(in_focus, tmp_path / "sharp")])
    assert report.ok and len(report.added) == 9, report.failed
    status = repo.quality.status()
    assert len(status) == 9
    for st, reasons in status.values():
        # no absolute focus flag; (one field is a mild relative outlier among these 9 peers:
        # a warning from the peer comparison, not from the limits)
        assert st != "fail", reasons
        assert not any("focus" in r and "limit" in r for r in reasons), reasons
