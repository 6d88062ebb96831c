"""Radial intensity distribution (``RadialDistribution_*``), as CellProfiler's
MeasureObjectIntensityDistribution (scaled bins, no overflow bin).

Each object's centre is the pixel farthest from its edge (first in C order on ties). Every pixel
gets a normalized distance ``d_c / (d_c + d_e + 0.001)`` where ``d_e`` is its distance to the
object's edge and ``d_c`` its distance from the centre, measured as CellProfiler's propagate
measures it with no image term: the 8-connected chamfer distance (steps 1 and sqrt 2). Pixels are
binned into ``bins`` rings; per object and ring:

* FracAtD: fraction of the object's total intensity in the ring;
* MeanFrac: FracAtD divided by the fraction of the object's pixels in the ring;
* RadialCV: coefficient of variation (std / mean, population) of the mean intensity of the 8
  angular sectors of the ring (sectors without pixels ignored; 0 when the ring is empty).

``d_e`` is measured to the nearest non-object pixel inside the image (the image edge is not an
edge), as CellProfiler. Deliberate difference: ``d_c`` is the chamfer distance along the
straight octagonal path, which equals propagate's geodesic distance when that path stays inside
the object (convex and most star-shaped objects; all of BBBC039's nuclei).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._objects import Objects, group_sum, seg_starts, seg_sum

__all__ = ["measure_radial", "radial_columns"]

_SQRT2M1 = np.sqrt(2.0) - 1.0


def radial_columns(channel: str, bins: int = 4, zernike: bool = True) -> list[str]:
    """Column names of the radial family for one channel."""
    cols = [
        f"RadialDistribution_{f}_{channel}_{b}of{bins}"
        for b in range(1, bins + 1)
        for f in ("FracAtD", "MeanFrac", "RadialCV")
    ]
    if zernike:
        from ._shape import ZERNIKE_INDEXES

        for n, m in ZERNIKE_INDEXES:
            cols.append(f"RadialDistribution_ZernikeMagnitude_{channel}_{n}_{m}")
            cols.append(f"RadialDistribution_ZernikePhase_{channel}_{n}_{m}")
    return cols


def radial_geometry(ob: Objects, bins: int = 4) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Per sorted pixel: ring index (0..bins-1) and angular sector (0..7); shared by channels."""
    n = ob.n
    d_e = ob.distance_to_edge_inside
    if n == 0:
        z = np.zeros(0, dtype=np.intp)
        return z, z
    dmax = np.maximum.reduceat(d_e, ob.starts[:-1])
    at = np.flatnonzero(d_e == dmax[ob.obj])
    seg_first, first = np.unique(ob.obj[at], return_index=True)
    ci = np.zeros(n)
    cj = np.zeros(n)
    ci[seg_first] = ob.rows[at[first]]
    cj[seg_first] = ob.cols[at[first]]
    di = ob.rows - ci[ob.obj]
    dj = ob.cols - cj[ob.obj]
    adi, adj = np.abs(di), np.abs(dj)
    d_c = np.maximum(adi, adj) + _SQRT2M1 * np.minimum(adi, adj)
    norm = d_c / (d_c + d_e + 0.001)
    ring = np.minimum((norm * bins).astype(np.intp), bins - 1)
    sector = (di > 0).astype(np.intp) + 2 * (dj > 0) + 4 * (adi > adj)
    return ring, sector


def measure_radial(
    ob: Objects,
    values: NDArray[np.float64],
    bins: int = 4,
    geometry: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None,
    zernike: bool = True,
) -> dict[str, NDArray[np.float64]]:
    """Radial distribution features of every object for one channel (keys without channel),
    from the channel's values at the objects' pixels (sorted pixel order, CellProfiler's scale).

    With ``zernike``, also the intensity-weighted Zernike moments (n <= 9) in the object's
    minimum enclosing circle: ZernikeMagnitude = |sum I V_nm| / pixel count and
    ZernikePhase = atan2(Re, Im), as CellProfiler. Non-finite pixels count as 0 intensity.
    """
    n = ob.n
    ring, sector = geometry if geometry is not None else radial_geometry(ob, bins)
    v = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    key = ob.obj * bins + ring
    skey = key * 8 + sector
    nkeys = n * bins * 8
    if nkeys < 1 << 16 and skey.size:
        # one radix sort of the keys for both sums (group_sum would sort twice)
        order = np.argsort(skey.astype(np.uint16), kind="stable")
        starts = seg_starts(skey[order], nkeys)
        sv = seg_sum(v[order], starts).reshape(n, bins, 8)
        sc = np.diff(starts).astype(np.float64).reshape(n, bins, 8)
    else:
        sv = group_sum(skey, v, nkeys).reshape(n, bins, 8)
        sc = group_sum(skey, None, nkeys).reshape(n, bins, 8)
    inten = sv.sum(axis=2)
    npix = sc.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = inten / inten.sum(axis=1, keepdims=True)
        pfrac = npix / npix.sum(axis=1, keepdims=True)
        mean_frac = frac / (pfrac + np.finfo(float).eps)
    has = sc > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(has, sv / np.where(has, sc, 1), 0.0)
        k = has.sum(axis=2)
        mu = means.sum(axis=2) / k
        var = (np.where(has, (means - mu[:, :, None]) ** 2, 0.0)).sum(axis=2) / k
        cv = np.sqrt(var) / mu
    cv = np.where(k == 0, 0.0, cv)
    out = {}
    for b in range(bins):
        out[f"FracAtD_{b + 1}of{bins}"] = frac[:, b]
        out[f"MeanFrac_{b + 1}of{bins}"] = mean_frac[:, b]
        out[f"RadialCV_{b + 1}of{bins}"] = cv[:, b]
    if zernike:
        from ._shape import ZERNIKE_INDEXES, zernike_sums

        sums = zernike_sums(ob, weights=v)
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = np.abs(sums) / ob.count[:, None]
        phase = np.arctan2(sums.real, sums.imag)
        for k, (zn, zm) in enumerate(ZERNIKE_INDEXES):
            out[f"ZernikeMagnitude_{zn}_{zm}"] = mag[:, k]
            out[f"ZernikePhase_{zn}_{zm}"] = phase[:, k]
    return out
