"""The full per-channel metric set of one plane: :func:`channel_metrics`."""

from __future__ import annotations

import math
from typing import Any

from ._background import _background
from ._common import prepare
from ._field import plane_field
from ._focus import plane_focus, stack_metrics
from ._illumination import _illumination
from ._intensity import (
    EMPTY_FOREGROUND_PCT,
    _dynamic_range,
    _extreme_counts,
    _foreground_pct,
    _intensity_range,
    _pct_at_dtype_max,
    _pct_at_value,
)
from ._registry import METRICS
from ._tiles import _tiles

__all__ = ["BEST_FOCUS_PLANE", "best_plane_metrics", "channel_metrics"]

#: Name of the extra value :func:`best_plane_metrics` gives a z-stack (0-based z index of the
#: plane measured).
BEST_FOCUS_PLANE = "best_focus_plane"


def channel_metrics(plane: Any, *, significant_bits: int | None = None) -> dict[str, float]:
    """Every quality metric of one 2-D plane (one channel of one image), in one pass.

    Parameters
    ----------
    plane : array_like
        2-D image ``(Y, X)`` of any real dtype (integers, booleans, floats with NaN/inf).
    significant_bits : int, optional
        Bits the detector uses (e.g. 12 for a 12-bit camera stored as uint16, from the OME
        ``SignificantBits``). Sets the saturation level and the full scale.

    Returns
    -------
    dict of str to float
        One value per entry of :data:`METRICS`, in that order; see each entry for the name,
        unit and direction. Undefined values are NaN (never an exception or a warning).
        ``is_empty`` is 1.0 or 0.0 (foreground below 0.05 % of the field, see
        :func:`is_empty`). For empty fields the focus metrics, ``snr`` and
        ``dynamic_range_used`` are NaN: there is no signal whose focus, strength or exposure
        could be judged (the field is flagged as empty instead). When no pixel is finite,
        every metric is NaN except ``pct_nonfinite`` (100) and ``is_empty`` (1).

    Raises
    ------
    quantscope.errors.InvalidInput
        If ``plane`` is not a non-empty 2-D real array or ``significant_bits`` is out of range.

    Notes
    -----
    The cost is O(N) in the pixel count N plus one FFT of at most 1024 x 1024 px. Planes of
    at least 128 px on each side have their power-spectrum slope and Laplacian variance
    measured on the 2 x 2-binned plane (a quarter of the pixels; same frequency band for the
    slope; validated to rank focus like the unbinned definitions, see :func:`focus_plls` and
    :func:`focus_laplacian_var`). The metrics share their work, passed explicitly from here:
    integer planes of up to 16 bits are read directly (no float copy is made), one pass gives
    the tile sums of the local focus score, the normalized variance and the mean (exact
    integer sums), the extremes come from the input check, the background estimate, its
    field, the binned plane and the counts at the extremes are computed once. Robust
    statistics use a counted subsample of about 65,000 pixels, the background field one of
    at most 512 x 512. The separable Gaussian runs as matrix products on bands that stay in
    the CPU cache; every matrix product is small enough that OpenBLAS runs it on the calling
    thread (none of its own threads competing with QC threads), and large temporaries live
    in per-thread scratch buffers (at most 32 MiB each, kept between calls). The tile sums
    reduce whole bands of tile rows at once (32-bit integers where the squares fit), and the
    MAD of counted samples is one ``bincount`` (the kernels of ``_kernels``, each tested
    against a plain numpy / scipy reference). A few ms for a 520 x 696 uint16
    plane on one core (bench/qc.py prints the current figures). Every numpy
    call on a large array releases the interpreter lock, which costs more the busier the
    other threads of the process are: during an ingest the same plane takes about a third
    longer (CPU time).

    The values are those of the plain definitions: bit for bit for the saturation,
    intensity, background median and MAD, and content metrics; to float rounding for the
    others (see the notes of each metric), the two binned focus metrics being defined on the
    binned plane.

    For a z-stack, find the best plane with :func:`stack_metrics` and measure that plane.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = channel_metrics(rng.poisson(100, (64, 64)).astype(np.uint16))
    >>> m["is_empty"], round(m["background_median"])
    (1.0, 100)
    """
    p = prepare(plane, significant_bits=significant_bits, name="plane", transient=True)
    out = dict.fromkeys(METRICS, math.nan)
    out["pct_nonfinite"] = 100.0 * (p.size - p.n_finite) / p.size
    if p.all_nonfinite:
        out["is_empty"] = 1.0
        return out

    # The intermediates several metrics share, computed once here and passed explicitly.
    bg = _background(p)
    bgf = plane_field(p)
    foreground = _foreground_pct(p, bg, bgf)
    empty = not foreground >= EMPTY_FOREGROUND_PCT
    mean = None
    if not empty:
        tiles = _tiles(p)
        out.update(plane_focus(p, tiles))
        if p.small_ints:
            mean = tiles.plane_mean  # the exact mean of the integer tile sums
    lo, hi, mean = _intensity_range(p, mean)
    if not empty:
        out["snr"] = bg.snr
        out["dynamic_range_used"] = _dynamic_range(p, lo, hi)
    ratio, flatness = _illumination(p, bgf=bgf)
    extremes = _extreme_counts(p)
    out.update(
        saturation_pct_at_max=_pct_at_value(p, "max", extremes),
        saturation_pct_at_dtype_max=_pct_at_dtype_max(p, extremes),
        pct_at_min=_pct_at_value(p, "min", extremes),
        intensity_min=lo,
        intensity_max=hi,
        intensity_mean=mean,
        background_median=bg.median,
        background_mad=bg.mad,
        illum_corner_center_ratio=ratio,
        illum_flatness=flatness,
        foreground_pct=foreground,
        is_empty=1.0 if empty else 0.0,
    )
    return {name: float(out[name]) for name in METRICS}


