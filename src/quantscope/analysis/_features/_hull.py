"""Convex hulls, Feret diameters and minimum enclosing circles of many objects at once.

All functions work on padded ``(n, m)`` arrays (one row per object) so that the work is a few
numpy operations per step for *all* objects, not a Python loop over objects.

* :func:`convex_hulls` — monotone chains of the objects' row extremes (the leftmost and rightmost
  pixel centre of every row, a superset of the hull vertices), pruned to convexity for all
  objects at once. Collinear points are dropped.
* :func:`feret_diameters` — maximum Feret = largest distance between hull vertices; minimum Feret
  = smallest, over hull edges, of the largest distance of a vertex from the edge's line (the
  rotating-calipers result), as ``centrosome.cpmorphology.feret_diameter``.
* :func:`minimum_enclosing_circles` — Elzinga & Hearn's support-set iteration (Oper. Res. 1972,
  doi:10.1287/opre.20.3.521), vectorized: the support set (2 or 3 hull vertices) of every object
  is improved until its circle holds all vertices; each step strictly grows the radius.
* :func:`convex_areas` — pixel centres inside the hull of the pixels' edge midpoints (scikit-
  image's ``convex_hull_image`` with ``offset_coordinates=True``, borders included), counted row
  by row from the half-plane form of the Minkowski sum of the hull with the pixel diamond.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "convex_areas",
    "convex_hulls",
    "feret_diameters",
    "minimum_enclosing_circles",
    "pair_distances2",
]

_TOL = 1e-9


def _pad_segments(
    seg: NDArray[np.intp], n: int, *arrays: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], list[NDArray[np.float64]]]:
    """Scatter sorted segment data (``seg`` ascending) into ``(n, m)`` arrays, padded by the
    segment's first element; returns the validity mask and the padded arrays."""
    count = np.diff(np.searchsorted(seg, np.arange(n + 1)))
    m = int(count.max()) if count.size else 0
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    pos = np.arange(seg.size) - starts[seg]
    valid = np.zeros((n, max(m, 1)), dtype=bool)
    valid[seg, pos] = True
    out = []
    for a in arrays:
        p = np.empty((n, max(m, 1)), dtype=np.float64)
        p[:] = a[starts][:, None] if a.size else 0.0
        p[seg, pos] = a
        out.append(p)
    return valid, out


def _prune_chain(
    seg: NDArray[np.intp], y: NDArray[np.float64], x: NDArray[np.float64], sign: float
) -> NDArray[np.intp]:
    """Indices of the convex chain of each segment's points (sorted by y inside a segment).

    A point is dropped when it is not strictly outside the chord of its two current
    neighbours (left chains: strictly left; ``sign=-1``: strictly right); dropping every such
    point at once is safe (its neighbours prove it is not a vertex), and passes repeat until
    none is left, all segments at once.
    """
    keep = np.arange(seg.size)
    while keep.size >= 3:
        s, yy, xx = seg[keep], y[keep], x[keep]
        inner = (s[1:-1] == s[:-2]) & (s[1:-1] == s[2:])
        cross = (xx[1:-1] - xx[:-2]) * (yy[2:] - yy[:-2]) - (xx[2:] - xx[:-2]) * (
            yy[1:-1] - yy[:-2]
        )
        bad = inner & (sign * cross >= 0)
        if not bad.any():
            break
        mask = np.ones(keep.size, dtype=bool)
        mask[1:-1][bad] = False
        keep = keep[mask]
    return keep


