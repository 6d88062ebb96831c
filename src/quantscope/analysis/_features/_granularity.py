"""Granularity spectrum (``Granularity_<n>_<channel>``), as CellProfiler's MeasureGranularity.

The algorithm of CellProfiler / cp_measure (Ravkin & Temov, "Bit representation techniques and
image processing", 2005; Maragos 1989, doi:10.1109/34.192465): the image is subsampled (bilinear,
``subsample_size``), its background (a grey opening with a disk of ``element_size`` on a further
``image_sample_size`` subsample) subtracted, then eroded step by step with a 3x3 cross; each
step's opening by reconstruction is brought back to full resolution (bilinear) and averaged per
object; ``Granularity_k`` is the drop of that mean from step k-1 to k, in percent of the
object's mean original intensity.

The whole-image work (subsampling, background, erosions, reconstructions) is shared by all
objects; the per-object means of the upsampled reconstructions are one precomputed sparse
bilinear operator applied per step (no full-resolution image per step). Step k's reconstruction
is computed under step k-1's (same result, as ``rec_k <= rec_{k-1} <= image``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._objects import Objects

__all__ = ["granularity_columns", "measure_granularity"]


def granularity_columns(channel: str, spectrum_length: int = 16) -> list[str]:
    """Column names of the granularity family for one channel."""
    return [f"Granularity_{k}_{channel}" for k in range(1, spectrum_length + 1)]


def _bilinear_means(
    ob: Objects, orig_shape: tuple[int, int], new_shape: tuple[int, int]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
    """Pieces of the per-object mean of a small image upsampled bilinearly to full size.

    Returns ``(seg, weights, src, count)``: the mean of object k is
    ``bincount(seg, weights * small.ravel()[src])[k] / count[k]``.
    """
    h, w = orig_shape
    nh, nw = new_shape

    def axis(size: int, small: int) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[Any]]:
        # per image row / column (lookup tables, gathered per pixel below)
        t = np.arange(size) * (float(small - 1) / float(size - 1))
        i0 = np.floor(t).astype(np.intp)
        return np.minimum(i0, small - 1), np.minimum(i0 + 1, small - 1), t - i0

    r0t, r1t, frt = axis(h, nh)
    c0t, c1t, fct = axis(w, nw)
    r0, r1, fr = r0t[ob.rows], r1t[ob.rows], frt[ob.rows]
    c0, c1, fc = c0t[ob.cols], c1t[ob.cols], fct[ob.cols]
    src = np.concatenate([r0 * nw + c0, r0 * nw + c1, r1 * nw + c0, r1 * nw + c1])
    wts = np.concatenate([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
    seg = np.tile(ob.obj, 4)
    return seg, wts, src, ob.count.astype(np.float64)


def _ranked_reconstruction(ranks_shape: tuple[int, int], mask_rank: NDArray[np.integer]):  # type: ignore[no-untyped-def]
    """Greyscale reconstruction by dilation (3x3 cross) of integer rank images.

    scikit-image's ``reconstruction`` sorts the seed and mask values on every call; here the
    values are dense ranks of one image (erosion commutes with the rank map), so each call only
    needs a radix sort of small integers before scikit-image's own Cython propagation loop.
    Returns ``rec(seed_rank) -> rec_rank``, or None when that loop is not importable.
    """
    try:
        from skimage.morphology._grayreconstruct import reconstruction_loop
    except ImportError:  # pragma: no cover - private API moved: use the public function
        return None
    h, w = ranks_shape
    ph, pw = h + 2, w + 2
    size = ph * pw
    itype = np.int32 if 2 * size < 2**31 - 1 else np.int64
    utype = np.uint32 if itype is np.int32 else np.uint64
    nb = np.array([-pw, -1, 1, pw], dtype=itype)
    top = int(mask_rank.max()) if mask_rank.size else 0
    small = top < 1 << 16
    images = np.zeros((2, ph, pw), dtype=utype)
    images[1, 1:-1, 1:-1] = mask_rank
    flat = images.reshape(-1)
    key = np.empty(2 * size, dtype=np.uint16 if small else np.int64)
    prev = np.empty(2 * size, dtype=itype)
    nxt = np.empty(2 * size, dtype=itype)

    def rec(seed_rank: NDArray[np.integer]) -> NDArray[np.integer]:
        pad = int(seed_rank.min())
        images[0] = pad
        images[0, 1:-1, 1:-1] = seed_rank
        images[1, 0, :] = pad
        images[1, -1, :] = pad
        images[1, :, 0] = pad
        images[1, :, -1] = pad
        # descending order by value: radix (stable) sort of top - value on 16-bit keys
        np.subtract(top, flat, out=key, casting="unsafe")
        order = np.argsort(key, kind="stable").astype(itype)
        prev[order[0]] = -1
        nxt[order[-1]] = -1
        prev[order[1:]] = order[:-1]
        nxt[order[:-1]] = order[1:]
        value_rank = flat.copy()
        reconstruction_loop(value_rank, prev, nxt, nb, order[0], size)
        return value_rank[:size].reshape(ph, pw)[1:-1, 1:-1]

    return rec


def _sample(img: NDArray[np.float64], shape: NDArray[np.integer], step: float):  # type: ignore[no-untyped-def]
    """``map_coordinates(img, mgrid[shape] / step, order=1)``: bilinear samples at ``k / step``.

    When ``1 / step`` is a whole number the coordinates are whole pixels and bilinear
    interpolation returns the pixels themselves: a strided slice (exactly equal).
    """
    from scipy import ndimage as ndi

    inv = 1.0 / step
    ny, nx = int(shape[0]), int(shape[1])
    if inv == round(inv) and (ny - 1) * inv < img.shape[0] and (nx - 1) * inv < img.shape[1]:
        k = round(inv)
        return np.ascontiguousarray(img[: (ny - 1) * k + 1 : k, : (nx - 1) * k + 1 : k])
    i, j = np.mgrid[0:ny, 0:nx].astype(float) / step
    return ndi.map_coordinates(img, (i, j), order=1)


def _erode_cross(a: NDArray[np.integer]) -> NDArray[np.integer]:
    """Grey erosion with the 3x3 cross and ``mode="reflect"`` (at the edge the reflected
    neighbour is the pixel itself), from four shifted minima instead of a generic filter."""
    out = a.copy()
    np.minimum(out[1:], a[:-1], out=out[1:])
    np.minimum(out[:-1], a[1:], out=out[:-1])
    np.minimum(out[:, 1:], a[:, :-1], out=out[:, 1:])
    np.minimum(out[:, :-1], a[:, 1:], out=out[:, :-1])
    return out


def measure_granularity(
    ob: Objects,
    image: NDArray[np.float64],
    *,
    subsample_size: float = 0.25,
    image_sample_size: float = 0.25,
    element_size: int = 10,
    spectrum_length: int = 16,
) -> dict[str, NDArray[np.float64]]:
    """Granularity spectrum of every object for one channel (keys ``Granularity_<k>``).

    Non-finite pixels are replaced by 0 before the morphology (it needs finite values).
    """
    from scipy import ndimage as ndi
    from skimage.morphology import disk, reconstruction

    n = ob.n
    keys = [f"Granularity_{k}" for k in range(1, spectrum_length + 1)]
    h, w = ob.shape
    shape = np.array([h, w])
    new_shape = (shape * subsample_size).astype(int) if subsample_size < 1 else shape
    if n == 0 or (new_shape < 2).any() or h < 2 or w < 2:
        return {k: np.full(n, np.nan) for k in keys}
    img = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)
    pixels = _sample(img, new_shape, subsample_size) if subsample_size < 1 else img.copy()
    if image_sample_size < 1:
        back_shape = new_shape * image_sample_size
        # mgrid over a float stop includes its ceiling, as CellProfiler's
        back = _sample(pixels, np.ceil(back_shape).astype(int), image_sample_size)
    else:
        back = pixels
        back_shape = new_shape
    fp = disk(element_size, dtype=bool)
    # grey opening with symmetric padding done explicitly: the same as mode="reflect" when the
    # disk fits in the image, and well defined when it does not (tiny images; scikit-image and
    # scipy then read past the array)
    r = element_size
    back = ndi.grey_erosion(np.pad(back, r, mode="symmetric"), footprint=fp)[r:-r, r:-r]
    back = ndi.grey_dilation(np.pad(back, r, mode="symmetric"), footprint=fp)[r:-r, r:-r]
    if image_sample_size < 1:
        i, j = np.mgrid[0 : new_shape[0], 0 : new_shape[1]].astype(float)
        i *= (back_shape[0] - 1) / (new_shape[0] - 1)
        j *= (back_shape[1] - 1) / (new_shape[1] - 1)
        back = ndi.map_coordinates(back, (i, j), order=1)
    pixels = np.maximum(pixels - back, 0.0)

    from scipy import sparse

    seg, wts, src, cnt = _bilinear_means(ob, (h, w), (int(new_shape[0]), int(new_shape[1])))
    # (object x small pixel) operator in CSR form straight away: pixels are sorted by object,
    # so the rows are contiguous (4 bilinear neighbours per pixel); one mat-vec per step
    npx = ob.flat.size
    wn = (wts / cnt[seg]).reshape(4, npx)
    srcs = src.reshape(4, npx)
    # consecutive pixels of an object row share their bilinear sources: merge those runs of
    # equal (object, source) entries (~4x fewer), then group the four neighbour lists by
    # object with a radix sort, so that each step's mat-vec is cheaper
    parts_o, parts_i, parts_d = [], [], []
    for k in range(4):
        brk = (ob.obj[1:] != ob.obj[:-1]) | (srcs[k, 1:] != srcs[k, :-1])
        first = np.flatnonzero(np.concatenate([[True], brk]))
        parts_d.append(np.add.reduceat(wn[k], first))
        parts_i.append(srcs[k, first])
        parts_o.append(ob.obj[first])
    o = np.concatenate(parts_o)
    order = np.argsort(o.astype(np.uint16) if n < 1 << 16 else o, kind="stable")
    data = np.concatenate(parts_d)[order]
    indices = np.concatenate(parts_i)[order]
    indptr = np.searchsorted(o[order], np.arange(n + 1))
    op = sparse.csr_matrix(
        (data, indices, indptr), shape=(n, int(new_shape[0]) * int(new_shape[1]))
    )

    def obj_mean(small: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(op @ small.ravel())

    v = img.ravel()[ob.flat]
    current = ob.segment_sum(v) / cnt
    start = np.maximum(current, np.finfo(float).eps)
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)  # CellProfiler's disk(1)
    out: dict[str, NDArray[np.float64]] = {}
    levels, inv = np.unique(pixels, return_inverse=True)
    rank = inv.reshape(pixels.shape).astype(np.int32)
    fast = _ranked_reconstruction(rank.shape, rank)
    ero: NDArray[np.integer] = rank
    for name in keys:
        # erosion commutes with the (monotone) rank map, so work on ranks throughout
        ero = _erode_cross(ero)
        if fast is not None:
            rec = levels[fast(ero)]
        else:  # pragma: no cover
            rec = reconstruction(levels[ero], pixels, footprint=cross)
        new = obj_mean(rec)
        out[name] = (current - new) * 100 / start
        current = new
    return out
