"""Helpers of the benchmark tests (imported by the test modules and conftest)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def erode_labels(labels: np.ndarray, radius: int) -> np.ndarray:
    """Per-object erosion: a pixel stays when its whole disk neighbourhood has its label."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    fp = yy**2 + xx**2 <= radius**2
    lo = ndi.minimum_filter(labels, footprint=fp, mode="constant", cval=0)
    hi = ndi.maximum_filter(labels, footprint=fp, mode="constant", cval=0)
    return np.where((lo == labels) & (hi == labels), labels, 0).astype(labels.dtype)


def shift_labels(labels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Labels moved by (dy, dx) px; what leaves the image is lost, what enters is background."""
    out = np.zeros_like(labels)
    h, w = labels.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = labels[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def blobs(seed: int, shape: tuple[int, int] = (64, 64), n: int = 6) -> np.ndarray:
    """A small instance label image of ``n`` non-overlapping squares."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint16)
    k = 0
    for _ in range(200):
        if k == n:
            break
        y, x = rng.integers(0, shape[0] - 10), rng.integers(0, shape[1] - 10)
        if lab[y : y + 9, x : x + 9].any():
            continue
        k += 1
        lab[y + 1 : y + 8, x + 1 : x + 8] = k
    return lab
