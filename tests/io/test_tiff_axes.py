"""TIFF axes of every shape map onto (t, c, z, y, x) the way a microscopist expects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from quantscope.errors import UnsupportedFormat
from quantscope.io import open_sources
from quantscope.io._sources import _tiff_axis_plan


@pytest.mark.parametrize(
    ("axes", "shape", "expected"),
    [
        ("YX", (4, 5), {"Y": 3, "X": 4}),
        ("YXS", (4, 5, 3), {"Y": 3, "X": 4, "S": 1}),  # RGB samples are channels
        # plain multipage, pages of unknown meaning: time points, as Bio-Formats reads them
        ("QYX", (7, 4, 5), {"Q": 0, "Y": 3, "X": 4}),
        ("TZCYX", (2, 3, 4, 5, 6), {"T": 0, "Z": 2, "C": 1, "Y": 3, "X": 4}),
        ("IQYX", (2, 3, 4, 5), {"I": 0, "Q": 2, "Y": 3, "X": 4}),  # outer T, inner Z
        ("QqYX", (20, 5, 4, 5), {"Q": 0, "q": 2, "Y": 3, "X": 4}),
        ("ZQYX", (3, 7, 4, 5), {"Z": 2, "Q": 0, "Y": 3, "X": 4}),
        ("CYXS", (1, 4, 5, 3), {"C": 5, "Y": 3, "X": 4, "S": 1}),
    ],
)
def test_axis_plan(axes: str, shape: tuple[int, ...], expected: dict[str, int]) -> None:
    assert _tiff_axis_plan(axes, shape, Path("x.tif")) == expected


def test_channels_and_rgb_samples_together_are_refused() -> None:
    with pytest.raises(UnsupportedFormat, match="RGB"):
        _tiff_axis_plan("CYXS", (2, 4, 5, 3), Path("x.tif"))


def test_rgb_tiff_reads_as_three_channels(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with open_sources(tmp_path / "rgb.tif") as (src,):
        assert src.shape == (1, 3, 1, 20, 30)
        for c in range(3):
            assert np.array_equal(src.read_plane(0, c, 0), rgb[..., c])


# ------------------------------------------------- pages of unknown meaning (issue 12, item 10)
def test_movie_without_axis_metadata_is_time_with_a_note(vendor_dir: Path) -> None:
    """pims_stuck.tif: a 5-frame particle-tracking movie, tifffile axes QYX. It was stored
    as 5 z planes; now as 5 time points, and the source says so."""
    path = vendor_dir / "tiff" / "pims_stuck.tif"
    with tifffile.TiffFile(path) as tf:
        assert tf.series[0].axes == "QYX"
        ref = tf.asarray()
    with open_sources(path) as sources:
        s = sources[0]
        assert s.shape == (5, 1, 1, 512, 512)
        assert s.note is not None and "time points (T)" in s.note and "QYX" in s.note
        np.testing.assert_array_equal(s.read_plane(3, 0, 0), ref[3])


def test_tzyx_without_axis_metadata_is_t_outer_z_inner(shared_data: Path) -> None:
    """Fluo-N3DH-CHO (20 time points x 5 z planes, tifffile axes QQYX): both unknown axes
    were folded into 100 z planes; now T=20, Z=5 with every plane where it belongs."""
    path = shared_data / "timelapse" / "Fluo-N3DH-CHO_02_img.tif"
    ref = tifffile.imread(path)
    assert ref.shape == (20, 5, 443, 512)
    with open_sources(path) as sources:
        s = sources[0]
        assert s.shape == (20, 1, 5, 443, 512)
        for t, z in ((0, 0), (7, 3), (19, 4)):
            np.testing.assert_array_equal(s.read_plane(t, 0, z), ref[t, z])


@pytest.mark.parametrize(
    ("kind", "shape", "noted"),
    [
        ("plain pages", (5, 1, 1, 8, 10), True),
        ("tifffile shaped, axes ZYX", (1, 1, 5, 8, 10), False),
        ("tifffile shaped, axes TYX", (5, 1, 1, 8, 10), False),
        ("ImageJ stack, frame interval", (5, 1, 1, 8, 10), False),
        ("ImageJ stack, z spacing", (1, 1, 5, 8, 10), False),
        ("ImageJ stack, nothing", (5, 1, 1, 8, 10), True),
        ("ImageJ hyperstack, slices", (1, 1, 5, 8, 10), False),
        ("OME-TIFF, Z", (1, 1, 5, 8, 10), False),
    ],
)
def test_t_or_z_from_metadata(
    tmp_path: Path, kind: str, shape: tuple[int, ...], noted: bool
) -> None:
    data = np.arange(5 * 8 * 10, dtype=np.uint16).reshape(5, 8, 10)
    path = tmp_path / ("a.ome.tif" if kind.startswith("OME") else "a.tif")
    ij = "ImageJ=1.54f\nimages=5\n"
    if kind == "plain pages":
        with tifffile.TiffWriter(path) as w:
            for plane in data:
                w.write(plane, contiguous=False, metadata=None)
    elif kind.startswith("tifffile shaped"):
        tifffile.imwrite(path, data, metadata={"axes": kind[-3:]})
    elif kind == "ImageJ stack, frame interval":
        tifffile.imwrite(path, data, description=ij + "finterval=0.5\n", metadata=None)
    elif kind == "ImageJ stack, z spacing":
        tifffile.imwrite(path, data, description=ij + "spacing=2.0\nunit=micron\n", metadata=None)
    elif kind == "ImageJ stack, nothing":
        tifffile.imwrite(path, data, description=ij, metadata=None)
    elif kind == "ImageJ hyperstack, slices":
        tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})
    else:
        tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZYX"})
    with open_sources(path) as sources:
        s = sources[0]
        assert s.shape == shape, kind
        assert (s.note is not None) is noted, (kind, s.note)
        t_or_z = (4, 0, 0) if shape[0] == 5 else (0, 0, 4)
        np.testing.assert_array_equal(s.read_plane(*t_or_z), data[4])
