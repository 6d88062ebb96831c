"""Fixtures of the ingest tests: real data in ../shared/data, fresh repositories, small TIFFs.

Real files are read in place (never copied into the repository). Synthetic inputs are written
with tifffile into ``tmp_path`` so these tests do not depend on any other part of quantscope.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile


def _write_tiff(
    path: Path,
    array: np.ndarray,
    channels: Sequence[str] | None = None,
    pixel_size_um: float | None = 0.65,
) -> Path:
    """Write ``array`` (``(y, x)`` or ``(c, y, x)``) as OME-TIFF when ``channels`` is given,
    else as a plain TIFF without any metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if channels is None:
        tifffile.imwrite(path, array)
        return path
    data = array if array.ndim == 3 else array[np.newaxis]
    meta: dict[str, Any] = {"axes": "CYX", "Channel": {"Name": list(channels)}}
    if pixel_size_um is not None:
        meta.update(PhysicalSizeX=pixel_size_um, PhysicalSizeY=pixel_size_um)
    tifffile.imwrite(path, data, ome=True, metadata=meta)
    return path


@pytest.fixture
def write_tiff() -> Callable[..., Path]:
    """``write_tiff(path, array, channels=None, pixel_size_um=0.65)``; see :func:`_write_tiff`."""
    return _write_tiff


def _pixels(seed: int, shape: tuple[int, ...] = (40, 56), dtype: str = "uint16") -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


@pytest.fixture
def pixels() -> Callable[..., np.ndarray]:
    """``pixels(seed, shape=(40, 56), dtype="uint16")``: distinct random test pixels."""
    return _pixels
