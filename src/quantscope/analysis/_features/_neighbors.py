"""Object neighbours (``Neighbors_*``), as CellProfiler's MeasureObjectNeighbors.

Two objects are neighbours when some pixel of one lies within ``distance`` pixels (Euclidean,
pixel centres) of a pixel of the other; ``distance=None`` is CellProfiler's "Adjacent" method
(4-connected contact, scale suffix ``Adjacent``). Features, with ``<scale>`` the suffix:

* NumberOfNeighbors: number of distinct neighbouring objects;
* PercentTouching: percentage of the object's edge pixels (4-connected inner boundary) that have
  another object's pixel within ``distance`` (1 for Adjacent);
* FirstClosestObjectNumber / FirstClosestDistance, SecondClosestObjectNumber /
  SecondClosestDistance: the nearest other objects by centroid distance (pixels), whether or not
  they are neighbours (NaN / 0 when the image has too few objects);
* AngleBetweenNeighbors: angle in degrees at the object's centroid between the first and the
  second closest objects' centroids.

Vectorized: pairs come from comparing the label image with itself shifted by every offset of
the disk of radius ``distance`` (only at edge pixels), the nearest centroids from one k-d tree.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._objects import Objects

__all__ = ["measure_neighbors", "neighbor_columns"]

_FEATURES = [
    "NumberOfNeighbors",
    "PercentTouching",
    "FirstClosestObjectNumber",
    "FirstClosestDistance",
    "SecondClosestObjectNumber",
    "SecondClosestDistance",
    "AngleBetweenNeighbors",
]


def _scale(distance: int | None) -> str:
    return "Adjacent" if distance is None else str(int(distance))


def neighbor_columns(distance: int | None = None) -> list[str]:
    """Column names of the neighbours family."""
    return [f"Neighbors_{f}_{_scale(distance)}" for f in _FEATURES]


def measure_neighbors(ob: Objects, distance: int | None = None) -> dict[str, NDArray[np.float64]]:
    """Neighbour features of every object (keys ``<feature>_<scale>``)."""
    from scipy.spatial import cKDTree

    n = ob.n
    s = _scale(distance)
    d = 1 if distance is None else int(distance)
    idx = ob.index
    h, w = ob.shape
    edge = ob.border4
    ey, ex = ob.rows[edge], ob.cols[edge]
    eo = ob.obj[edge].astype(np.int64)
    touching = np.zeros(ey.size, dtype=bool)
    pairs = []
    rr = np.arange(-d, d + 1)
    for dy in rr:
        for dx in rr:
            if (dy == 0 and dx == 0) or dy * dy + dx * dx > d * d:
                continue
            y2, x2 = ey + dy, ex + dx
            inside = (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
            other = np.full(ey.size, -1, dtype=np.int64)
            other[inside] = idx[y2[inside], x2[inside]]
            hit = (other >= 0) & (other != eo)
            touching |= hit
            if hit.any():
                pairs.append(eo[hit] * max(n, 1) + other[hit])
    nn = np.zeros(n)
    if pairs:
        up = np.unique(np.concatenate(pairs))
        nn = np.bincount(up // max(n, 1), minlength=n).astype(np.float64)
    ecount = np.bincount(eo, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = 100.0 * np.bincount(eo, weights=touching, minlength=n) / ecount
    out = {
        f"NumberOfNeighbors_{s}": nn,
        f"PercentTouching_{s}": np.where(ecount > 0, pct, 0.0),
    }
    first_n = np.full(n, np.nan)
    first_d = np.full(n, np.nan)
    second_n = np.full(n, np.nan)
    second_d = np.full(n, np.nan)
    angle = np.full(n, np.nan)
    cen = ob.centroid
    if n >= 2:
        k = min(3, n)
        dist, nb = cKDTree(cen).query(cen, k=k)
        first_n = ob.values[nb[:, 1]].astype(np.float64)
        first_d = dist[:, 1]
        if k == 3:
            second_n = ob.values[nb[:, 2]].astype(np.float64)
            second_d = dist[:, 2]
            v1 = cen[nb[:, 1]] - cen
            v2 = cen[nb[:, 2]] - cen
            cosang = (v1 * v2).sum(axis=1) / (
                np.linalg.norm(v1, axis=1) * np.linalg.norm(v2, axis=1)
            )
            angle = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
    out[f"FirstClosestObjectNumber_{s}"] = first_n
    out[f"FirstClosestDistance_{s}"] = first_d
    out[f"SecondClosestObjectNumber_{s}"] = second_n
    out[f"SecondClosestDistance_{s}"] = second_d
    out[f"AngleBetweenNeighbors_{s}"] = angle
    return out