def convex_hulls(
    seg: NDArray[np.intp],
    rows: NDArray[np.intp],
    left: NDArray[np.intp],
    right: NDArray[np.intp],
    n: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Convex hull of the pixel centres of every object, from its row runs.

    Parameters
    ----------
    seg, rows, left, right : (R,) object index (ascending), row, leftmost and rightmost column
        of every object row (rows ascending inside an object); n : number of objects.

    Returns
    -------
    hy, hx : (n, h) hull vertices in order around the hull (padded by repeating the first)
    nv : (n,) number of vertices (1 for a single point, 2 for a segment)

    The hull's left boundary is the convex chain of the rows' leftmost pixels and its right
    boundary that of the rightmost ones (a monotone-chain hull, Andrew 1979,
    doi:10.1016/0020-0190(79)90072-3), pruned for all objects at once.
    """
    if n == 0:
        z = np.zeros((0, 1))
        return z, z, np.zeros(0, dtype=np.intp)
    y = rows.astype(np.float64)
    kl = _prune_chain(seg, y, left.astype(np.float64), 1.0)
    kr = _prune_chain(seg, y, right.astype(np.float64), -1.0)
    # around the hull: left chain top -> bottom, then right chain bottom -> top
    vs = np.concatenate([seg[kl], seg[kr]])
    vy = np.concatenate([y[kl], y[kr]])
    vx = np.concatenate([left[kl], right[kr]]).astype(np.float64)
    order_key = np.concatenate([y[kl], 1e7 - y[kr]])
    order = np.lexsort((order_key, vs))
    vs, vy, vx = vs[order], vy[order], vx[order]
    # drop repeated points (one-pixel top or bottom rows close the two chains on one point)
    same_prev = np.zeros(vs.size, dtype=bool)
    same_prev[1:] = (vs[1:] == vs[:-1]) & (vy[1:] == vy[:-1]) & (vx[1:] == vx[:-1])
    starts = np.searchsorted(vs, np.arange(n + 1))
    firsts = starts[:-1]
    last = np.zeros(vs.size, dtype=bool)
    last[starts[1:] - 1] = True
    same_first = last & (vy == vy[firsts][vs]) & (vx == vx[firsts][vs])
    same_first[firsts] = False
    keep = ~(same_prev | same_first)
    vs, vy, vx = vs[keep], vy[keep], vx[keep]
    valid, (hy, hx) = _pad_segments(vs, n, vy, vx)
    return hy, hx, valid.sum(axis=1).astype(np.intp)


def pair_distances2(hy: NDArray[np.float64], hx: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(n, h, h)`` squared distances between every object's hull vertices (shared by
    :func:`feret_diameters` and :func:`minimum_enclosing_circles`)."""
    ddy = hy[:, :, None] - hy[:, None, :]
    ddx = hx[:, :, None] - hx[:, None, :]
    ddy *= ddy
    ddx *= ddx
    ddy += ddx
    return ddy


def feret_diameters(
    hy: NDArray[np.float64],
    hx: NDArray[np.float64],
    nv: NDArray[np.intp],
    d2: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Minimum and maximum Feret diameters (pixels) from hull vertices (``d2``: their
    :func:`pair_distances2`, when already computed)."""
    n, h = hy.shape
    if n == 0:
        return np.zeros(0), np.zeros(0)
    if d2 is None:
        d2 = pair_distances2(hy, hx)
    max_feret = np.sqrt(d2.reshape(n, -1).max(axis=1))
    # edges i -> i+1 (cyclic within nv); padded vertices repeat vertex 0 so extra edges are
    # degenerate (zero length) and are skipped
    j = (np.arange(h)[None, :] + 1) % np.maximum(nv[:, None], 1)
    ey = np.take_along_axis(hy, j, axis=1) - hy
    ex = np.take_along_axis(hx, j, axis=1) - hx
    el = np.sqrt(ey * ey + ex * ex)
    real = (np.arange(h)[None, :] < nv[:, None]) & (el > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # distance of every vertex k from the line of edge i
        dist = (
            np.abs(
                ex[:, :, None] * (hy[:, None, :] - hy[:, :, None])
                - ey[:, :, None] * (hx[:, None, :] - hx[:, :, None])
            )
            / el[:, :, None]
        )
    width = np.where(real, np.nan_to_num(dist, nan=0.0).max(axis=2), np.inf)
    min_feret = width.min(axis=1)
    min_feret = np.where(np.isfinite(min_feret), min_feret, 0.0)
    return min_feret, max_feret


def _circle2(ay, ax, by, bx):  # type: ignore[no-untyped-def]
    cy, cx = (ay + by) / 2, (ax + bx) / 2
    return cy, cx, np.hypot(ay - cy, ax - cx)


def _circle3(ay, ax, by, bx, cy_, cx_):  # type: ignore[no-untyped-def]
    """Smallest circle holding three points: the circumcircle if the triangle is acute, else the
    circle on its longest side."""
    ab = (ay - by) ** 2 + (ax - bx) ** 2
    bc = (by - cy_) ** 2 + (bx - cx_) ** 2
    ca = (cy_ - ay) ** 2 + (cx_ - ax) ** 2
    d = 2 * (ay * (bx - cx_) + by * (cx_ - ax) + cy_ * (ax - bx))
    a2, b2, c2 = ay * ay + ax * ax, by * by + bx * bx, cy_ * cy_ + cx_ * cx_
    with np.errstate(invalid="ignore", divide="ignore"):
        oy = (a2 * (bx - cx_) + b2 * (cx_ - ax) + c2 * (ax - bx)) / d
        ox = (a2 * (cy_ - by) + b2 * (ay - cy_) + c2 * (by - ay)) / d
    ry = np.hypot(ay - oy, ax - ox)
    obtuse = (ab >= bc + ca) | (bc >= ab + ca) | (ca >= ab + bc) | (np.abs(d) < 1e-12)
    c_ab = _circle2(ay, ax, by, bx)
    c_bc = _circle2(by, bx, cy_, cx_)
    c_ca = _circle2(cy_, cx_, ay, ax)
    longest = np.argmax(np.stack([ab, bc, ca]), axis=0)
    sy = np.choose(longest, [c_ab[0], c_bc[0], c_ca[0]])
    sx = np.choose(longest, [c_ab[1], c_bc[1], c_ca[1]])
    sr = np.choose(longest, [c_ab[2], c_bc[2], c_ca[2]])
    return np.where(obtuse, sy, oy), np.where(obtuse, sx, ox), np.where(obtuse, sr, ry)


def minimum_enclosing_circles(
    hy: NDArray[np.float64],
    hx: NDArray[np.float64],
    nv: NDArray[np.intp],
    d2: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Centre (y, x) and radius of the smallest circle holding each object's hull vertices
    (``d2``: their :func:`pair_distances2`, when already computed)."""
    n, h = hy.shape
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    rows = np.arange(n)
    # start: the two vertices farthest apart
    if d2 is None:
        d2 = pair_distances2(hy, hx)
    flat = d2.reshape(n, -1).argmax(axis=1)
    ia, ib = np.divmod(flat, h)
    sup = np.stack([ia, ib, ib], axis=1)  # third slot repeats -> a 2-point support
    cy, cx, r = _circle2(hy[rows, ia], hx[rows, ia], hy[rows, ib], hx[rows, ib])
    for _ in range(4 * h + 8):
        dist = np.hypot(hy - cy[:, None], hx - cx[:, None]) - r[:, None]
        out = dist.max(axis=1) > _TOL * np.maximum(r, 1.0)
        if not out.any():
            break
        oi = np.flatnonzero(out)
        d = np.argmax(dist[oi], axis=1)
        s = sup[oi]
        py = np.concatenate([hy[oi][np.arange(oi.size)[:, None], s], hy[oi, d][:, None]], axis=1)
        px = np.concatenate([hx[oi][np.arange(oi.size)[:, None], s], hx[oi, d][:, None]], axis=1)
        idx = np.concatenate([s, d[:, None]], axis=1)
        # candidate supports: the new point with one or two of the old ones
        cands = [(3, 0), (3, 1), (3, 2), (3, 0, 1), (3, 0, 2), (3, 1, 2)]
        best_r = np.full(oi.size, np.inf)
        best = np.zeros((oi.size, 3), dtype=np.intp)
        best_c = np.zeros((oi.size, 2))
        for cand in cands:
            if len(cand) == 2:
                a, b = cand
                ccy, ccx, cr = _circle2(py[:, a], px[:, a], py[:, b], px[:, b])
                trip = np.stack([idx[:, a], idx[:, b], idx[:, b]], axis=1)
            else:
                a, b, c = cand
                ccy, ccx, cr = _circle3(py[:, a], px[:, a], py[:, b], px[:, b], py[:, c], px[:, c])
                trip = np.stack([idx[:, a], idx[:, b], idx[:, c]], axis=1)
            holds = (
                np.hypot(py - ccy[:, None], px - ccx[:, None]) - cr[:, None]
                <= _TOL * np.maximum(cr[:, None], 1.0)
            ).all(axis=1)
            better = holds & np.isfinite(cr) & (cr < best_r)
            best_r = np.where(better, cr, best_r)
            best[better] = trip[better]
            best_c[better, 0] = ccy[better]
            best_c[better, 1] = ccx[better]
        sup[oi] = best
        cy[oi], cx[oi], r[oi] = best_c[:, 0], best_c[:, 1], best_r
    return cy, cx, r


def convex_areas(
    hy: NDArray[np.float64],
    hx: NDArray[np.float64],
    nv: NDArray[np.intp],
    bbox: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Number of pixel centres inside (or on) the hull of the objects' pixel-edge midpoints.

    ``hy, hx, nv`` is the hull of the pixel *centres*; the hull of the edge midpoints is its
    Minkowski sum with the diamond ``{(±0.5, 0), (0, ±0.5)}``, whose half-planes are those of
    the centre hull pushed out by the diamond's support plus the diamond's four own facets.
    """
    n, h = hy.shape
    if n == 0:
        return np.zeros(0)
    j = (np.arange(h)[None, :] + 1) % np.maximum(nv[:, None], 1)
    ey = np.take_along_axis(hy, j, axis=1) - hy
    ex = np.take_along_axis(hx, j, axis=1) - hx
    # outward normal of a counter-clockwise (in x-right, y-down: clockwise) edge; we orient it
    # by checking it points away from the centroid of the vertices
    ny, nx = ex.copy(), -ey.copy()
    mvy = np.where(np.arange(h)[None, :] < nv[:, None], hy, np.nan)
    mvx = np.where(np.arange(h)[None, :] < nv[:, None], hx, np.nan)
    gy, gx = np.nanmean(mvy, axis=1), np.nanmean(mvx, axis=1)
    flip = (ny * (hy - gy[:, None]) + nx * (hx - gx[:, None])) < 0
    ny = np.where(flip, -ny, ny)
    nx = np.where(flip, -nx, nx)
    real = (np.arange(h)[None, :] < nv[:, None]) & ((ey != 0) | (ex != 0))
    off = ny * hy + nx * hx + 0.5 * np.maximum(np.abs(ny), np.abs(nx))
    # the diamond's own facets, normals (±1, ±1): offset = support of the hull + 0.5
    dn = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)
    valid_v = np.arange(h)[None, :] < nv[:, None]
    sup = np.stack(
        [np.where(valid_v, a * hy + b * hx, -np.inf).max(axis=1) + 0.5 for a, b in dn], axis=1
    )
    all_ny = np.concatenate([np.where(real, ny, 0.0), np.broadcast_to(dn[:, 0], (n, 4))], axis=1)
    all_nx = np.concatenate([np.where(real, nx, 0.0), np.broadcast_to(dn[:, 1], (n, 4))], axis=1)
    all_off = np.concatenate([np.where(real, off, 1.0), sup], axis=1)
    # rows of every object's bounding box
    nrows = (bbox[:, 2] - bbox[:, 0]).astype(np.intp)
    seg = np.repeat(np.arange(n), nrows)
    yrow = (np.arange(seg.size) - np.repeat(np.cumsum(nrows) - nrows, nrows)) + bbox[seg, 0]
    a_y = all_ny[seg]
    a_x = all_nx[seg]
    rhs = all_off[seg] - a_y * yrow[:, None]  # constraint: a_x * x <= rhs
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = rhs / a_x
    lo = np.where(a_x < 0, bound, -np.inf).max(axis=1)
    hi = np.where(a_x > 0, bound, np.inf).min(axis=1)
    infeasible = ((a_x == 0) & (rhs < -_TOL)).any(axis=1)
    cnt = np.floor(hi + _TOL) - np.ceil(lo - _TOL) + 1
    cnt = np.where(infeasible | ~np.isfinite(cnt), 0.0, np.maximum(cnt, 0.0))
    from ._objects import seg_sum

    return seg_sum(cnt, np.searchsorted(seg, np.arange(n + 1)))
