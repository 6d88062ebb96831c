"""Shape features (``AreaShape_*``), as CellProfiler's MeasureObjectSizeShape / cp_measure.

Every feature is computed for all objects at once from the shared :class:`Objects` index:
moments and Zernike sums by segment sums (``np.add.reduceat``) over the pixels sorted by object,
the perimeter from neighbour codes of the border pixels, radii, Euler number and filled area on
the atlas (one distance transform, two labellings), hulls / Feret diameters / enclosing circles
with the vectorized routines of :mod:`._hull`.

Definitions (pixels; ``spacing`` scales lengths and areas, see :func:`measure_shape`):

* Area: pixel count. Perimeter: scikit-image ``perimeter(neighborhood=4)`` of the object's own
  mask (Benkrid & Crookes weights). BoundingBoxArea, Extent = Area / BoundingBoxArea.
* ConvexArea and Solidity = Area / ConvexArea: scikit-image ``convex_hull_image`` of the object.
* EulerNumber: 8-connected components minus 4-connected holes, as scikit-image's
  ``euler_number(connectivity=2)``. FilledArea: holes filled (4-connected background), as
  ``regionprops.area_filled``.
* Moments (Spatial/Central 0..2 x 0..3, Normalized 4x4, Hu 0..6, InertiaTensor,
  InertiaTensorEigenvalues), MajorAxisLength, MinorAxisLength, Eccentricity and Orientation
  (degrees) from the second moments, as ``skimage.measure.regionprops``.
* Maximum/Mean/MedianRadius: Euclidean distance of object pixels to the nearest pixel outside
  the object (the image edge counts as outside).
* Min/MaxFeretDiameter: from the convex hull of the pixel centres.
* Zernike_n_m (n <= 9): |sum over pixels of V_nm| / (pi r^2) in the minimum enclosing circle of
  the pixel centres (Boland et al. 1998, Cytometry 33:366,
  doi:10.1002/(SICI)1097-0320(19980701)33:3<366::AID-CYTO14>3.0.CO;2-R).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from ._hull import (
    convex_areas,
    convex_hulls,
    feret_diameters,
    minimum_enclosing_circles,
    pair_distances2,
)
from ._objects import Objects, seg_starts, segment_order, segment_sort

__all__ = ["ZERNIKE_INDEXES", "measure_shape", "shape_columns", "zernike_indexes"]


def zernike_indexes(order: int = 9) -> list[tuple[int, int]]:
    """``(n, m)`` pairs with ``0 <= m <= n <= order`` and ``n - m`` even (CellProfiler's set)."""
    return [(n, m) for n in range(order + 1) for m in range(n + 1) if (n - m) % 2 == 0]


ZERNIKE_INDEXES = zernike_indexes(9)

_BASE = [
    "Area",
    "Perimeter",
    "FormFactor",
    "Compactness",
    "Eccentricity",
    "Solidity",
    "Extent",
    "EulerNumber",
    "MajorAxisLength",
    "MinorAxisLength",
    "Orientation",
    "EquivalentDiameter",
    "ConvexArea",
    "FilledArea",
    "BoundingBoxArea",
    "BoundingBoxMinimum_X",
    "BoundingBoxMaximum_X",
    "BoundingBoxMinimum_Y",
    "BoundingBoxMaximum_Y",
    "Center_X",
    "Center_Y",
    "MaximumRadius",
    "MeanRadius",
    "MedianRadius",
    "MinFeretDiameter",
    "MaxFeretDiameter",
]
_MOMENTS = (
    [f"SpatialMoment_{p}_{q}" for p in range(3) for q in range(4)]
    + [f"CentralMoment_{p}_{q}" for p in range(3) for q in range(4)]
    + [f"NormalizedMoment_{p}_{q}" for p in range(4) for q in range(4)]
    + [f"HuMoment_{k}" for k in range(7)]
    + ["InertiaTensor_0_0", "InertiaTensor_0_1", "InertiaTensor_1_0", "InertiaTensor_1_1"]
    + ["InertiaTensorEigenvalues_0", "InertiaTensorEigenvalues_1"]
)
_LENGTHS = {
    "Perimeter",
    "MajorAxisLength",
    "MinorAxisLength",
    "EquivalentDiameter",
    "MaximumRadius",
    "MeanRadius",
    "MedianRadius",
    "MinFeretDiameter",
    "MaxFeretDiameter",
}
_AREAS = {"Area", "ConvexArea", "FilledArea", "BoundingBoxArea"}
# ratios of lengths and areas: the same number in pixels and in µm
_DIMENSIONLESS = {"FormFactor", "Compactness", "Eccentricity", "Solidity", "Extent", "EulerNumber"}


def shape_columns(zernike: bool = True, moments: bool = True) -> list[str]:
    """Column names of the shape family."""
    cols = list(_BASE)
    if moments:
        cols += _MOMENTS
    if zernike:
        cols += [f"Zernike_{n}_{m}" for n, m in ZERNIKE_INDEXES]
    return ["AreaShape_" + c for c in cols]


# ------------------------------------------------------------------------------------ pieces
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2.0)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2.0)) / 2


