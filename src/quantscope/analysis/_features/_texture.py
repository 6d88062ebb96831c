"""Haralick texture features (``Texture_*``), as CellProfiler's MeasureTexture / cp_measure.

For each object and each of the four 2-D directions (0: right, 1: down-right, 2: down,
3: down-left, mahotas' order, at ``scale`` pixels) the symmetric grey-level co-occurrence
matrix of pixel pairs inside the object is built, pairs with a zero grey level ignored, and the
13 features of Haralick et al. (1973, doi:10.1109/TSMC.1973.4309314) computed with mahotas'
definitions (``mahotas.features.haralick(ignore_zeros=True)``). Intensities are quantized as
cp_measure does: ``skimage.util.img_as_ubyte`` (``round(255 v)`` for v in [0, 1]) and, for
``gray_levels < 256``, rescaled from [0, 255] to [0, gray_levels - 1]. Values outside [0, 1]
are clipped and NaN becomes level 0 (ignored). An object without any valid pair in a direction
gets NaN for all its texture features.

Vectorized: the co-occurrence counts of all objects are one ``bincount`` per direction over
(object, level a, level b) on the compacted set of levels present; the features are then
computed from the non-empty cells and per-object marginals (``HXY2 = HX + HY`` exactly).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._objects import Objects, group_sum, seg_starts, seg_sum, segment_order

__all__ = ["HARALICK_FEATURES", "measure_texture", "texture_columns"]

HARALICK_FEATURES = [
    "AngularSecondMoment",
    "Contrast",
    "Correlation",
    "Variance",
    "InverseDifferenceMoment",
    "SumAverage",
    "SumVariance",
    "SumEntropy",
    "Entropy",
    "DifferenceVariance",
    "DifferenceEntropy",
    "InfoMeas1",
    "InfoMeas2",
]
_DIRECTIONS = [(0, 1), (1, 1), (1, 0), (1, -1)]


def texture_columns(channel: str, scale: int = 3, gray_levels: int = 256) -> list[str]:
    """Column names of the texture family (CellProfiler: feature_channel_scale_angle_levels)."""
    return [
        f"Texture_{f}_{channel}_{scale}_{d:02d}_{gray_levels}"
        for d in range(4)
        for f in HARALICK_FEATURES
    ]


def quantize(image: NDArray[np.float64], gray_levels: int) -> NDArray[np.int64]:
    q = np.rint(np.clip(np.nan_to_num(image, nan=0.0), 0.0, 1.0) * 255.0).astype(np.int64)
    if gray_levels != 256:
        q = (q * (gray_levels - 1) / 255.0).astype(np.int64)
    return q


def _xlogx_sum(seg: NDArray[np.intp], p: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Per-segment ``-sum p log2 p`` over positive ``p``."""
    pos = p > 0
    return -seg_sum(np.where(pos, p * np.log2(np.where(pos, p, 1.0)), 0.0), seg_starts(seg, n))


