"""Fixtures of the benchmark tests: BBBC039 labels, their eroded and shifted copies, and small
label folders written with tifffile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _bench_helpers import erode_labels, shift_labels


@pytest.fixture(scope="session")
def bbbc_variants(bbbc039: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``variant(kind)``: a folder of modified copies of the BBBC039 labels, made once:
    ``eroded1``, ``eroded2`` (per-object erosion by 1 / 2 px), ``shift1``, ``shift3``,
    ``shift6`` (moved diagonally by that many px)."""
    made: dict[str, Path] = {}
    base = tmp_path_factory.mktemp("bbbc_variants")

    def variant(kind: str) -> Path:
        if kind in made:
            return made[kind]
        out = base / kind
        out.mkdir()
        for f in sorted((bbbc039 / "labels").glob("*.tif")):
            lab = tifffile.imread(f)
            if kind.startswith("eroded"):
                new = erode_labels(lab, int(kind[6:]))
            elif kind.startswith("shift"):
                k = int(kind[5:])
                new = shift_labels(lab, k, k)
            else:  # pragma: no cover
                raise ValueError(kind)
            tifffile.imwrite(out / f.name, new, compression="zlib")
        made[kind] = out
        return out

    return variant


@pytest.fixture
def label_dirs(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """``make(truth: dict[str, array], pred: dict[str, array])``: two folders of TIFF labels."""

    def make(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> tuple[Path, Path]:
        t, p = tmp_path / "truth", tmp_path / "pred"
        t.mkdir(exist_ok=True)
        p.mkdir(exist_ok=True)
        for name, arr in truth.items():
            tifffile.imwrite(t / f"{name}.tif", arr)
        for name, arr in pred.items():
            if name.endswith(".npy"):
                np.save(p / name, arr)
            else:
                tifffile.imwrite(p / f"{name}.tif", arr)
        return t, p

    return make
