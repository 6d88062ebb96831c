"""QC of RGBA files (alpha is not a measurement; R = G = B is one grey channel) and the peers an
image without a plate is compared with (same instrument, channel, size and dtype, or one
dataset; groups too small for robust statistics are not outlier-tested)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import Result

import quantscope.qc._run as qc_run
from _qc_support import assert_same_metrics
from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.qc import alpha_channels, measure_image, run_qc, shared_process


def _cells(seed: int, shape: tuple[int, int] = (128, 160), noise: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(40.0, noise, shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(14):
        cy, cx = rng.uniform(10, shape[0] - 10), rng.uniform(10, shape[1] - 10)
        img += 150.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0**2))
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_png(path: Path, rgba: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, rgba)
    assert iio.imread(path).shape == rgba.shape  # a real RGBA PNG


def test_alpha_channel_names() -> None:
    assert alpha_channels(["R", "G", "B", "A"]) == {3}
    assert alpha_channels(["red", "green", "blue", "alpha"]) == {3}
    assert alpha_channels(["DAPI", "Alpha"]) == {1}
    assert alpha_channels(["R", "G", "B"]) == set()
    assert alpha_channels(["DAPI", "GFP", "RFP", "A"]) == set()  # "A" alone is a name, not alpha
    assert alpha_channels(["C0", "C1", "C2", "C3"]) == set()


@pytest.mark.parametrize("where", ["thread", "process"])
def test_rgba_png_with_constant_alpha_is_measured_on_its_colour_channels(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A grey RGBA PNG (R = G = B, alpha 255 everywhere) used to fail QC as 100 % saturated
    (the alpha channel at the dtype maximum) and warn as an empty field; now it is one grey
    channel, and alpha has no metrics and no flag."""
    if where == "thread":
        monkeypatch.setenv("QUANTSCOPE_QC_PROCESS", "0")
    else:
        proc = shared_process()
        if proc is None or not proc.wait_ready(60):
            pytest.skip("no measuring process on this platform")
        import quantscope.qc._process as qp

        monkeypatch.setattr(qp, "START_AFTER_IMAGES", 0)
    src = tmp_path / "in"
    src.mkdir()
    grey = _cells(1)
    _write_png(src / "grey.png", np.dstack([grey, grey, grey, np.full_like(grey, 255)]))
    # a dim, noisy grey field: its flags must be reported once, for the grey channel
    dim = _cells(2, noise=30.0) // 4
    _write_png(src / "dim.png", np.dstack([dim, dim, dim, np.full_like(dim, 255)]))
    # a colour image: three different channels, each evaluated on its own
    colour = np.dstack([_cells(3), _cells(4), _cells(5), np.full_like(grey, 255)])
    _write_png(src / "colour.png", colour)
    report = ingest(repo, [src])
    assert report.ok and len(report.added) == 3, report.failed
    images = {img.name: img for img in repo.images.all()}
    assert [c.name for c in images["grey"].channels] == ["R", "G", "B", "A"]
    stored = repo.quality.metrics()
    for img in images.values():
        assert set(stored[img.id]) == {0, 1, 2}  # no metrics for alpha
        assert_same_metrics(stored[img.id], measure_image(repo.root / img.store_path, img))
    status = repo.quality.status()
    grey_status, grey_reasons = status[images["grey"].id]
    assert grey_status == "pass", grey_reasons
    assert not any("saturation" in r for r in grey_reasons)
    dim_status, dim_reasons = status[images["dim"].id]
    assert dim_status in ("warn", "fail")
    assert dim_reasons and all(r.startswith("ch R=G=B: ") for r in dim_reasons), dim_reasons
    assert len(set(dim_reasons)) == len(dim_reasons)
    # colour channels differ: none is merged with another
    colour_reasons = status[images["colour"].id][1]
    assert not any("=" in r.split(":")[0] for r in colour_reasons)


def test_identical_channels_are_evaluated_once() -> None:
    m = {"snr": 3.0, "focus_plls": float("nan")}
    other = {"snr": 3.5, "focus_plls": float("nan")}
    assert qc_run.merged_channels({0: m, 1: dict(m), 2: dict(m)}) == {0: [0, 1, 2]}
    assert qc_run.merged_channels({0: m, 1: other, 2: dict(m)}) == {0: [0, 2], 1: [1]}
    assert qc_run.merged_channels({}) == {}


# ------------------------------------------------------------------------------------ peers