def _haralick(
    ia: NDArray[np.int64],
    ib: NDArray[np.int64],
    seg: NDArray[np.intp],
    n: int,
    maxv: NDArray[np.float64],
    levels: NDArray[np.int64],
) -> NDArray[np.float64]:
    """13 features for every object from its one-way pairs ``(levels[ia], levels[ib])``
    (``seg`` ascending; ``levels`` ascending, a superset of the levels in the pairs: an absent
    level adds only empty cells); returns ``(13, n)``."""
    out = np.full((13, n), np.nan)
    # symmetric co-occurrence (every pair counted both ways): 2 x pairs per object
    tot = 2.0 * np.diff(seg_starts(seg, n))
    ok = tot > 0
    if not ok.any():
        return out
    u = levels.size
    if n * u * u <= max(1 << 16, 8 * ia.size):
        dense = np.bincount((seg * u + ia) * u + ib, minlength=n * u * u).reshape(n, u, u)
        dense = dense + dense.transpose(0, 2, 1)
        nz = np.flatnonzero(dense)
        cnt = dense.ravel()[nz]
    elif n < 1 << 16:  # many cells per pair: sort the pairs (both ways) by (object, i, j)
        cell = np.concatenate([ia * u + ib, ib * u + ia])
        seg2 = np.concatenate([seg, seg])
        order = segment_order(seg2, cell, n)
        key = seg2[order] * (u * u) + cell[order]
        first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        nz = key[first]
        cnt = np.diff(np.concatenate([first, [key.size]]))
    else:  # many objects x many levels: sparse cells
        cell = np.concatenate([(seg * u + ia) * u + ib, (seg * u + ib) * u + ia])
        nz, cnt = np.unique(cell, return_counts=True)
    c_seg, rem = np.divmod(nz, u * u)
    c_i, c_j = np.divmod(rem, u)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = cnt / tot[c_seg]
    vi = levels[c_i].astype(np.float64)
    vj = levels[c_j].astype(np.float64)
    # marginal px (= py, symmetric)
    cst = seg_starts(c_seg, n)  # cells are sorted by (object, i, j)
    marg = seg_sum(p, seg_starts(c_seg * u + c_i, n * u)).reshape(n, u)
    lv = levels.astype(np.float64)
    # row sums rather than BLAS matrix-vector products (tiny; BLAS threads would spin)
    ux = (marg * lv).sum(axis=1)
    vx = (marg * (lv * lv)).sum(axis=1) - ux * ux
    sx = np.sqrt(np.maximum(vx, 0))
    asm = seg_sum(p * p, cst)
    k = np.abs(vi - vj)
    contrast = seg_sum(k * k * p, cst)
    sij = seg_sum(vi * vj * p, cst)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(sx == 0, 1.0, (sij - ux * ux) / (sx * sx))
    idm = seg_sum(p / (1.0 + k * k), cst)
    # p_{x+y}(t) and p_{x-y}(t)
    top = int(levels.max())
    sidx = (vi + vj).astype(np.int64)
    plus = group_sum(c_seg * (2 * top + 1) + sidx, p, n * (2 * top + 1))
    plus = plus.reshape(n, 2 * top + 1)
    didx = k.astype(np.int64)
    minus = group_sum(c_seg * (top + 1) + didx, p, n * (top + 1))
    minus = minus.reshape(n, top + 1)
    tk = np.arange(2 * top + 1, dtype=np.float64)
    sum_avg = (plus * tk).sum(axis=1)
    sum_var = (plus * (tk * tk)).sum(axis=1) - sum_avg**2
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_ent = -np.where(plus > 0, plus * np.log2(np.where(plus > 0, plus, 1)), 0).sum(axis=1)
        diff_ent = -np.where(minus > 0, minus * np.log2(np.where(minus > 0, minus, 1)), 0).sum(
            axis=1
        )
    entropy = _xlogx_sum(c_seg, p, n)
    # mahotas: variance of the maxv-long vector p_{x-y} (maxv = object's max level + 1)
    diff_var = (minus * minus).sum(axis=1) / maxv - (1.0 / maxv) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        hx = -np.where(marg > 0, marg * np.log2(np.where(marg > 0, marg, 1)), 0).sum(axis=1)
        pxpy = marg[c_seg, c_i] * marg[c_seg, c_j]
        hxy1 = -seg_sum(p * np.log2(pxpy), cst)
        hxy2 = 2 * hx
        imc1 = np.where(hx == 0, entropy - hxy1, (entropy - hxy1) / hx)
        imc2 = np.sqrt(np.maximum(0.0, 1 - np.exp(-2.0 * (hxy2 - entropy))))
    feats = [asm, contrast, corr, vx, idm, sum_avg, sum_var, sum_ent, entropy, diff_var,
             diff_ent, imc1, imc2]  # fmt: skip
    for f, val in enumerate(feats):
        out[f] = np.where(ok, val, np.nan)
    return out


def measure_texture(
    ob: Objects, values: NDArray[np.float64], scale: int = 3, gray_levels: int = 256
) -> dict[str, NDArray[np.float64]]:
    """Haralick features of every object for one channel (keys without the channel), from the
    channel's values at the objects' pixels (sorted pixel order, CellProfiler's scale).

    Pairs are gathered for the object pixels only, from images padded by ``scale``.
    """
    n = ob.n
    h, w = ob.shape
    lv = quantize(values, gray_levels)
    maxv = np.zeros(n)
    if n:
        maxv = np.maximum.reduceat(lv, ob.starts[:-1]).astype(np.float64) + 1
    s = scale
    pw = w + 2 * s
    key = f"texture_padded_{s}"
    if key not in ob.shared:  # shared by all channels
        pidx = np.full((h + 2 * s) * pw, -1, dtype=np.int32)
        pflat = (ob.rows + s) * pw + ob.cols + s
        pidx[pflat] = ob.obj
        ob.shared[key] = (pidx, pflat)
    pidx, pflat = ob.shared[key]
    # the non-zero levels present (zeros are not counted, as mahotas), and every pixel's
    # 1-based index among them (0 for level 0)
    present = np.zeros(256, dtype=bool)
    present[lv] = True
    present[0] = False
    levels = np.flatnonzero(present)
    lut = np.cumsum(present)
    li = lut[lv].astype(np.int32)
    # object index and level index of every padded pixel in one int32 (object * 256 + index;
    # < 0: no object), so that a neighbour costs one gather
    code = pidx * 256
    code[pflat] += li
    own = (ob.obj * 256).astype(np.int32)
    nonzero = li > 0
    res = np.full((4, 13, n), np.nan)
    for d, (dy, dx) in enumerate(_DIRECTIONS):
        nb = code[pflat + (dy * s) * pw + dx * s]
        keep = nonzero & (nb > own) & (nb < own + 256)
        res[d] = _haralick(
            li[keep].astype(np.int64) - 1,
            (nb[keep] & 255).astype(np.int64) - 1,
            ob.obj[keep],
            n,
            maxv,
            levels,
        )
    # mahotas raises (-> NaN for every feature) when any direction has no pair
    bad = np.isnan(res[:, 0, :]).any(axis=0)
    res[:, :, bad] = np.nan
    out = {}
    for d in range(4):
        for f, name in enumerate(HARALICK_FEATURES):
            out[f"{name}_{scale}_{d:02d}_{gray_levels}"] = res[d, f]
    return out