def best_plane_metrics(stack: Any, *, significant_bits: int | None = None) -> dict[str, float]:
    """:func:`channel_metrics` of one channel's z-stack: of its plane, or of its best-focus plane.

    Parameters
    ----------
    stack : array_like
        ``(Z, Y, X)`` planes of one channel (``(Y, X)``: one plane), any real dtype.
    significant_bits : int, optional
        Bits the detector uses (see :func:`channel_metrics`).

    Returns
    -------
    dict of str to float
        For one plane, :func:`channel_metrics` of it. For ``Z > 1``, :func:`channel_metrics`
        of the plane :func:`stack_metrics` finds in best focus (the middle plane when no plane
        has a defined focus), with :data:`BEST_FOCUS_PLANE` added: its 0-based z index (NaN
        when no plane has a defined focus).

    Raises
    ------
    quantscope.errors.InvalidInput
        If ``stack`` is not a non-empty 2-D or 3-D real array.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> flat = np.full((3, 32, 32), 100, np.uint16)
    >>> flat[1] = rng.poisson(100, (32, 32))
    >>> best_plane_metrics(flat)["best_focus_plane"]
    1.0
    """
    import numpy as np

    from ..errors import InvalidInput

    arr = np.asarray(stack)
    if arr.ndim == 2:
        return channel_metrics(arr, significant_bits=significant_bits)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise InvalidInput(
            f"stack: expected a (Z, Y, X) z-stack of one channel, got shape {arr.shape}"
        )
    if arr.shape[0] == 1:
        return channel_metrics(arr[0], significant_bits=significant_bits)
    best, _ = stack_metrics(arr, significant_bits=significant_bits)
    chosen = arr[best] if best >= 0 else arr[arr.shape[0] // 2]
    metrics = channel_metrics(chosen, significant_bits=significant_bits)
    metrics[BEST_FOCUS_PLANE] = float(best) if best >= 0 else math.nan
    return metrics