def _perimeter(ob: Objects) -> NDArray[np.float64]:
    """scikit-image ``perimeter(object_mask, neighborhood=4)`` for every object.

    Border pixels get the code ``1 + 2 (4-neighbours on the same border) + 10 (diagonal
    neighbours on the same border)`` of scikit-image's convolution, weighted by its table.
    """
    # on the atlas (every object alone in its padded box, smaller than the image): a border
    # pixel's neighbours there are its own object's pixels or padding
    aidx, aflat = ob.atlas
    pw = aidx.shape[1]
    border = ob.border4
    bimg = np.full(aidx.size, -1, dtype=np.int32)
    bflat = aflat[border]
    bobj = ob.obj[border].astype(np.int32)
    bimg[bflat] = bobj
    code = np.ones(bflat.size, dtype=np.int64)
    for dy, dx, wgt in (
        (-1, 0, 2), (1, 0, 2), (0, -1, 2), (0, 1, 2),
        (-1, -1, 10), (-1, 1, 10), (1, -1, 10), (1, 1, 10),
    ):  # fmt: skip
        code += wgt * (bimg[bflat + dy * pw + dx] == bobj)
    wts = np.zeros(ob.obj.size)
    wts[border] = _PERIMETER_WEIGHTS[code]
    return ob.segment_sum(wts)


