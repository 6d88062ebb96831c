"""QC of real images: BBBC039 (one empty, one clipped field), CellProfiler's uneven illumination
example (profiles), and a DeltaVision z-stack (best-focus plane)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import Result

from quantscope.catalog import Repository
from quantscope.errors import NotFound, RepositoryError
from quantscope.ingestion import ingest
from quantscope.qc import BEST_FOCUS_PLANE, estimate_profiles, load_profile

ILLUM_PATTERN = "{plate}_{well}f{field0}d{channel}"  # AS_09047_050428030001_O01f00d2.TIF


def test_bbbc039_ingest_with_qc(bbbc039_images: Path, repo: Repository) -> None:
    report = ingest(repo, [bbbc039_images], jobs=2)
    assert report.ok and len(report.added) == 40
    assert len(report.qc) == 40
    names = {img.id: img.name for img in report.added}
    statuses = repo.quality.status()
    passed = [i for i, s in report.qc.items() if s == "pass"]
    assert len(passed) >= 38, {names[i]: statuses[i] for i in report.qc if i not in passed}
    empty = next(i for i, n in names.items() if n.startswith("IXMtest_F13_s7"))
    status, reasons = statuses[empty]
    assert status == "warn"
    assert any("foreground_pct" in r and "empty or blank field" in r for r in reasons), reasons
    assert repo.quality.metrics([empty])[empty][0]["is_empty"] == 1.0


@pytest.fixture(scope="module")
def illum_repo(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    """CellProfiler's ExampleIlluminationCorrection: 72 fields of plate row O, channel d2."""
    folder = data_root / "cellprofiler_examples" / "ExampleIlluminationCorrection" / "images"
    repo = Repository.init(tmp_path_factory.mktemp("illum") / "repo")
    report = ingest(repo, [folder], pattern=ILLUM_PATTERN, jobs=2)
    assert report.ok and len(report.added) == 72
    yield repo
    repo.close()


def test_illumination_flags_and_profile(illum_repo: Repository, cli: Callable[..., Result]) -> None:
    repo = illum_repo
    plates = repo.images.plates()
    assert [p.name for p in plates] == ["AS_09047_050428030001"]
    statuses = repo.quality.status()
    uneven = [i for i, (_, rs) in statuses.items() if any("uneven illumination" in r for r in rs)]
    assert len(uneven) >= 65, len(uneven)
    assert all(s != "pass" for i, (s, _) in statuses.items() if i in uneven)

    result = cli("qc", repo.root, "--profiles", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["profiles"]) == 1
    prof = doc["profiles"][0]
    assert prof["n_images"] == 72 and prof["channel"] == 0
    assert prof["corner_center_ratio"] < 0.75
    rows = repo.quality.illumination_profiles()
    assert len(rows) == 1 and rows[0].store_path == prof["store_path"]
    assert (repo.root / prof["store_path"] / "zarr.json").is_file()

    flat, dark = load_profile(repo, "AS_09047_050428030001", 0)
    assert dark is None and flat.dtype == np.float32 and flat.shape == (512, 512)
    assert abs(float(flat.mean()) - 1.0) < 1e-3
    centre = float(flat[224:288, 224:288].mean())
    corners = [flat[:32, :32], flat[:32, -32:], flat[-32:, :32], flat[-32:, -32:]]
    assert centre > max(float(c.mean()) for c in corners)
    same, _ = load_profile(repo, "AS_09047_050428030001", rows[0].channel_name)
    np.testing.assert_array_equal(same, flat)


def test_profiles_replace_and_check_integrity(illum_repo: Repository) -> None:
    repo = illum_repo
    plate = "AS_09047_050428030001"
    first = estimate_profiles(repo, plate, dark=True)
    assert len(first) == 1 and first[0].has_dark
    flat, dark = load_profile(repo, plate, 0)
    assert dark is not None and dark.shape == flat.shape
    # the profile was replaced in place: one stored, no leftovers beside it
    folder = (repo.root / first[0].store_path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["0.ome.zarr"]
    with pytest.raises(NotFound, match="qc REPO --profiles"):
        load_profile(repo, plate, 3)
    with pytest.raises(NotFound, match="no plate named"):
        estimate_profiles(repo, "nope")
    # a profile that no longer matches its catalog record is refused
    row = repo.quality.illumination_profiles()[0]
    repo.quality.set_illumination_profile(plate, 0, row.channel_name, row.store_path, 72, "0" * 64)
    with pytest.raises(RepositoryError, match="SHA-256"):
        load_profile(repo, plate, 0)
    estimate_profiles(repo, plate)
    assert load_profile(repo, plate, 0)[1] is None


def test_z_stack_gets_its_best_focus_plane(data_root: Path, repo: Repository) -> None:
    dv = data_root / "vendor_formats" / "dv" / "mrc_toxo.dv"
    report = ingest(repo, [dv])
    assert report.ok and len(report.added) == 1
    img = report.added[0]
    assert img.shape[2] == 17
    metrics = repo.quality.metrics([img.id])[img.id]
    assert set(metrics) == set(range(img.shape[1]))
    for values in metrics.values():
        best = values[BEST_FOCUS_PLANE]
        assert best == int(best) and 0 <= best < 17
        assert np.isfinite(values["focus_plls"])
    assert report.qc[img.id] in ("pass", "warn", "fail")
