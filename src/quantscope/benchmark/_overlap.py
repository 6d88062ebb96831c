"""Validation of label images and their overlap table, computed in one pass over the pixels.

The overlap of every truth object with every predicted object comes from the co-occurrence of
label values: both images are relabelled to consecutive ids ``0..n`` and the paired code
``truth * (n_pred + 1) + pred`` is counted with :func:`numpy.bincount` (or, when the number of
possible pairs is very large, :func:`numpy.unique` over the foreground pixels only). No object is
ever compared mask by mask, so the cost is linear in the number of pixels and independent of the
number of objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

__all__ = ["Overlap", "as_label_image", "overlap_table"]

IntArray = npt.NDArray[np.intp]
# dense bincount of paired codes up to this many (n_truth + 1) * (n_pred + 1) bins (32 MB of int64)
_DENSE_PAIR_LIMIT = 1 << 22


def as_label_image(labels: npt.ArrayLike, name: str = "labels") -> npt.NDArray[np.integer]:
    """``labels`` as an integer label image (0 = background, 1..N = objects), or a clear error.

    Parameters
    ----------
    labels : array_like of int
        Instance label image of any dimensionality.
    name : str
        What to call the image in error messages (a file name, ``"truth"``, ...).

    Raises
    ------
    InvalidInput
        When the image is boolean (a mask that needs labelling first), not integer, negative,
        or empty (no pixels).
    """
    arr = np.asarray(labels)
    if arr.dtype == bool:
        raise InvalidInput(
            f"{name}: a binary mask (bool), not an instance label image; label its connected "
            "components first (quantscope.benchmark.label_mask, or 'bench add-set --binary')"
        )
    if arr.dtype.kind not in "iu":
        raise InvalidInput(
            f"{name}: pixels are {arr.dtype}, but label images must be integer "
            "(0 = background, 1..N = objects); save labels as uint16/uint32 images"
        )
    if arr.size == 0:
        raise InvalidInput(f"{name}: the label image has no pixels (shape {arr.shape})")
    if arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise InvalidInput(
            f"{name}: negative label values (minimum {int(arr.min())}); labels must be >= 0"
        )
    if arr.dtype.itemsize == 8 and arr.dtype.kind == "u":
        if int(arr.max()) > np.iinfo(np.int64).max:
            raise InvalidInput(f"{name}: label values above 2**63 are not supported")
        arr = arr.astype(np.int64)
    return arr


def _compact(flat: npt.NDArray[np.integer]) -> tuple[IntArray, IntArray, IntArray]:
    """Consecutive ids for the labels of ``flat``: (compact image, original ids, areas in px).

    Background (0) stays 0; object ``k`` (1-based) has original value ``ids[k - 1]`` and area
    ``areas[k - 1]``.
    """
    top = int(flat.max())
    if top <= max(4 * flat.size, 1 << 16):
        counts = np.bincount(flat, minlength=top + 1)
        ids = np.flatnonzero(counts[1:]) + 1
        areas = counts[ids]
        if ids.size == top:  # already consecutive: no lookup needed
            return flat.astype(np.intp, copy=False), ids, areas
        lut = np.zeros(top + 1, dtype=np.intp)
        lut[ids] = np.arange(1, ids.size + 1)
        return lut[flat], ids, areas
    values, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1).astype(np.intp)
    if values[0] != 0:  # no background: shift so that object k is k
        return inverse + 1, values.astype(np.intp), counts.astype(np.intp)
    return inverse, values[1:].astype(np.intp), counts[1:].astype(np.intp)


@dataclass(frozen=True)
class Overlap:
    """Areas of every object and intersections of every overlapping (truth, pred) pair.

    Attributes
    ----------
    truth_ids, pred_ids : ndarray of int
        Original label values of the truth and predicted objects, ascending.
    truth_areas, pred_areas : ndarray of int
        Area (px, voxels for 3-D) of each object, aligned with the ids.
    pair_truth, pair_pred : ndarray of int
        0-based indices (into the id arrays) of every pair of objects that share pixels.
    pair_inter : ndarray of int
        Pixels shared by each pair.
    n_pixels : int
        Pixels in the image.
    """

    truth_ids: IntArray
    pred_ids: IntArray
    truth_areas: IntArray
    pred_areas: IntArray
    pair_truth: IntArray
    pair_pred: IntArray
    pair_inter: IntArray
    n_pixels: int

    @property
    def n_truth(self) -> int:
        """Number of truth objects."""
        return int(self.truth_ids.size)

    @property
    def n_pred(self) -> int:
        """Number of predicted objects."""
        return int(self.pred_ids.size)

    @property
    def pair_iou(self) -> npt.NDArray[np.float64]:
        """Intersection over union of each overlapping pair."""
        union = self.truth_areas[self.pair_truth] + self.pred_areas[self.pair_pred]
        return self.pair_inter / (union - self.pair_inter)

    @property
    def foreground_intersection(self) -> int:
        """Pixels that are foreground in both images."""
        return int(self.pair_inter.sum())


def overlap_table(
    truth: npt.ArrayLike,
    pred: npt.ArrayLike,
    names: tuple[str, str] = ("truth", "prediction"),
) -> Overlap:
    """Overlap of every truth object with every predicted object, in one pass.

    Parameters
    ----------
    truth, pred : array_like of int
        Instance label images of the same shape (0 = background).
    names : (str, str)
        What to call the two images in error messages (file names, typically).

    Returns
    -------
    Overlap

    Raises
    ------
    InvalidInput
        Shapes differ, or an image is not an integer label image.
    """
    t = as_label_image(truth, names[0])
    p = as_label_image(pred, names[1])
    if t.shape != p.shape:
        raise InvalidInput(
            f"{names[1]}: shape {p.shape} differs from {names[0]} shape {t.shape}; "
            "prediction and ground truth must have the same shape"
        )
    ct, tids, tareas = _compact(t.reshape(-1))
    cp, pids, pareas = _compact(p.reshape(-1))
    nt, npred = tids.size, pids.size
    width = npred + 1
    if (nt + 1) * width <= _DENSE_PAIR_LIMIT:
        code = ct * width
        code += cp
        table = np.bincount(code, minlength=(nt + 1) * width).reshape(nt + 1, width)
        inner = table[1:, 1:]
        pt, pp = np.nonzero(inner)
        inter = inner[pt, pp]
    else:  # many objects: count only pixels where both images are foreground
        both = (ct > 0) & (cp > 0)
        code = (ct[both] - 1) * npred + (cp[both] - 1)
        uniq, inter = np.unique(code, return_counts=True)
        pt, pp = np.divmod(uniq, npred)
    return Overlap(
        truth_ids=tids,
        pred_ids=pids,
        truth_areas=tareas.astype(np.intp),
        pred_areas=pareas.astype(np.intp),
        pair_truth=pt.astype(np.intp),
        pair_pred=pp.astype(np.intp),
        pair_inter=inter.astype(np.intp),
        n_pixels=int(t.size),
    )
