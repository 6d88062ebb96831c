"""Fixtures of the quality tests: cached synthetic fields and the real image sets."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from quantscope.synth import SynthOptions, render_field


@lru_cache(maxsize=256)
def _render(
    size: int, seed: int, items: tuple[tuple[str, Any], ...]
) -> tuple[np.ndarray, np.ndarray]:
    image, nuclei, _ = render_field(
        SynthOptions(size=size, seed=seed, **dict(items)), np.random.default_rng(seed)
    )
    image.setflags(write=False)
    nuclei.setflags(write=False)
    return image, nuclei


@pytest.fixture(scope="session")
def synth_field() -> Callable[..., np.ndarray]:
    """``synth_field(size=256, seed=0, **knobs)``: a cached ``(C, Y, X)`` synthetic field.

    The seed fixes the cells; changing only optical knobs (blur, vignetting, saturation,
    snr) keeps the same cells.
    """

    def make(size: int = 256, seed: int = 0, **knobs: Any) -> np.ndarray:
        return _render(size, seed, tuple(sorted(knobs.items())))[0]

    return make


@pytest.fixture(scope="session")
def synth_nuclei() -> Callable[..., np.ndarray]:
    """``synth_nuclei(size=256, seed=0, **knobs)``: the nucleus labels of ``synth_field``."""

    def make(size: int = 256, seed: int = 0, **knobs: Any) -> np.ndarray:
        return _render(size, seed, tuple(sorted(knobs.items())))[1]

    return make


def _read_all(paths: list[Path]) -> list[np.ndarray]:
    return [tifffile.imread(p) for p in paths]


@pytest.fixture(scope="session")
def real_focus_sets(shared_data: Path) -> dict[str, dict[str, np.ndarray]]:
    """The three groups of real images: out of focus, in focus (z-plane 10), BBBC039.

    The BBBC006 ``*_10.png`` files are TIFFs in spite of their name (read with tifffile).
    """
    quality = shared_data / "image_quality"
    bbbc039 = shared_data / "bbbc039_nuclei_subset" / "images"
    groups = {
        "out_of_focus": sorted(quality.glob("00_*.tif"))
        + sorted((quality / "bbbc006_raw_fields").glob("*/*.tif")),
        "in_focus_z10": sorted(quality.glob("BBBC006_z_aligned__*_10.png")),
        "bbbc039": sorted(bbbc039.glob("*.tif")),
    }
    for name, paths in groups.items():
        if not paths:
            pytest.skip(f"real image set {name!r} not found under {shared_data}")
    return {
        name: {p.name: img for p, img in zip(paths, _read_all(paths), strict=True)}
        for name, paths in groups.items()
    }


@pytest.fixture(scope="session")
def illumination_example(shared_data: Path) -> list[np.ndarray]:
    """CellProfiler's ExampleIlluminationCorrection images (72 GFP fields, one plate row)."""
    folder = shared_data / "cellprofiler_examples" / "ExampleIlluminationCorrection" / "images"
    paths = sorted(folder.glob("*.TIF"))
    if not paths:
        pytest.skip(f"CellProfiler illumination example not found under {folder}")
    return _read_all(paths)