def _blurred(seed: int, shape: tuple[int, int]) -> np.ndarray:
    from scipy import ndimage

    sharp = _cells(seed, shape).astype(np.float64) * 10
    return np.clip(ndimage.gaussian_filter(sharp, 2.5) + 100, 0, 65535).astype(np.uint16)


def _sharp(seed: int, shape: tuple[int, int]) -> np.ndarray:
    return (_cells(seed, shape).astype(np.uint16) * 10) + 100


def test_loose_images_are_compared_only_with_images_like_them(
    tmp_path: Path, repo: Repository
) -> None:
    """Nine sharp 16-bit fields of one folder and one mildly blurred one: the blurred one is
    an outlier among its peers. Ten unrelated 8-bit PNGs of another size from another folder
    are no peers of theirs (before, all 20 loose images formed one group), and a group of
    three images is too small to be outlier-tested."""
    a = tmp_path / "scope_a"
    a.mkdir()
    for i in range(9):
        tifffile.imwrite(a / f"sharp{i}.tif", _sharp(10 + i, (128, 160)))
    tifffile.imwrite(a / "blurred.tif", _blurred(30, (128, 160)))
    b = tmp_path / "other_lab"
    b.mkdir()
    import imageio.v3 as iio

    for i in range(10):
        iio.imwrite(b / f"other{i}.png", _cells(50 + i, (96, 96)))
    c = tmp_path / "few"
    c.mkdir()
    for i in range(2):
        tifffile.imwrite(c / f"few{i}.tif", _sharp(70 + i, (64, 64)))
    tifffile.imwrite(c / "few_blurred.tif", _blurred(72, (64, 64)))
    report = ingest(repo, [a, b, c])
    assert report.ok and len(report.added) == 23, report.failed
    by_name = {img.name: img.id for img in repo.images.all()}
    peers = repo.quality.peers()
    groups = {name: qc_run.peer_group(peers[i], 0) for name, i in by_name.items()}
    assert len({groups[f"sharp{i}"] for i in range(9)} | {groups["blurred"]}) == 1
    assert len({groups[f"other{i}"] for i in range(10)}) == 1
    assert groups["sharp0"] != groups["other0"] != groups["few0"]
    result = run_qc(repo)
    blurred = result.images[by_name["blurred"]]
    assert any("outlier" in r and "focus" in r for r in blurred.reasons), blurred.reasons
    for i in range(10):
        other = result.images[by_name[f"other{i}"]]
        assert not any("outlier" in r for r in other.reasons), other.reasons
    # the group of 3 is below the minimum (8): no outlier test, and the report says so
    few = result.images[by_name["few_blurred"]]
    assert not any("outlier" in r for r in few.reasons), few.reasons
    assert result.small_groups == {by_name[n]: 3 for n in ("few0", "few1", "few_blurred")}


def test_cli_says_which_images_had_too_few_peers(
    tmp_path: Path, repo: Repository, cli: Callable[..., Result]
) -> None:
    src = tmp_path / "few"
    src.mkdir()
    for i in range(3):
        tifffile.imwrite(src / f"few{i}.tif", _sharp(80 + i, (64, 64)))
    assert ingest(repo, [src]).ok
    root = repo.root
    repo.close()
    doc = json.loads(cli("qc", root, "--json").stdout)
    assert doc["outlier_min_group"] == 8 and len(doc["small_groups"]) == 3
    text = " ".join(cli("qc", root).stdout.split())
    assert "3 images not compared with peers" in text and "fewer than 8 images" in text


def test_an_explicit_dataset_makes_loose_images_peers(tmp_path: Path, repo: Repository) -> None:
    """Images the user put in one dataset are compared with each other whatever their
    folders; without the dataset the two folders are separate groups of 5 (too small)."""
    folders = [tmp_path / "day1", tmp_path / "day2"]
    for k, folder in enumerate(folders):
        folder.mkdir()
        for i in range(5):
            tifffile.imwrite(folder / f"d{k}_{i}.tif", _sharp(100 + 10 * k + i, (128, 160)))
    tifffile.imwrite(folders[1] / "d1_blurred.tif", _blurred(140, (128, 160)))
    assert ingest(repo, folders).ok
    ids = {img.name: img.id for img in repo.images.all()}
    before = run_qc(repo)
    assert not any("outlier" in r for r in before.images[ids["d1_blurred"]].reasons)
    assert set(before.small_groups) == set(ids.values())
    repo.annotations.add_to_dataset("screen", list(ids.values()))
    after = run_qc(repo, recompute=False)
    assert any("outlier" in r for r in after.images[ids["d1_blurred"]].reasons)
    assert after.small_groups == {}
