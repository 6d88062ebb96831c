"""Pixel sizes come only from what a file says in microscope terms (issue 12, item 1).

A TIFF resolution in dots per inch, or without a unit, is a print setting of the camera
software or image editor, not a calibration: ExampleFly's 150 dpi once became 169.3 µm per
pixel. The pixel size is then unknown (None); OME, ImageJ ``unit=micron``, MetaMorph and
LSM calibrations are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.io import open_sources

CP = "cellprofiler_examples"
FLY = f"{CP}/ExampleFly/images/01_POS002_D.TIF"  # 150 dpi
ILLUM = f"{CP}/ExampleIlluminationCorrection/images/AS_09047_050428030001_O01f00d2.TIF"  # 26x20 dpi
HUMAN = f"{CP}/ExampleHuman/images/AS_09125_050116030001_D03f00d0.tif"  # 72 dpi


def _size(path: Path) -> tuple[float | None, float | None, float | None]:
    with open_sources(path) as sources:
        return sources[0].physical_size


@pytest.mark.parametrize("rel", [FLY, ILLUM, HUMAN])
def test_dots_per_inch_is_not_a_pixel_size(shared_data: Path, rel: str) -> None:
    assert _size(shared_data / rel) == (None, None, None)


def test_ingested_dpi_tiff_has_no_pixel_size(shared_data: Path, tmp_path: Path) -> None:
    with Repository.init(tmp_path / "repo") as repo:
        report = ingest(repo, [shared_data / FLY, shared_data / ILLUM])
        assert report.ok and len(report.added) == 2
        for img in repo.images.all():
            assert (img.physical_size_x_um, img.physical_size_y_um) == (None, None), img.name
        # the stored OME-Zarr carries no invented scale either
        import zarr

        for img in repo.images.all():
            ms = zarr.open_group(str(repo.root / img.store_path), mode="r").attrs["ome"]
            scale = ms["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
            assert scale[-2:] == [1.0, 1.0]


def test_calibrated_files_keep_their_pixel_size(shared_data: Path, tmp_path: Path) -> None:
    vendor = shared_data / "vendor_formats"
    bbbc = sorted((shared_data / "bbbc039_nuclei_subset" / "images").glob("*.tif"))[0]
    files = [
        vendor / "tiff" / "aicsimageio_s_1_t_1_c_1_z_1.tiff",  # ImageJ, unit=micron
        vendor / "ome_tiff" / "aicsimageio_s_1_t_1_c_1_z_1.ome.tiff",  # OME
        vendor / "czi" / "aicsimageio_s_1_t_1_c_1_z_1.czi",
        bbbc,  # MetaMorph UIC1 tag: XCalibration 0.645 um (72 dpi in the resolution tags)
    ]
    with Repository.init(tmp_path / "repo") as repo:
        report = ingest(repo, files)
        assert report.ok
        by_source = {Path(i.sources[0].path).name: i for i in repo.images.all()}
        for f in files[:3]:
            img = by_source[f.name]
            assert img.physical_size_x_um == pytest.approx(1.0833, rel=1e-3), f.name
            assert img.physical_size_y_um == pytest.approx(1.0833, rel=1e-3), f.name
        assert by_source[bbbc.name].physical_size_x_um == pytest.approx(0.645)


def _tiff(path: Path, **kw: object) -> Path:
    tifffile.imwrite(path, np.zeros((8, 10), np.uint16), **kw)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"resolution": (150, 150), "resolutionunit": "INCH"}, None),
        ({"resolution": (4000, 4000), "resolutionunit": "INCH"}, None),  # even a high dpi
        ({"resolution": (1 / 0.65, 1 / 0.65), "resolutionunit": "NONE"}, None),
        ({"resolution": (1e4 / 0.65, 1e4 / 0.65), "resolutionunit": "CENTIMETER"}, 0.65),
        ({"resolution": (300 / 2.54, 300 / 2.54), "resolutionunit": "CENTIMETER"}, None),
        ({"resolution": (1 / 0.65, 1 / 0.65), "resolutionunit": "MICROMETER"}, 0.65),
        ({}, None),
    ],
)
def test_tiff_resolution_units(
    tmp_path: Path, kw: dict[str, object], expected: float | None
) -> None:
    x, y, _ = _size(_tiff(tmp_path / "a.tif", **kw))
    if expected is None:
        assert (x, y) == (None, None)
    else:
        assert x == pytest.approx(expected) and y == pytest.approx(expected)


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("micron", 0.5),
        ("um", 0.5),
        ("\\u00B5m", 0.5),
        ("nm", 0.5e-3),
        ("inch", None),
        ("pixel", None),
    ],
)
def test_imagej_units(tmp_path: Path, unit: str, expected: float | None) -> None:
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        np.zeros((3, 8, 10), np.uint16),
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"unit": unit, "spacing": 2.0, "axes": "ZYX"},
    )
    x, y, z = _size(path)
    if expected is None:
        assert (x, y, z) == (None, None, None)
    else:
        assert x == pytest.approx(expected) and y == pytest.approx(expected)
        assert z == pytest.approx(expected * 4)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_png_jpeg_bmp_density_is_not_a_pixel_size(tmp_path: Path, suffix: str) -> None:
    """PNG pHYs, JPEG JFIF density and BMP pixels-per-metre are display densities too."""
    from PIL import Image as PILImage

    path = tmp_path / f"a{suffix}"
    PILImage.fromarray(np.full((8, 10), 7, np.uint8)).save(path, dpi=(150, 150))
    with PILImage.open(path) as im:
        assert im.info.get("dpi")  # the density is in the file
    assert _size(path) == (None, None, None)