def _euler_and_filled(ob: Objects) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Euler number (8-connected objects, 4-connected holes) and filled area, from two
    labellings of the atlas: Euler = components - holes; FilledArea = area + hole pixels.

    In the atlas every object sits alone in a zero-padded box and the padding rings of all
    boxes touch, so the background outside the objects is one 4-connected component (the one
    at the atlas corner) and every other background component is a hole of one object.
    """
    from scipy import ndimage as ndi

    n = ob.n
    aidx, aflat = ob.atlas
    m = aidx >= 0
    comp, nc = ndi.label(m, structure=np.ones((3, 3), dtype=bool))
    comp_obj = np.zeros(nc + 1, dtype=np.intp)
    comp_obj[comp.ravel()[aflat]] = ob.obj
    euler = np.bincount(comp_obj[1:], minlength=n).astype(np.float64)
    filled = ob.count.astype(np.float64)
    bg, _ = ndi.label(~m)
    bgf = bg.ravel()
    hp = np.flatnonzero((bgf > 0) & (bgf != bgf[0]))
    if hp.size:
        lab_h = bgf[hp]
        left = aidx.ravel()[hp - 1]  # an object pixel or the same hole
        owner = np.full(int(lab_h.max()) + 1, -1, dtype=np.intp)
        np.maximum.at(owner, lab_h, left)
        holes = np.unique(lab_h)
        euler -= np.bincount(owner[holes], minlength=n)
        filled += np.bincount(owner[lab_h], minlength=n)
    return euler, filled


def _segment_median(ob: Objects, values: NDArray[np.float64]) -> NDArray[np.float64]:
    # Euclidean distances on the pixel grid: their squares are integers, so two exact radix
    # sorts (object, d^2) replace a float sort when d^2 fits in 16 bits
    d2 = np.rint(values * values)
    if d2.size and d2.max() < 1 << 16:
        order = segment_order(ob.obj, d2.astype(np.int64), ob.n)
    else:
        order = segment_sort(ob.obj, values)
    v = values[order]
    lo = ob.starts[:-1] + (ob.count - 1) // 2
    hi = ob.starts[:-1] + ob.count // 2
    return (v[lo] + v[hi]) / 2


def _moments(ob: Objects) -> dict[str, NDArray[np.float64]]:
    bb = ob.bbox
    n = ob.n
    # all moments from the maximal row runs, not the pixels: sum_{c=a}^{b-1} c^q in closed form
    # (Faulhaber's polynomials, exact in integers and valid for negative columns too), times
    # the run's row^p; ~20x fewer terms than pixels
    first, last = ob.pixel_runs
    run_obj = ob.obj[first]
    run_st = seg_starts(run_obj, n)[:-1]
    rr = (ob.rows[first] - bb[run_obj, 0]).astype(np.int64)
    a0 = (ob.cols[first] - bb[run_obj, 1]).astype(np.int64)
    b0 = (ob.cols[last] - bb[run_obj, 1]).astype(np.int64) + 1

    def power_sums(m: NDArray[np.int64]) -> list[NDArray[np.int64]]:
        # S_q(m) = sum_{c=0}^{m-1} c^q, q = 0..3 (S_q(b) - S_q(a) = sum_{c=a}^{b-1} c^q)
        t = m * (m - 1) // 2
        return [m, t, (m - 1) * m * (2 * m - 1) // 6, t * t]

    def run_moments(
        rows: NDArray[np.int64], a: NDArray[np.int64], b: NDArray[np.int64], p_max: int
    ) -> NDArray[np.float64]:
        pa, pb = power_sums(a), power_sums(b)
        cols = [(pb[q] - pa[q]).astype(np.float64) for q in range(4)]
        rf = rows.astype(np.float64)
        out = np.empty((n, p_max + 1, 4))
        rp = np.ones_like(rf)
        for p in range(p_max + 1):
            if p:
                rp = rp * rf
            for q in range(4):
                out[:, p, q] = np.add.reduceat(rp * cols[q], run_st)
        return out

    # spatial moments (p <= 2) about the bounding box corner, as CellProfiler reports them
    raw = run_moments(rr, a0, b0, 2)
    m00 = raw[:, 0, 0]
    cy = raw[:, 1, 0] / m00
    cx = raw[:, 0, 1] / m00
    # central moments: moments about the pixel nearest the centroid (integers, so the sums stay
    # exact), moved to the centroid itself (less than half a pixel away, so the binomial
    # terms do not cancel)
    oy = np.rint(cy).astype(np.int64)
    ox = np.rint(cx).astype(np.int64)
    near = run_moments(rr - oy[run_obj], a0 - ox[run_obj], b0 - ox[run_obj], 3)
    dy, dx = oy - cy, ox - cx  # centroid -> that pixel
    ypow = [np.ones(n), dy, dy * dy, dy * dy * dy]
    xpow = [np.ones(n), dx, dx * dx, dx * dx * dx]
    binom = ((1,), (1, 1), (1, 2, 1), (1, 3, 3, 1))
    central = np.empty((n, 4, 4))
    for p in range(4):
        for q in range(4):
            if p + q < 2:
                continue
            acc = np.zeros(n)
            for i in range(p + 1):
                for j in range(q + 1):
                    acc += (binom[p][i] * binom[q][j]) * ypow[p - i] * xpow[q - j] * near[:, i, j]
            central[:, p, q] = acc
    central[:, 0, 0] = m00
    central[:, 1, 0] = 0.0
    central[:, 0, 1] = 0.0
    # mu11 of a mirror-symmetric object is 0; keep round-off from choosing the orientation's sign
    tiny = np.abs(central[:, 1, 1]) < 1e-12 * (central[:, 2, 0] + central[:, 0, 2])
    central[tiny, 1, 1] = 0.0
    normalized = np.full((n, 4, 4), np.nan)
    for p in range(4):
        for q in range(4):
            if p + q >= 2:
                normalized[:, p, q] = central[:, p, q] / m00 ** ((p + q) / 2 + 1)
    nu = normalized
    n20, n02, n11 = nu[:, 2, 0], nu[:, 0, 2], nu[:, 1, 1]
    n30, n03, n21, n12 = nu[:, 3, 0], nu[:, 0, 3], nu[:, 2, 1], nu[:, 1, 2]
    a_, b_ = n30 + n12, n21 + n03
    hu = [
        n20 + n02,
        (n20 - n02) ** 2 + 4 * n11**2,
        (n30 - 3 * n12) ** 2 + (3 * n21 - n03) ** 2,
        a_**2 + b_**2,
        (n30 - 3 * n12) * a_ * (a_**2 - 3 * b_**2) + (3 * n21 - n03) * b_ * (3 * a_**2 - b_**2),
        (n20 - n02) * (a_**2 - b_**2) + 4 * n11 * a_ * b_,
        (3 * n21 - n03) * a_ * (a_**2 - 3 * b_**2) - (n30 - 3 * n12) * b_ * (3 * a_**2 - b_**2),
    ]
    a = central[:, 2, 0] / m00
    b = central[:, 1, 1] / m00
    cq = central[:, 0, 2] / m00
    half = (a + cq) / 2
    disc = np.sqrt(((cq - a) / 2) ** 2 + b**2)
    e1 = np.clip(half + disc, 0.0, None)
    e2 = np.clip(half - disc, 0.0, None)
    it00, itoff, it11 = cq, -b, a
    with np.errstate(invalid="ignore", divide="ignore"):
        ecc = np.where(e1 == 0, 0.0, np.sqrt(np.clip(1 - e2 / e1, 0.0, None)))
    orient = np.where(
        it00 - it11 == 0,
        np.where(itoff < 0, np.pi / 4, -np.pi / 4),
        0.5 * np.arctan2(-2 * itoff, it11 - it00),
    )
    out: dict[str, NDArray[np.float64]] = {}
    for p in range(3):
        for q in range(4):
            out[f"SpatialMoment_{p}_{q}"] = raw[:, p, q]
    for p in range(3):
        for q in range(4):
            out[f"CentralMoment_{p}_{q}"] = central[:, p, q]
    for p in range(4):
        for q in range(4):
            out[f"NormalizedMoment_{p}_{q}"] = normalized[:, p, q]
    for k in range(7):
        out[f"HuMoment_{k}"] = hu[k]
    out["InertiaTensor_0_0"] = it00
    out["InertiaTensor_0_1"] = itoff
    out["InertiaTensor_1_0"] = itoff
    out["InertiaTensor_1_1"] = it11
    out["InertiaTensorEigenvalues_0"] = e1
    out["InertiaTensorEigenvalues_1"] = e2
    out["MajorAxisLength"] = 4 * np.sqrt(e1)
    out["MinorAxisLength"] = 4 * np.sqrt(e2)
    out["Eccentricity"] = ecc
    out["Orientation"] = orient * (180 / np.pi)
    return out


# ---------------------------------------------------------------------------------- Zernike
def _poly_mul(a: NDArray[np.complex128], b: NDArray[np.complex128]) -> NDArray[np.complex128]:
    """Product of two bivariate polynomials given as coefficient grids ``c[i, j] y^i x^j``."""
    out = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1), dtype=complex)
    for i, j in zip(*np.nonzero(a), strict=True):
        out[i : i + b.shape[0], j : j + b.shape[1]] += a[i, j] * b
    return out


@cache
def _zernike_monomials(order: int) -> NDArray[np.complex128]:
    """``(K, (order+1)^2)`` complex coefficients: V_nm(y, x) = sum c[k, i*(order+1)+j] y^i x^j.

    V_nm = R_nm(rho) * z^m with z = y + i x (CellProfiler/centrosome's convention), R_nm the
    Zernike radial polynomial written in rho^2 = y^2 + x^2.
    """
    size = order + 1
    rho2 = np.zeros((3, 3), dtype=complex)
    rho2[2, 0] = 1
    rho2[0, 2] = 1
    z = np.zeros((2, 2), dtype=complex)
    z[1, 0] = 1
    z[0, 1] = 1j
    idx = zernike_indexes(order)
    out = np.zeros((len(idx), size * size), dtype=complex)
    for k, (n, m) in enumerate(idx):
        poly = np.zeros((1, 1), dtype=complex)
        # R_nm(rho) = sum_s (-1)^s (n-s)! / (s! ((n+m)/2-s)! ((n-m)/2-s)!) rho^(n-2s)
        # and rho^(n-2s) * z^m / rho^m -> (rho^2)^((n-m)/2 - s) * z^m
        from math import factorial

        radial = np.zeros((1, 1), dtype=complex)
        for s in range((n - m) // 2 + 1):
            coef = (
                (-1) ** s
                * factorial(n - s)
                / (factorial(s) * factorial((n + m) // 2 - s) * factorial((n - m) // 2 - s))
            )
            term = np.full((1, 1), coef, dtype=complex)
            for _ in range((n - m) // 2 - s):
                term = _poly_mul(term, rho2)
            big = np.zeros(
                (max(radial.shape[0], term.shape[0]), max(radial.shape[1], term.shape[1])),
                dtype=complex,
            )
            big[: radial.shape[0], : radial.shape[1]] += radial
            big[: term.shape[0], : term.shape[1]] += term
            radial = big
        poly = radial
        for _ in range(m):
            poly = _poly_mul(poly, z)
        grid = np.zeros((size, size), dtype=complex)
        grid[: poly.shape[0], : poly.shape[1]] = poly[:size, :size]
        out[k] = grid.ravel()
    return out


def zernike_sums(
    ob: Objects,
    weights: NDArray[np.float64] | None = None,
    order: int = 9,
) -> NDArray[np.complex128]:
    """``(n, K)`` sums over each object's pixels inside its minimum enclosing circle of V_nm,
    optionally weighted per pixel (sorted pixel order), in coordinates normalized to that
    circle ((p - c) / radius)."""
    n = ob.n
    size = order + 1
    cy, cx, radius = enclosing_circles(ob)
    # normalized pixel coordinates: the same for the shape family and every radial channel
    if "zernike_xy" not in ob.shared:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (ob.rows - cy[ob.obj]) / radius[ob.obj]
            x = (ob.cols - cx[ob.obj]) / radius[ob.obj]
        inside = (x * x + y * y) <= 1.0
        ob.shared["zernike_xy"] = (inside, np.where(inside, x, 0.0))
    inside, x = ob.shared["zernike_xy"]
    w = inside.astype(np.float64) if weights is None else np.where(inside, weights, 0.0)
    # monomial moments M[k, i, j] = sum_p w y^i x^j, separably: pixels of one object row share
    # y, so first S_j = sum over each row of w x^j (order + 1 pixel-level products and segment
    # sums), then M[k, i, j] = sum over the object's rows of y^i S_j (row-level only)
    seg, rowv, _, _ = ob.runs
    rstart = ob.run_starts
    xs = np.empty((size, rstart.size - 1))
    px = w.copy()
    for j in range(size):
        if j:
            px *= x
        xs[j] = np.add.reduceat(px, rstart[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):  # single pixels: radius 0
        yr = np.nan_to_num((rowv - cy[seg]) / radius[seg])
    ostart = seg_starts(seg, n)[:-1]
    # only the monomials of degree <= order (i + j < size) have coefficients
    mono = np.empty((n, size * (size + 1) // 2))
    yp = np.ones_like(yr)
    col = 0
    for i in range(size):
        if i:
            yp = yp * yr
        for j in range(size - i):
            mono[:, col] = np.add.reduceat(yp * xs[j], ostart)
            col += 1
    coeffs = _zernike_monomial_matrix(order)
    # one real product (real and imaginary coefficients side by side) by einsum's own loops: a
    # BLAS call here wakes BLAS threads that then spin; a complex product costs 4x the flops
    both = np.einsum("np,pk->nk", mono, coeffs)
    k = coeffs.shape[1] // 2
    out = both[:, :k] + 1j * both[:, k:]
    out[~(radius > 0)] = np.nan  # a single pixel has no enclosing disk to measure in
    return out


@cache
def _zernike_monomial_matrix(order: int) -> NDArray[np.float64]:
    """``(monomials of degree <= order, 2K)``: the coefficients of :func:`_zernike_monomials`
    for ``y^i x^j`` with ``i + j <= order`` (i ascending, then j), real parts then imaginary."""
    size = order + 1
    full = _zernike_monomials(order).reshape(-1, size, size)
    keep = np.array([i * size + j for i in range(size) for j in range(size - i)])
    low = full.reshape(full.shape[0], -1)[:, keep].T
    return np.ascontiguousarray(np.concatenate([low.real, low.imag], axis=1))


# ------------------------------------------------------------------------------------ public
def hull_data(ob: Objects) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Convex hull of every object's pixel centres (shared by shape and radial families)."""
    seg, rows, left, right = ob.runs
    return convex_hulls(seg, rows, left, right, ob.n)


def enclosing_circles(
    ob: Objects,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Minimum enclosing circle (centre y, x and radius, pixels) of every object's pixel
    centres, computed once per object index (shape Zernike and radial Zernike share it)."""
    if "mec" not in ob.shared:
        hy, hx, nv = _hull(ob)
        ob.shared["mec"] = minimum_enclosing_circles(hy, hx, nv, _hull_d2(ob))
    return ob.shared["mec"]  # type: ignore[no-any-return]


def _hull(ob: Objects) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    if "hull" not in ob.shared:
        ob.shared["hull"] = hull_data(ob)
    return ob.shared["hull"]  # type: ignore[no-any-return]


def _hull_d2(ob: Objects) -> NDArray[np.float64]:
    if "hull_d2" not in ob.shared:
        hy, hx, _ = _hull(ob)
        ob.shared["hull_d2"] = pair_distances2(hy, hx)
    return ob.shared["hull_d2"]  # type: ignore[no-any-return]


def measure_shape(
    ob: Objects,
    *,
    spacing: float | None = None,
    zernike: bool = True,
    moments: bool = True,
) -> dict[str, NDArray[np.float64]]:
    """Shape features of every object (keys without the ``AreaShape_`` prefix).

    ``spacing`` (µm per pixel, isotropic) multiplies lengths and squares areas; moments,
    bounding-box coordinates and centres stay in pixels.
    """
    n = ob.n
    area = ob.count.astype(np.float64)
    bb = ob.bbox
    out: dict[str, NDArray[np.float64]] = {"Area": area}
    perim = _perimeter(ob)
    out["Perimeter"] = perim
    with np.errstate(divide="ignore", invalid="ignore"):
        out["FormFactor"] = 4 * np.pi * area / perim**2
    out["Compactness"] = perim**2 / np.maximum(4 * np.pi * area, 1.0)
    mom = _moments(ob)
    out["Eccentricity"] = mom.pop("Eccentricity")
    hy, hx, nv = _hull(ob)
    conv = convex_areas(hy, hx, nv, bb)
    out["Solidity"] = area / conv
    bbox_area = ((bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])).astype(np.float64)
    out["Extent"] = area / bbox_area
    euler, filled = _euler_and_filled(ob)
    out["EulerNumber"] = euler
    for k in ("MajorAxisLength", "MinorAxisLength", "Orientation"):
        out[k] = mom.pop(k)
    out["EquivalentDiameter"] = np.sqrt(4 * area / np.pi)
    out["ConvexArea"] = conv
    out["FilledArea"] = filled
    out["BoundingBoxArea"] = bbox_area
    out["BoundingBoxMinimum_X"] = bb[:, 1].astype(np.float64)
    out["BoundingBoxMaximum_X"] = bb[:, 3].astype(np.float64)
    out["BoundingBoxMinimum_Y"] = bb[:, 0].astype(np.float64)
    out["BoundingBoxMaximum_Y"] = bb[:, 2].astype(np.float64)
    cen = ob.centroid
    out["Center_X"] = cen[:, 1]
    out["Center_Y"] = cen[:, 0]
    d = ob.distance_to_edge
    out["MaximumRadius"] = np.maximum.reduceat(d, ob.starts[:-1]) if n else np.zeros(0)
    out["MeanRadius"] = ob.segment_sum(d) / np.maximum(area, 1)
    out["MedianRadius"] = _segment_median(ob, d) if n else np.zeros(0)
    min_f, max_f = feret_diameters(hy, hx, nv, _hull_d2(ob))
    out["MinFeretDiameter"] = min_f
    out["MaxFeretDiameter"] = max_f
    if moments:
        out.update(mom)
    if zernike:
        rad = enclosing_circles(ob)[2]
        sums = zernike_sums(ob)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.abs(sums) / (np.pi * rad * rad)[:, None]
        for kz, (zn, zm) in enumerate(ZERNIKE_INDEXES):
            out[f"Zernike_{zn}_{zm}"] = score[:, kz]
    if spacing is not None:
        for key in _LENGTHS:
            out[key] = out[key] * spacing
        for key in _AREAS:
            out[key] = out[key] * spacing * spacing
    return out
