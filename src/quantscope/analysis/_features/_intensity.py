"""Intensity features (``Intensity_*``, ``Location_*``), as CellProfiler's MeasureObjectIntensity.

All statistics come from the foreground pixels sorted by object once (shared index), so each
feature is one ``bincount`` / ``reduceat`` over all objects. Quartiles and the median use
numpy's default linear interpolation (``(n - 1) q``), as cp_measure with ``legacy=False``;
MADIntensity is the median absolute deviation from the median.

Non-finite intensities (NaN, inf) are ignored: an object's statistics use its finite pixels;
an object without any finite pixel gets NaN for every intensity feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._objects import Objects, seg_starts, seg_sum, segment_order, segment_sort

__all__ = ["INTENSITY_FEATURES", "intensity_columns", "measure_intensity"]

INTENSITY_FEATURES = [
    "IntegratedIntensity",
    "MeanIntensity",
    "StdIntensity",
    "MinIntensity",
    "MaxIntensity",
    "LowerQuartileIntensity",
    "MedianIntensity",
    "UpperQuartileIntensity",
    "MADIntensity",
    "MassDisplacement",
    "IntegratedIntensityEdge",
    "MeanIntensityEdge",
    "StdIntensityEdge",
    "MinIntensityEdge",
    "MaxIntensityEdge",
]
LOCATION_FEATURES = [
    "CenterMassIntensity_X",
    "CenterMassIntensity_Y",
    "MaxIntensity_X",
    "MaxIntensity_Y",
]


def intensity_columns(channel: str) -> list[str]:
    """Column names of the intensity family for one channel."""
    return [f"Intensity_{f}_{channel}" for f in INTENSITY_FEATURES] + [
        f"Location_{f}_{channel}" for f in LOCATION_FEATURES
    ]


def _stats(seg: NDArray[np.intp], v: NDArray[np.float64], n: int) -> tuple[NDArray[Any], ...]:
    """Sum, mean, population std, min and max per segment (``seg`` ascending)."""
    st = seg_starts(seg, n)
    cnt = np.diff(st).astype(np.float64)
    s = seg_sum(v, st)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / cnt
        dev = v - mean[seg]
        std = np.sqrt(seg_sum(dev * dev, st) / cnt)
    mn = np.full(n, np.nan)
    mx = np.full(n, np.nan)
    has = cnt > 0
    if v.size:
        starts = np.concatenate([[0], np.cumsum(cnt)[:-1]]).astype(np.intp)
        mn[has] = np.minimum.reduceat(v, starts[has])
        mx[has] = np.maximum.reduceat(v, starts[has])
    s = np.where(has, s, np.nan).astype(np.float64)
    return s, mean, std, mn, mx, cnt.astype(np.float64)


def _quantiles(
    sv: NDArray[np.float64], starts: NDArray[np.intp], cnt: NDArray[np.float64], q: float
) -> NDArray[np.float64]:
    """numpy's linear quantile of every segment of the segment-wise sorted ``sv``."""
    has = cnt > 0
    c = np.maximum(cnt, 1)
    pos = (c - 1) * q
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, c.astype(np.intp) - 1)
    f = pos - lo
    res = np.full(cnt.size, np.nan)
    i0 = (starts[:-1] + lo)[has]
    i1 = (starts[:-1] + hi)[has]
    res[has] = sv[i0] * (1 - f[has]) + sv[i1] * f[has]
    return res


