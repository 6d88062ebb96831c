"""Label morphology for the classical segmentation: declumping markers, propagation, clean-up.

What :mod:`quantscope.analysis._segment` does to masks and label images: size-aware h-maxima
markers of the shape + intensity surface (declumping clumped nuclei before the marker
watershed) [3]_, propagation of cells from nuclei seeds along the cheapest intensity paths
(CellProfiler's Propagate) [5]_, hole filling (in masks and per object), keeping the largest
piece of each object, border tests and relabelling 1..N. Also the ``int32`` label image type.

References
----------
.. [3] Soille P. (2003) Morphological Image Analysis, 2nd ed., ch. 6 (h-maxima, regional
   extrema). doi:10.1007/978-3-662-05088-0
.. [5] Jones T.R., Carpenter A.E., Golland P. (2005) Voronoi-based segmentation of cells on
   image manifolds. CVBIA 2005, LNCS 3765:535-543. doi:10.1007/11569541_54
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ._threshold import F32

Labels = npt.NDArray[np.int32]


def _fill_small_holes(mask: npt.NDArray[np.bool_], max_area: float) -> npt.NDArray[np.bool_]:
    """Fill holes (background components not touching the border) smaller than max_area px."""
    from scipy import ndimage as ndi

    holes, n = ndi.label(~mask)
    if n == 0:
        return mask
    areas = np.bincount(holes.ravel())
    fill = areas < max_area
    fill[0] = False
    for edge in (holes[0], holes[-1], holes[:, 0], holes[:, -1]):
        fill[edge] = False
    return mask | fill[holes]


def _fill_label_holes(labels: Labels, max_area: float) -> Labels:
    """Fill each hole enclosed by one object only (not gaps enclosed by several objects).

    A hole is a background component that does not touch the image border, is smaller than
    ``max_area`` px and whose 8-neighbours all belong to the same object, as CellProfiler's
    ``fill_labeled_holes`` does.
    """
    from scipy import ndimage as ndi

    fg = labels > 0
    holes, n = ndi.label(~fg)
    if n == 0:
        return labels
    area = np.bincount(holes.ravel(), minlength=n + 1)
    candidate = area < max_area
    candidate[0] = False
    for edge in (holes[0], holes[-1], holes[:, 0], holes[:, -1]):
        candidate[edge] = False
    if not candidate.any():
        return labels
    # the hole each rim pixel (an object pixel next to a hole) belongs to
    rim_hole = ndi.grey_dilation(np.where(candidate[holes], holes, 0), size=(3, 3))
    rim = fg & (rim_hole > 0)
    which, owner_of = rim_hole[rim], labels[rim]
    lo = np.full(n + 1, np.iinfo(np.int32).max, np.int64)
    hi = np.zeros(n + 1, np.int64)
    np.minimum.at(lo, which, owner_of)
    np.maximum.at(hi, which, owner_of)
    enclosed = candidate & (lo == hi) & (hi > 0)
    if not enclosed.any():
        return labels
    owner = hi.astype(np.int32)
    fill = enclosed[holes]
    out = labels.copy()
    out[fill] = owner[holes[fill]]
    return out


def _keep_largest_piece(labels: Labels) -> Labels:
    """Keep only the largest 4-connected piece of every label."""
    from skimage import measure

    pieces = measure.label(labels, connectivity=1, background=0)
    n = int(pieces.max())
    if n == int(np.count_nonzero(np.bincount(labels.ravel())[1:])):
        return labels  # every label is one piece already
    flat_p = pieces.ravel()
    area = np.bincount(flat_p, minlength=n + 1)
    owner = np.zeros(n + 1, np.int64)
    owner[flat_p] = labels.ravel()
    # for every owner, the piece with the largest area wins
    order = np.lexsort((-area[1:], owner[1:])) + 1
    first = np.ones(order.size, bool)
    first[1:] = owner[order[1:]] != owner[order[:-1]]
    keep = np.zeros(n + 1, bool)
    keep[order[first]] = True
    keep[0] = False
    return np.where(keep[pieces], labels, 0).astype(np.int32)


def _h_maxima(
    surface: F32, blobs: npt.NDArray[Any], h: float, clump_ratio: float, clump_factor: float
) -> npt.NDArray[np.bool_]:
    """Size-aware h-maxima of ``surface`` (>= 0, zero outside the blobs), blob by blob.

    Grey reconstruction by dilation of ``surface - h`` under ``surface`` [3]_
    (:func:`skimage.morphology.reconstruction`); pixels where the reconstruction lies ``h``
    below the surface are the regional maxima of dynamic >= h. Blobs larger than
    ``clump_ratio`` times the median blob area use ``h * clump_factor``. Reconstruction sorts
    every pixel it is given, so it runs on each blob's bounding box (plus a one-pixel margin)
    instead of the whole image: the same result, as the zero background separates blobs.
    """
    from scipy import ndimage as ndi
    from skimage import morphology

    peaks = np.zeros(surface.shape, bool)
    ny, nx = surface.shape
    area = np.bincount(blobs.ravel())
    present = area[1:][area[1:] > 0]
    clump_area = clump_ratio * float(np.median(present)) if present.size else np.inf
    for k, box in enumerate(ndi.find_objects(blobs), start=1):
        if box is None:
            continue
        ys = slice(max(box[0].start - 1, 0), min(box[0].stop + 1, ny))
        xs = slice(max(box[1].start - 1, 0), min(box[1].stop + 1, nx))
        own = blobs[ys, xs] == k
        crop = np.where(own, surface[ys, xs], np.float32(0))
        hk = h * clump_factor if area[k] > clump_area else h
        if hk > 0:
            rec = morphology.reconstruction(crop - np.float32(hk), crop, method="dilation")
            peaks[ys, xs] |= ((crop - rec) >= hk - 1e-4) & own
        else:  # every regional maximum
            peaks[ys, xs] |= (crop == ndi.maximum_filter(crop, size=3)) & own
    return peaks


def _border_labels(labels: npt.NDArray[Any], n: int) -> npt.NDArray[np.bool_]:
    touches = np.zeros(n + 1, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        touches[edge] = True
    touches[0] = False
    return touches


def _relabel(labels: npt.NDArray[Any], drop: npt.NDArray[np.bool_]) -> Labels:
    """Drop the labels flagged in ``drop`` and number the rest 1..N in label order."""
    keep = ~drop
    keep[0] = False
    lut = np.zeros(drop.size, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


def _propagate(
    seeds: npt.NDArray[Any], image: F32, mask: npt.NDArray[np.bool_], lam: float
) -> Labels:
    """Assign each mask pixel to the seed of its shortest path (CellProfiler's Propagate [5]_).

    The step between 8-neighbours ``p`` and ``q`` costs ``sqrt(D**2 + (lam * |p - q|)**2)``
    where ``D`` is the sum of absolute intensity differences between the 3x3 neighbourhoods
    of ``p`` and ``q``; shortest paths from all seed pixels at once (Dijkstra, scipy).
    """
    from scipy import ndimage as ndi
    from scipy import sparse
    from scipy.sparse import csgraph

    domain = mask | (seeds > 0)
    ny, nx = domain.shape
    index = np.full(domain.shape, -1, np.int64)
    n_nodes = int(domain.sum())
    index[domain] = np.arange(n_nodes)
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    weights: list[npt.NDArray[np.float64]] = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ys0, ys1 = slice(0, ny - dy), slice(dy, ny)
        xs0 = slice(max(0, -dx), nx - max(0, dx))
        xs1 = slice(max(0, dx), nx - max(0, -dx))
        a = index[ys0, xs0]
        b = index[ys1, xs1]
        both = (a >= 0) & (b >= 0)
        if not both.any():
            continue
        diff = np.zeros(domain.shape, np.float32)
        diff[ys0, xs0] = np.abs(image[ys0, xs0] - image[ys1, xs1])
        window = ndi.uniform_filter(diff, 3, mode="constant") * np.float32(9.0)
        d = window[ys0, xs0][both].astype(np.float64)
        step = math.hypot(dy, dx)
        rows.append(a[both])
        cols.append(b[both])
        # a zero cost would read as "no edge" in a sparse matrix: keep every step > 0
        weights.append(np.sqrt(d * d + (lam * step) ** 2) + 1e-12)
    seed_flat = seeds[domain]
    sources = np.flatnonzero(seed_flat > 0)
    out = np.zeros(domain.shape, np.int32)
    if sources.size == 0:
        return out
    if not rows:
        out[domain] = seed_flat
        return out
    graph = sparse.coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_nodes, n_nodes),
    ).tocsr()
    _, _, origin = csgraph.dijkstra(
        graph, directed=False, indices=sources, min_only=True, return_predecessors=True
    )
    reached = origin >= 0
    assigned = np.zeros(n_nodes, np.int32)
    assigned[reached] = seed_flat[origin[reached]]
    out[domain] = assigned
    return out
