"""Tests of quantscope.synth: determinism, files, exact ground truth, metadata, knobs, options."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

import quantscope.synth as synth
from quantscope.errors import InvalidInput
from quantscope.synth import (
    SynthOptions,
    SynthResult,
    parse_plate_shape,
    render_field,
    synth_plate,
)
from quantscope.synth._render import label_dtype
from quantscope.synth._tiff import FieldInfo, build_ome_xml, ome_xml

SMALL = {"size": 96, "fields": 2, "plate": "1x2"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _truth(result: SynthResult) -> list[dict[str, str]]:
    with result.truth_csv.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _render(seed: int = 0, **options: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return render_field(SynthOptions(**options), np.random.default_rng(seed))  # type: ignore[arg-type]


def test_public_api() -> None:
    assert sorted(synth.__all__) == sorted(
        [
            "SynthField",
            "SynthOptions",
            "SynthResult",
            "parse_plate_shape",
            "render_field",
            "synth_plate",
        ]
    )
    for name in synth.__all__:
        assert getattr(synth, name).__module__.startswith("quantscope.synth")


# -- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["per-channel", "multichannel"])
def test_same_seed_gives_byte_identical_files(tmp_path: Path, layout: str) -> None:
    a = synth_plate(tmp_path / "a", seed=7, layout=layout, **SMALL)
    b = synth_plate(tmp_path / "b", seed=7, layout=layout, **SMALL)
    files_a, files_b = _files(a.root), _files(b.root)
    assert files_a.keys() == files_b.keys()
    assert len(files_a) > 4
    for name in files_a:
        assert files_a[name] == files_b[name], name

    def summary(r: SynthResult) -> list[tuple[object, ...]]:
        return [
            (
                f.well,
                f.field,
                f.n_objects,
                f.nucleus_areas,
                f.cell_areas,
                f.empty,
                [p.relative_to(r.root) for p in f.images],
            )
            for f in r.fields
        ]

    assert summary(a) == summary(b)


def test_different_seed_gives_different_pixels(tmp_path: Path) -> None:
    a = synth_plate(tmp_path / "a", seed=1, **SMALL)
    b = synth_plate(tmp_path / "b", seed=2, **SMALL)
    pa = tifffile.imread(a.fields[0].images[0])
    pb = tifffile.imread(b.fields[0].images[0])
    assert pa.shape == pb.shape
    assert not np.array_equal(pa, pb)


def test_field_does_not_depend_on_plate_shape(tmp_path: Path) -> None:
    small = synth_plate(tmp_path / "small", plate="1x1", fields=1, size=64, seed=5)
    large = synth_plate(tmp_path / "large", plate="2x3", fields=2, size=64, seed=5)
    assert small.fields[0].images[0].read_bytes() == large.fields[0].images[0].read_bytes()
    assert small.fields[0].nuclei_labels.read_bytes() == large.fields[0].nuclei_labels.read_bytes()


def test_render_field_is_pure_and_reproducible() -> None:
    one = _render(seed=3, size=64)
    two = _render(seed=3, size=64)
    for x, y in zip(one, two, strict=True):
        np.testing.assert_array_equal(x, y)


# -- file set ------------------------------------------------------------------------------


def test_per_channel_file_set(tmp_path: Path) -> None:
    result = synth_plate(tmp_path, plate="2x3", fields=2, channels=("DAPI", "GFP"), size=32)
    names = {p.name for p in (tmp_path / "images").iterdir()}
    expected = {
        f"synth_{row}{col:02d}_s{site}_w{w}.ome.tif"
        for row in "AB"
        for col in (1, 2, 3)
        for site in (1, 2)
        for w in (1, 2)
    }
    assert names == expected
    assert len(result.fields) == 12
    assert len(result.image_files) == 24
    labels = {p.name for p in (tmp_path / "labels").iterdir()}
    assert labels == {
        f"synth_{row}{col:02d}_s{site}_{kind}.tif"
        for row in "AB"
        for col in (1, 2, 3)
        for site in (1, 2)
        for kind in ("nuclei", "cells")
    }
    assert (tmp_path / "truth.csv").is_file()
    manifest = json.loads((tmp_path / "synth.json").read_text())
    assert manifest["options"]["channels"] == ["DAPI", "GFP"]
    assert [f["n_objects"] for f in manifest["fields"]] == [f.n_objects for f in result.fields]
    first = result.fields[0]
    assert (first.well, first.row, first.column, first.field, first.site) == ("A01", 0, 0, 0, 1)
    assert first.images == (
        tmp_path / "images" / "synth_A01_s1_w1.ome.tif",
        tmp_path / "images" / "synth_A01_s1_w2.ome.tif",
    )
    last = result.fields[-1]
    assert (last.well, last.row, last.column, last.field) == ("B03", 1, 2, 1)
    assert not list(tmp_path.rglob("*.tmp"))


def test_multichannel_file_set(tmp_path: Path) -> None:
    result = synth_plate(
        tmp_path, plate="2x3", fields=2, size=32, layout="multichannel", plate_name="P-1"
    )
    names = {p.name for p in (tmp_path / "images").iterdir()}
    assert names == {
        f"P-1_{row}{col:02d}_s{site}.ome.tif"
        for row in "AB"
        for col in (1, 2, 3)
        for site in (1, 2)
    }
    assert len(result.image_files) == 12
    assert all(len(set(f.images)) == 1 and len(f.images) == 2 for f in result.fields)
    with tifffile.TiffFile(result.image_files[0]) as tif:
        assert tif.is_ome
        assert tif.series[0].shape == (2, 32, 32)
        assert tif.series[0].dtype == np.uint16


def test_rerun_with_fewer_fields_removes_stale_files(tmp_path: Path) -> None:
    synth_plate(tmp_path, plate="1x2", fields=2, size=32)
    result = synth_plate(tmp_path, plate="1x1", fields=1, size=32, layout="multichannel")
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["synth_A01_s1.ome.tif"]
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == [
        "synth_A01_s1_cells.tif",
        "synth_A01_s1_nuclei.tif",
    ]
    assert {r["well"] for r in _truth(result)} <= {"A01"}


# -- ground truth --------------------------------------------------------------------------


def test_truth_matches_label_images_exactly(tmp_path: Path) -> None:
    result = synth_plate(tmp_path, plate="1x2", fields=2, size=128, touching=0.8, density=1.5)
    rows = _truth(result)
    assert len(rows) == result.n_objects > 0
    for field in result.fields:
        nuclei = tifffile.imread(field.nuclei_labels)
        cells = tifffile.imread(field.cell_labels)
        assert nuclei.dtype == cells.dtype == np.uint16
        n = field.n_objects
        assert int(nuclei.max()) == int(cells.max()) == n
        nucleus_area = np.bincount(nuclei.ravel(), minlength=n + 1)[1:]
        cell_area = np.bincount(cells.ravel(), minlength=n + 1)[1:]
        assert (nucleus_area > 0).all()  # ids 1..N all present
        assert tuple(nucleus_area) == field.nucleus_areas
        assert tuple(cell_area) == field.cell_areas
        mine = [r for r in rows if r["well"] == field.well and int(r["field"]) == field.field]
        assert [int(r["object_id"]) for r in mine] == list(range(1, n + 1))
        assert [int(r["nucleus_area_px"]) for r in mine] == nucleus_area.tolist()
        assert [int(r["cell_area_px"]) for r in mine] == cell_area.tolist()
        assert all(r["plate"] == "synth" for r in mine)
        centroids = ndimage.center_of_mass(nuclei > 0, nuclei, range(1, n + 1))
        for r, (cy, cx) in zip(mine, centroids, strict=True):
            assert float(r["centroid_y"]) == pytest.approx(cy, abs=1e-3)
            assert float(r["centroid_x"]) == pytest.approx(cx, abs=1e-3)
        # Every nucleus pixel carries the same id in the cell image: cell k contains nucleus k.
        inside = nuclei > 0
        np.testing.assert_array_equal(cells[inside], nuclei[inside])
        assert (cell_area >= nucleus_area).all()
        # Each object is one connected region (a partition into objects, not fragments).
        for k, sl in enumerate(ndimage.find_objects(nuclei), start=1):
            assert sl is not None
            assert ndimage.label(nuclei[sl] == k)[1] == 1
        for k, sl in enumerate(ndimage.find_objects(cells), start=1):
            assert sl is not None
            assert ndimage.label(cells[sl] == k)[1] == 1


def test_touching_makes_nuclei_touch() -> None:
    def touching_pairs(nuclei: np.ndarray) -> int:
        right = (nuclei[:, 1:] != nuclei[:, :-1]) & (nuclei[:, 1:] > 0) & (nuclei[:, :-1] > 0)
        down = (nuclei[1:, :] != nuclei[:-1, :]) & (nuclei[1:, :] > 0) & (nuclei[:-1, :] > 0)
        return int(right.sum() + down.sum())

    apart = sum(touching_pairs(_render(seed=s, size=128)[1]) for s in range(3))
    packed = sum(touching_pairs(_render(seed=s, size=128, touching=1.0)[1]) for s in range(3))
    assert packed > 5 * max(apart, 1)


def test_object_count_scales_with_area_and_density() -> None:
    small = sum(int(_render(seed=s, size=128)[1].max()) for s in range(4))
    large = sum(int(_render(seed=s, size=256)[1].max()) for s in range(4))
    dense = sum(int(_render(seed=s, size=128, density=2.0)[1].max()) for s in range(4))
    assert 20 <= large / 4 <= 40  # about 30 nuclei per 256 x 256 px field
    assert 2.5 < large / small < 5.5
    assert dense > 1.5 * small


def test_label_dtype_widens_above_65535_objects() -> None:
    assert label_dtype(65535) is np.uint16
    assert label_dtype(65536) is np.uint32


# -- metadata ------------------------------------------------------------------------------


def test_bioio_reads_channel_name_and_pixel_size(tmp_path: Path) -> None:
    from bioio import BioImage

    result = synth_plate(tmp_path, plate="1x1", fields=1, size=32, pixel_size_um=0.325)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bioio's own deprecation chatter
        image = BioImage(result.fields[0].images[0])
        assert list(image.channel_names) == ["DAPI"]
        assert math.isclose(image.physical_pixel_sizes.X or 0.0, 0.325)
        assert math.isclose(image.physical_pixel_sizes.Y or 0.0, 0.325)
        assert image.dims.C == 1 and image.dims.Y == 32 and image.dims.X == 32
        np.testing.assert_array_equal(
            np.asarray(image.get_image_data("YX")), tifffile.imread(result.fields[0].images[0])
        )
        image = BioImage(synth_plate(tmp_path / "m", **SMALL, layout="multichannel").image_files[0])
        assert list(image.channel_names) == ["DAPI", "GFP"]


def test_ome_metadata(tmp_path: Path) -> None:
    import ome_types

    result = synth_plate(tmp_path, plate="2x3", fields=2, size=32, layout="multichannel")
    field = next(f for f in result.fields if f.well == "B02" and f.field == 1)
    ome = ome_types.from_tiff(field.images[0])
    image = ome.images[0]
    assert image.name == "synth_B02_s2"
    pixels = image.pixels
    assert [c.name for c in pixels.channels] == ["DAPI", "GFP"]
    assert (pixels.channels[0].excitation_wavelength, pixels.channels[0].emission_wavelength) == (
        405,
        450,
    )
    assert (pixels.channels[1].excitation_wavelength, pixels.channels[1].emission_wavelength) == (
        488,
        525,
    )
    assert pixels.physical_size_x == pytest.approx(0.65)
    assert pixels.physical_size_x_unit.value == "µm"
    assert pixels.type.value == "uint16"
    objective = ome.instruments[0].objectives[0]
    assert (objective.nominal_magnification, objective.lens_na) == (20.0, 0.75)
    plate = ome.plates[0]
    assert (plate.name, plate.rows, plate.columns) == ("synth", 2, 3)
    well = plate.wells[0]
    assert (well.row, well.column) == (1, 1)
    sample = well.well_samples[0]
    assert sample.index == 1
    assert sample.image_ref is not None and sample.image_ref.id == image.id
    assert plate.plate_acquisitions[0].maximum_field_count == 2
    # Per-channel files carry their channel but no plate (that comes from the file name).
    per_channel = synth_plate(tmp_path / "pc", plate="1x1", fields=1, size=32)
    ome = ome_types.from_tiff(per_channel.fields[0].images[1])
    assert [c.name for c in ome.images[0].pixels.channels] == ["GFP"]
    assert not ome.plates


def test_no_timestamps_in_metadata(tmp_path: Path) -> None:
    result = synth_plate(tmp_path, plate="1x1", fields=1, size=32, layout="multichannel")
    with tifffile.TiffFile(result.image_files[0]) as tif:
        tags = {tag.name for tag in tif.pages[0].tags}
        xml = tif.pages[0].description
    assert "DateTime" not in tags
    assert "AcquisitionDate" not in xml and "UUID" not in xml


@pytest.mark.parametrize(
    "kwargs",
    [
        {
            "name": "plate-7_B03_s2",
            "channels": ["DAPI", "GFP", "mCherry"],
            "channel_indices": [0, 1, 2],
            "size_y": 40,
            "size_x": 50,
            "dtype": "uint8",
            "pixel_size_um": 0.5,
            "plate": FieldInfo("plate-7", 8, 12, 1, 2, 1, 3),
        },
        {
            "name": "odd <&\"'> name",
            "channels": ["A&B", "Cy5", "Hoechst 33342", "unknown"],
            "channel_indices": [2, 3, 0, 1],
            "size_y": 16,
            "size_x": 16,
            "dtype": "uint16",
            "pixel_size_um": 1e-5,
            "plate": None,
        },
        {
            "name": "x",
            "channels": ["YFP"],
            "channel_indices": [0],
            "size_y": 16384,
            "size_x": 16384,
            "dtype": "uint16",
            "pixel_size_um": 0.1 + 0.2,
            "plate": FieldInfo("P.1_x-2", 16, 24, 15, 23, 99, 100),
        },
    ],
)
def test_fast_ome_xml_equals_ome_types_rendering(kwargs: dict[str, object]) -> None:
    import ome_types

    fast = ome_xml(**kwargs)  # type: ignore[arg-type]
    assert fast == build_ome_xml(**kwargs)  # type: ignore[arg-type]
    ome_types.from_xml(fast, validate=True)  # valid against the OME 2016-06 schema


def test_importing_synth_is_light() -> None:
    """quantscope.synth itself imports no heavy library; they load when first used."""
    import subprocess
    import sys

    code = (
        "import sys, quantscope\n"
        "heavy = ('ome_types', 'scipy', 'skimage', 'tifffile')\n"
        "before = {m for m in heavy if m in sys.modules}\n"
        "import quantscope.synth\n"
        "print(sorted({m for m in heavy if m in sys.modules} - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- knobs ---------------------------------------------------------------------------------


def test_blur_lowers_high_frequency_content() -> None:
    sharp = _render(seed=4, size=128, snr=4.0)[0][0].astype(float)
    blurred = _render(seed=4, size=128, snr=4.0, blur=3.0)[0][0].astype(float)
    assert ndimage.laplace(blurred).var() < 0.5 * ndimage.laplace(sharp).var()


def test_vignetting_darkens_corners() -> None:
    def corner_to_centre(vignetting: float) -> float:
        corners, centres = [], []
        for seed in range(6):
            image = _render(seed=seed, size=96, vignetting=vignetting)[0].astype(float)
            p = 16
            corners.append(
                np.mean(
                    [image[:, :p, :p], image[:, :p, -p:], image[:, -p:, :p], image[:, -p:, -p:]]
                )
            )
            centres.append(image[:, 48 - p // 2 : 48 + p // 2, 48 - p // 2 : 48 + p // 2].mean())
        return float(np.mean(corners) / np.mean(centres))

    assert corner_to_centre(0.7) < 0.75 * corner_to_centre(0.0)
    assert corner_to_centre(0.7) < 1.0


@pytest.mark.parametrize("dtype", ["uint16", "uint8"])
def test_saturation_clips_brightest_nuclei(dtype: str) -> None:
    top = np.iinfo(dtype).max
    for seed in range(3):
        image, nuclei, _ = _render(seed=seed, size=96, dtype=dtype)
        assert image.dtype == np.dtype(dtype)
        assert not (image == top).any()
        image, nuclei, _ = _render(seed=seed, size=96, dtype=dtype, saturation=0.3)
        clipped = image[0] == top
        assert clipped.any()
        assert (nuclei[clipped] > 0).mean() > 0.9  # the clipped pixels are nuclei


def test_empty_fraction_one_gives_empty_fields(tmp_path: Path) -> None:
    result = synth_plate(tmp_path, plate="1x2", fields=2, size=64, empty_fraction=1.0)
    assert all(f.n_objects == 0 and f.empty for f in result.fields)
    for field in result.fields:
        assert not tifffile.imread(field.nuclei_labels).any()
        assert not tifffile.imread(field.cell_labels).any()
        pixels = tifffile.imread(field.images[0])
        assert pixels.std() > 0  # background and noise remain
    assert _truth(result) == []


def test_empty_fraction_is_exact_over_the_plate(tmp_path: Path) -> None:
    result = synth_plate(tmp_path, plate="2x2", fields=2, size=48, empty_fraction=0.25)
    assert sum(f.empty for f in result.fields) == 2
    assert all(f.n_objects == 0 for f in result.fields if f.empty)


def test_lower_snr_is_noisier() -> None:
    def snr(value: float) -> float:
        image, nuclei, cells = _render(seed=6, size=128, snr=value)
        dapi = image[0].astype(float)
        background = ~ndimage.binary_dilation(cells > 0, iterations=6)
        inside = ndimage.binary_erosion(nuclei > 0, iterations=2)
        return float((dapi[inside].mean() - dapi[background].mean()) / dapi[background].std())

    assert snr(0.25) < 0.5 * snr(1.0)
    assert snr(1.0) < snr(4.0)


def test_extra_channels_render() -> None:
    image, _, cells = _render(seed=1, size=64, channels=("DAPI", "GFP", "Cy5", "mCherry"))
    assert image.shape == (4, 64, 64)
    for c in range(4):
        assert image[c][cells > 0].mean() > image[c][cells == 0].mean()


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("plate", "0x3"),
        ("plate", "2by3"),
        ("plate", "17x1"),
        ("fields", 0),
        ("size", 8),
        ("layout", "stacked"),
        ("dtype", "float32"),
        ("snr", 0.0),
        ("vignetting", 1.5),
        ("density", float("nan")),
        ("channels", ()),
        ("plate_name", "bad name/"),
    ],
)
def test_bad_options_raise_invalid_input(tmp_path: Path, option: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=option):
        SynthOptions(**{option: value})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=option):
        synth_plate(tmp_path, **{option: value})
    assert not (tmp_path / "images").exists()


def test_output_that_is_a_file_raises(tmp_path: Path) -> None:
    target = tmp_path / "plate"
    target.write_text("not a folder")
    with pytest.raises(InvalidInput, match="out"):
        synth_plate(target, plate="1x1", fields=1, size=16)


def test_unknown_option_raises(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="colour"):
        synth_plate(tmp_path, colour="red")


def test_options_are_normalized() -> None:
    options = SynthOptions(channels="DAPI,GFP", size=np.int64(64))  # type: ignore[arg-type]
    assert options.channels == ("DAPI", "GFP")
    assert type(options.size) is int
    assert options == SynthOptions(size=64)
    assert options.shape == (2, 3)


def test_overrides_replace_options(tmp_path: Path) -> None:
    base = SynthOptions(plate="1x1", fields=1, size=32, seed=9)
    result = synth_plate(tmp_path, base, dtype="uint8")
    assert result.options == SynthOptions(plate="1x1", fields=1, size=32, seed=9, dtype="uint8")
    assert tifffile.imread(result.fields[0].images[0]).dtype == np.uint8


def test_parse_plate_shape_messages() -> None:
    assert parse_plate_shape("2x3") == (2, 3)
    assert parse_plate_shape("16x24") == (16, 24)
    with pytest.raises(InvalidInput, match=r"'2by3'.*ROWSxCOLS"):
        parse_plate_shape("2by3")


@given(st.integers(1, 16), st.integers(1, 24))
def test_parse_plate_shape_round_trip(rows: int, cols: int) -> None:
    assert parse_plate_shape(f"{rows}x{cols}") == (rows, cols)


@given(st.text(max_size=8))
def test_parse_plate_shape_never_crashes(text: str) -> None:
    try:
        rows, cols = parse_plate_shape(text)
    except InvalidInput:
        return
    assert 1 <= rows <= 16 and 1 <= cols <= 24