def _kth_deviation(
    sv: NDArray[np.float64],
    st: NDArray[np.intp],
    q: NDArray[np.intp],
    c: NDArray[np.intp],
    med: NDArray[np.float64],
    k: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """k-th and (k+1)-th smallest ``|v - med|`` per segment without sorting the deviations
    (the (k+1)-th is inf where the segment has no more values).

    The deviations are two sorted runs, ``A[t] = med - sv[st + q - 1 - t]`` (values <= med)
    and ``B[t] = sv[st + q + t] - med``; a vectorized binary search finds how many of the
    ``k + 1`` smallest come from A (Frederickson & Johnson's selection in two sorted arrays);
    the next smallest is then the smaller of the next value of A and of B.
    """
    r = c - q
    lo = np.maximum(0, k + 1 - r)
    hi = np.minimum(k + 1, q)
    top = sv.size - 1

    def a_at(t: NDArray[np.intp]) -> NDArray[np.float64]:
        return med - sv[np.clip(st + q - 1 - t, 0, top)]

    def b_at(t: NDArray[np.intp]) -> NDArray[np.float64]:
        return sv[np.clip(st + q + t, 0, top)] - med

    # smallest i in [lo, hi] with P(i): i >= q or k - i < 0 or A[i] >= B[k - i]
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        p = (mid >= q) | (k - mid < 0) | (a_at(mid) >= b_at(k - mid))
        hi = np.where(active & p, mid, hi)
        lo = np.where(active & ~p, mid + 1, lo)
    i = lo
    j = k + 1 - i
    left = np.where(i > 0, a_at(i - 1), -np.inf)
    right = np.where(j > 0, b_at(j - 1), -np.inf)
    next_a = np.where(i < q, a_at(i), np.inf)
    next_b = np.where(j < r, b_at(j), np.inf)
    return np.maximum(left, right), np.minimum(next_a, next_b)


def _mad(
    sv: NDArray[np.float64],
    starts: NDArray[np.intp],
    cnt: NDArray[np.float64],
    med: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Median absolute deviation from the median (numpy's median of ``|v - med|``)."""
    n = cnt.size
    c = cnt.astype(np.intp)
    has = c > 0
    if sv.size == 0:  # no finite pixel anywhere
        return np.full(n, np.nan)
    st = starts[:-1]
    seg = np.repeat(np.arange(n), c)
    q = np.diff(seg_starts(seg[sv <= med[seg]], n)).astype(np.intp) if sv.size else c * 0
    k1 = np.maximum((c - 1) // 2, 0)
    with np.errstate(invalid="ignore"):
        d1, after = _kth_deviation(sv, st, q, c, med, k1)
    # an even count averages the two middle deviations: the k1-th and the next one
    d2 = np.where(c % 2 == 0, after, d1)
    return np.where(has, (d1 + d2) / 2, np.nan)


def measure_intensity(
    ob: Objects, values: NDArray[np.float64], raw: NDArray[Any] | None = None
) -> dict[str, NDArray[np.float64]]:
    """Intensity and intensity-location features of every object for one channel.

    ``values`` are the channel's values (CellProfiler's scale) at the objects' pixels, in
    sorted pixel order (``ob.flat``). ``raw``, the channel image as given, lets the quantiles
    of an 8- or 16-bit integer image sort by exact integer radix sorts instead of a float sort.

    Keys are ``Intensity_<feature>`` and ``Location_<feature>`` without the channel suffix.
    Positions are in pixels (x = column, y = row).
    """
    n = ob.n
    v = values
    codes = None
    if raw is not None and raw.dtype.kind in "ui" and raw.dtype.itemsize <= 2:
        codes = raw.ravel()[ob.flat].astype(np.int64)
        if raw.dtype.kind == "i":
            codes = codes - int(np.iinfo(raw.dtype).min)
    finite = np.isfinite(v)
    seg, rows, cols = ob.obj, ob.rows, ob.cols
    if not finite.all():
        v, seg, rows, cols = v[finite], seg[finite], rows[finite], cols[finite]
    s, mean, std, mn, mx, cnt = _stats(seg, v, n)
    starts = seg_starts(seg, n)
    order = (
        segment_sort(seg, v)
        if codes is None
        else segment_order(seg, codes[finite] if not finite.all() else codes, n)
    )
    sv = v[order]
    q1 = _quantiles(sv, starts, cnt, 0.25)
    med = _quantiles(sv, starts, cnt, 0.5)
    q3 = _quantiles(sv, starts, cnt, 0.75)
    mad = _mad(sv, starts, cnt, med)
    with np.errstate(invalid="ignore", divide="ignore"):
        st = seg_starts(seg, n)
        cy = seg_sum(rows, st) / cnt
        cx = seg_sum(cols, st) / cnt
        iy = seg_sum(rows * v, st) / s
        ix = seg_sum(cols * v, st) / s
    mass = np.sqrt((iy - cy) ** 2 + (ix - cx) ** 2)
    # first pixel (C order) holding the object's maximum
    at_max = np.flatnonzero(v == mx[seg])
    first_seg, first = np.unique(seg[at_max], return_index=True)
    max_y = np.full(n, np.nan)
    max_x = np.full(n, np.nan)
    max_y[first_seg] = rows[at_max[first]]
    max_x[first_seg] = cols[at_max[first]]
    out = {
        "Intensity_IntegratedIntensity": s,
        "Intensity_MeanIntensity": mean,
        "Intensity_StdIntensity": std,
        "Intensity_MinIntensity": mn,
        "Intensity_MaxIntensity": mx,
        "Intensity_LowerQuartileIntensity": q1,
        "Intensity_MedianIntensity": med,
        "Intensity_UpperQuartileIntensity": q3,
        "Intensity_MADIntensity": mad,
        "Intensity_MassDisplacement": mass,
    }
    # edge pixels: find_boundaries(labels, mode="inner")
    e = ob.edge
    if not finite.all():
        e = e[finite]
    es, emean, estd, emn, emx, _ = _stats(seg[e], v[e], n)
    out["Intensity_IntegratedIntensityEdge"] = es
    out["Intensity_MeanIntensityEdge"] = emean
    out["Intensity_StdIntensityEdge"] = estd
    out["Intensity_MinIntensityEdge"] = emn
    out["Intensity_MaxIntensityEdge"] = emx
    out["Location_CenterMassIntensity_X"] = ix
    out["Location_CenterMassIntensity_Y"] = iy
    out["Location_MaxIntensity_X"] = max_x
    out["Location_MaxIntensity_Y"] = max_y
    return out
