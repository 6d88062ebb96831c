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
        ("QYX", (7, 4, 5), {"Q": 2, "Y": 3, "X": 4}),  # plain multipage: planes along z
        ("TZCYX", (2, 3, 4, 5, 6), {"T": 0, "Z": 2, "C": 1, "Y": 3, "X": 4}),
        ("IQYX", (2, 3, 4, 5), {"I": 2, "Q": 0, "Y": 3, "X": 4}),
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
