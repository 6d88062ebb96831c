"""Plates: ImageXpress names, a user pattern and OME plate metadata group images into an NGFF
HCS plate; channel files of one field merge into one multichannel image in channel order."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from quantscope.catalog import Repository
from quantscope.ingestion import IngestReport, ingest, verify
from quantscope.model import Image, parse_well


def _stored(repo: Repository, image: Image, level: int = 0) -> np.ndarray:
    return np.asarray(zarr.open_group(str(repo.root / image.store_path), mode="r")[str(level)][:])


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ BBBC039
IXM = re.compile(r"^(?P<plate>IXMtest)_(?P<well>[A-P]\d\d)_s(?P<site>\d)_w1[0-9A-F-]{36}\.tif$")


@pytest.fixture(scope="module")
def bbbc(
    bbbc039_images: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Repository, IngestReport]]:
    repo = Repository.init(tmp_path_factory.mktemp("bbbc") / "repo")
    report = ingest(repo, [bbbc039_images], jobs=2)
    yield repo, report
    repo.close()


def test_imagexpress_names_place_all_40_images_on_one_plate(
    bbbc: tuple[Repository, IngestReport], bbbc039_images: Path
) -> None:
    repo, report = bbbc
    assert report.ok and not report.skipped and len(report.added) == 40
    images = repo.images.all()
    assert len(images) == 40
    for img in images:
        (src,) = img.sources
        m = IXM.match(Path(src.path).name)
        assert m, src.path
        row, col = parse_well(m["well"])
        pos = img.position
        assert pos is not None
        assert (pos.plate, pos.row, pos.column, pos.field) == (
            "IXMtest",
            row,
            col,
            int(m["site"]),  # the 1-based site number of the file name
        )
        assert pos.well == m["well"]
        row_name, col_name = m["well"][0], m["well"][1:]
        # fields are the folders 0..n-1 of their well (what NGFF readers expect)
        well_prefix = f"plates/IXMtest.ome.zarr/{row_name}/{col_name}/"
        assert img.store_path.startswith(well_prefix)
        assert img.store_path[len(well_prefix) :].isdigit()
        assert img.shape == (1, 1, 1, 520, 696) and img.dtype == "uint16"
        assert img.name == f"IXMtest_{m['well']}_s{m['site']}"
    assert len({(i.position.row, i.position.column, i.position.field) for i in images}) == 40
    summary = repo.summary()
    assert (summary["images"], summary["plates"]) == (40, 1)
    assert summary["wells"] == len({i.position.well for i in images})


def test_plate_is_an_ngff_hcs_layout(bbbc: tuple[Repository, IngestReport]) -> None:
    repo, _ = bbbc
    images = repo.images.all()
    root = repo.root / "plates" / "IXMtest.ome.zarr"
    plate = _json(root / "zarr.json")["attributes"]["ome"]["plate"]
    assert plate["name"] == "IXMtest"
    wells = {w["path"] for w in plate["wells"]}
    assert wells == {f"{i.position.well[0]}/{i.position.well[1:]}" for i in images}
    rows = [r["name"] for r in plate["rows"]]
    cols = [c["name"] for c in plate["columns"]]
    for w in plate["wells"]:
        r, c = w["path"].split("/")
        assert rows[w["rowIndex"]] == r and cols[w["columnIndex"]] == c
        attrs = _json(root / r / c / "zarr.json")["attributes"]
        fields = [im["path"] for im in attrs["ome"]["well"]["images"]]
        in_well = [i for i in images if i.position.well == f"{r}{c}"]
        assert fields == [str(k) for k in range(len(in_well))]  # 0..n-1 in every well
        # the site numbers are recorded beside the folders, as the catalog has them
        assert attrs["quantscope"]["sites"] == {
            i.store_path.rsplit("/", 1)[1]: i.position.field for i in in_well
        }
    # each field is an NGFF image readable with zarr through the plate hierarchy
    group = zarr.open_group(str(root), mode="r")
    img = images[0]
    rel = img.store_path.split("IXMtest.ome.zarr/", 1)[1]
    assert group[f"{rel}/0"].shape == img.shape


def test_plate_pixels_equal_the_source_files(bbbc: tuple[Repository, IngestReport]) -> None:
    repo, _ = bbbc
    images = repo.images.all()
    for img in images[::9]:  # a spread of wells; every image is covered by verify()
        source = tifffile.imread(img.sources[0].path)
        np.testing.assert_array_equal(_stored(repo, img)[0, 0, 0], source)
        # level 1 is a 2x2 mean of level 0
        half = _stored(repo, img, 1)[0, 0, 0]
        assert half.shape == (260, 348)
        assert abs(float(half.mean()) - float(source.mean())) < 1.0
    assert verify(repo) == []


def test_reingesting_the_plate_is_a_noop_that_says_so(
    bbbc: tuple[Repository, IngestReport], bbbc039_images: Path
) -> None:
    repo, _ = bbbc
    before = (repo.images.all(), repo.images.stored_files(), repo.summary())
    report = ingest(repo, [bbbc039_images])
    assert report.ok
    assert report.added == []
    assert len(report.skipped) == 40
    assert all("already ingested" in s.message for s in report.skipped)
    assert report.cleaned == []
    assert (repo.images.all(), repo.images.stored_files(), repo.summary()) == before


# ------------------------------------------------------------------------------ per-channel files
def test_user_pattern_merges_channel_files_in_natural_channel_order(
    repo: Repository,
    tmp_path: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    # w10 is not an ImageXpress wavelength (one digit), so only the pattern groups these files
    folder = tmp_path / "run"
    truth: dict[tuple[str, int], list[np.ndarray]] = {}
    seed = 0
    for well in ("B03", "C11"):
        for site in (1, 2):
            for token in ("10", "2", "1"):  # written out of order on purpose
                seed += 1
                arr = pixels(seed)
                write_tiff(folder / f"screen7_{well}_s{site}_w{token}.tif", arr)
                truth.setdefault((well, site), []).append((int(token), arr))
    report = ingest(repo, [folder], pattern="{plate}_{well}_s{field}_w{channel}")
    assert report.ok, report.failed
    assert len(report.added) == 4
    images = repo.images.all()
    assert len(images) == 4
    for img in images:
        pos = img.position
        assert pos is not None and pos.plate == "screen7"
        assert img.shape == (1, 3, 1, 40, 56)
        assert [c.name for c in img.channels] == ["w1", "w2", "w10"]
        assert [Path(s.path).name.rsplit("_w", 1)[1] for s in img.sources] == [
            "1.tif",
            "2.tif",
            "10.tif",
        ]
        assert [s.channel_offset for s in img.sources] == [0, 1, 2]
        stored = _stored(repo, img)
        expected = [a for _, a in sorted(truth[(pos.well, pos.field)], key=lambda t: t[0])]
        for c, arr in enumerate(expected):
            np.testing.assert_array_equal(stored[0, c, 0], arr)
        # sites 1 and 2 of each well are its field folders 0 and 1
        assert (
            img.store_path
            == f"plates/screen7.ome.zarr/{pos.row_name}/{pos.column_name}/{pos.field - 1}"
        )
    assert verify(repo) == []


def test_without_pattern_non_imagexpress_names_are_separate_images(
    repo: Repository,
    tmp_path: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    write_tiff(tmp_path / "in" / "screen7_B03_s1_w10.tif", pixels(1))
    report = ingest(repo, [tmp_path / "in"])
    assert report.ok
    (img,) = repo.images.all()
    assert img.position is None and img.store_path.startswith("images/")


def test_ome_tiff_channel_files_merge_with_their_channel_names(
    repo: Repository,
    tmp_path: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    dapi, gfp = pixels(1), pixels(2)
    write_tiff(tmp_path / "in" / "P2_H12_s3_w2.ome.tif", gfp, channels=["GFP"])
    write_tiff(tmp_path / "in" / "P2_H12_s3_w1.ome.tif", dapi, channels=["DAPI"])
    report = ingest(repo, [tmp_path / "in"])  # ImageXpress-like names: no pattern needed
    assert report.ok, report.failed
    (img,) = repo.images.all()
    assert img.position is not None
    assert (img.position.plate, img.position.well, img.position.field) == ("P2", "H12", 3)
    assert [c.name for c in img.channels] == ["DAPI", "GFP"]
    assert img.physical_size_x_um == pytest.approx(0.65)
    stored = _stored(repo, img)
    np.testing.assert_array_equal(stored[0, 0, 0], dapi)
    np.testing.assert_array_equal(stored[0, 1, 0], gfp)


def test_two_files_claiming_the_same_channel_fail_with_a_clear_message(
    repo: Repository,
    tmp_path: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    write_tiff(tmp_path / "a" / "P_A01_s1_w1.tif", pixels(1))
    write_tiff(tmp_path / "b" / "P_A01_s1_w1.tif", pixels(2))
    write_tiff(tmp_path / "b" / "P_A02_s1_w1.tif", pixels(3))
    report = ingest(repo, [tmp_path / "a", tmp_path / "b"])
    (failure,) = report.failed
    assert "P_A01_s1_w1.tif" in failure.path
    assert "same channel" in failure.message and "A01" in failure.message
    assert [i.position.well for i in repo.images.all()] == ["A02"]  # the rest proceeds


def test_channel_files_of_different_shapes_are_not_merged(
    repo: Repository,
    tmp_path: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    write_tiff(tmp_path / "P_A01_s1_w1.tif", pixels(1))
    write_tiff(tmp_path / "P_A01_s1_w2.tif", pixels(2, shape=(30, 56)))
    report = ingest(repo, [tmp_path / "P_A01_s1_w1.tif", tmp_path / "P_A01_s1_w2.tif"])
    (failure,) = report.failed
    assert "differ in shape" in failure.message
    assert repo.images.all() == []


def test_adding_a_field_to_an_existing_plate_updates_the_well_group(
    repo: Repository,
    tmp_path: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    write_tiff(tmp_path / "P_A01_s1_w1.tif", pixels(1))
    assert ingest(repo, [tmp_path / "P_A01_s1_w1.tif"]).ok
    write_tiff(tmp_path / "P_A01_s2_w1.tif", pixels(2))
    write_tiff(tmp_path / "P_B02_s1_w1.tif", pixels(3))
    assert ingest(repo, [tmp_path / "P_A01_s2_w1.tif", tmp_path / "P_B02_s1_w1.tif"]).ok
    root = repo.root / "plates" / "P.ome.zarr"
    well = _json(root / "A" / "01" / "zarr.json")["attributes"]["ome"]["well"]
    assert [im["path"] for im in well["images"]] == ["0", "1"]
    plate = _json(root / "zarr.json")["attributes"]["ome"]["plate"]
    assert {w["path"] for w in plate["wells"]} == {"A/01", "B/02"}
    assert plate["field_count"] == 2


# ------------------------------------------------------------------------------ quantscope.synth
synth = pytest.importorskip("quantscope.synth", reason="quantscope.synth is not available")


def test_synth_per_channel_plate_merges_channels(repo: Repository, tmp_path: Path) -> None:
    opts = synth.SynthOptions(
        plate="1x2", fields=2, channels=("DAPI", "GFP"), size=64, seed=0, layout="per-channel"
    )
    result = synth.synth_plate(tmp_path / "synth", opts)
    report = ingest(repo, [tmp_path / "synth" / "images"], jobs=2)
    assert report.ok, report.failed
    images = repo.images.all()
    assert len(images) == len(result.fields) == 4
    by_pos = {(i.position.row, i.position.column, i.position.field): i for i in images}
    for f in result.fields:
        img = by_pos[(f.row, f.column, f.site)]
        assert img.position.plate == f.plate
        assert [c.name for c in img.channels] == ["DAPI", "GFP"]
        assert img.physical_size_x_um == pytest.approx(0.65)
        stored = _stored(repo, img)
        assert len(f.images) == 2
        for c, path in enumerate(f.images):
            np.testing.assert_array_equal(stored[0, c, 0], tifffile.imread(path))
    assert verify(repo) == []


def _synth_multichannel(repo: Repository, tmp_path: Path, fields: int) -> tuple:
    opts = synth.SynthOptions(
        plate="1x2", fields=fields, channels=("DAPI", "GFP"), size=64, seed=3, layout="multichannel"
    )
    result = synth.synth_plate(tmp_path / "synth", opts)
    report = ingest(repo, [tmp_path / "synth" / "images"])
    return result, report


def _check_multichannel(repo: Repository, result: object, report: IngestReport) -> None:
    assert report.ok, report.failed
    images = repo.images.all()
    assert len(images) == len(result.fields)
    by_pos = {(i.position.row, i.position.column, i.position.field): i for i in images}
    for f in result.fields:
        img = by_pos[(f.row, f.column, f.site)]
        assert img.position.plate == f.plate
        assert [c.name for c in img.channels] == ["DAPI", "GFP"]
        source = tifffile.imread(f.images[0])
        np.testing.assert_array_equal(_stored(repo, img)[0, :, 0], source)
        assert img.store_path.startswith(f"plates/{f.plate}.ome.zarr/")


def test_synth_multichannel_plate_is_placed_by_ome_plate_metadata(
    repo: Repository, tmp_path: Path
) -> None:
    # one field per well: file names "synth_A01_s1.ome.tif" carry no channel, the OME Plate does
    result, report = _synth_multichannel(repo, tmp_path, fields=1)
    _check_multichannel(repo, result, report)


def test_synth_multichannel_plate_with_several_fields_per_well(
    repo: Repository, tmp_path: Path
) -> None:
    # each file describes one field: OME WellSample/@Index (0, 1) is the field
    result, report = _synth_multichannel(repo, tmp_path, fields=2)
    _check_multichannel(repo, result, report)


# ------------------------------------------------------------------------------ NGFF readers
def test_ome_zarr_py_plate_node_shows_every_well_with_our_pixels(
    bbbc: tuple[Repository, IngestReport],
) -> None:
    """ome-zarr-py (napari-ome-zarr's reader) stitches the first field of every well into one
    plate image, taking the field paths of the first well for all wells. Before fields were
    stored as 0..n-1 in each well, only the 2 wells holding site 1 showed pixels."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    repo, _ = bbbc
    root = repo.root / "plates" / "IXMtest.ome.zarr"
    node = next(iter(Reader(parse_url(str(root)))()))
    plate = node.metadata["metadata"]["plate"]
    grid = np.asarray(node.data[0])
    h, w = 520, 696
    assert grid.shape[-2:] == (len(plate["rows"]) * h, len(plate["columns"]) * w)
    images = repo.images.all()
    wells = {i.position.well for i in images}
    shown = 0
    for well in plate["wells"]:
        r, c = well["rowIndex"], well["columnIndex"]
        tile = grid[0, 0, 0, r * h : (r + 1) * h, c * w : (c + 1) * w]
        first = next(
            i
            for i in images
            if i.position.well == well["path"].replace("/", "") and i.store_path.endswith("/0")
        )
        np.testing.assert_array_equal(tile, _stored(repo, first)[0, 0, 0])
        shown += bool(tile.any())
    assert shown == len(wells) == len(plate["wells"])


@pytest.mark.slow
def test_ome_zarr_models_cli_validates_the_plate_without_warnings(
    bbbc: tuple[Repository, IngestReport],
) -> None:
    import subprocess
    import sys

    repo, _ = bbbc
    cli = Path(sys.executable).with_name("ome-zarr-models")
    root = repo.root / "plates" / "IXMtest.ome.zarr"
    well = next(p.parent for p in sorted(root.glob("*/*/zarr.json")))
    for group in (root, well, well / "0"):
        done = subprocess.run(
            [str(cli), "validate", str(group)],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "PYTHONWARNINGS": "error"},
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warn" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
        assert "valid" in done.stdout.lower(), done.stdout
