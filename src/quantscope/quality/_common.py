"""Input checking and the shared working copy of one plane.

Every metric accepts any real 2-D array: integers of any width, booleans and floats (NaN and
infinity allowed). :func:`prepare` turns it once into a :class:`Plane`: a float working copy
whose non-finite pixels are replaced by the median of the finite ones and whose values are
multiplied by an exact power of two so that they lie in [-1, 1] (squares then never overflow,
whatever the dynamic range). Metrics convert their result back to physical units with
:meth:`Plane.to_units`. Integers of up to 16 bits are exact in float32 and their squares and
sums exact in 64-bit integers or float64, so their metrics compute on the raw values directly
(the working copy of an integer plane is only built on demand). The fast kernels the
metrics share (2 x 2 binning, counting sort, scratch buffers) live in ``_kernels``.

A :class:`Plane` holds no results: an intermediate that several metrics share (the tile sums,
the background, the binned plane) is computed once by the caller (:func:`channel_metrics
<quantscope.quality.channel_metrics>`) and passed to each metric explicitly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput
from ._kernels import bin2x2, counting_sort, scratch

__all__ = [
    "BINNED_MIN_SIDE",
    "SAMPLE_TARGET",
    "Plane",
    "binned",
    "prepare",
    "safe_ratio",
]

#: Robust statistics (medians, percentiles, modes) use a regular subsample of about this many
#: pixels; the standard error this adds is well below 1 % of the noise level.
SAMPLE_TARGET = 1 << 16
FloatArray = npt.NDArray[np.floating[Any]]


def safe_ratio(num: float, den: float) -> float:
    """``num / den`` as a Python float; NaN where the ratio is undefined (0/0, x/0, non-finite)."""
    if den == 0 or not math.isfinite(num) or not math.isfinite(den):
        return math.nan
    return float(num) / float(den)  # Python floats: inf or 0 where it over- or underflows


def _ldexp(value: float, exponent: int) -> float:
    """``value * 2**exponent`` as a Python float, ``±inf`` on overflow (never an exception)."""
    try:
        return math.ldexp(value, exponent)
    except OverflowError:
        return math.copysign(math.inf, value)


@dataclass(frozen=True)
class Plane:
    """One prepared 2-D plane (see :func:`prepare`).

    Attributes
    ----------
    raw : numpy.ndarray
        The input as given (integers as integers, for exact counts at a value).
    work : numpy.ndarray
        Float working copy ``raw * 2**-exponent`` with non-finite pixels replaced by the
        median of the finite ones; float32 for inputs of up to 16 bits, float64 otherwise.
        Built on first use for integer planes (the metrics of integers of up to 16 bits
        read ``raw`` directly and never need it).
    exponent : int
        ``raw == work * 2**exponent`` (exactly, for finite pixels).
    full_scale : float
        Value that maps to 1.0 in the "fraction of full scale" units of the focus metrics:
        ``2**significant_bits - 1`` if given, else the dtype maximum for integers, else 1.
    saturation_level : float or None
        The value at which the detector saturates: ``2**significant_bits - 1`` if given, else
        the integer dtype maximum; None for floats without ``significant_bits``.
    n_finite : int
        Number of finite pixels.
    range_min : float
        Lowest value the detector can record: the dtype minimum for signed integers without
        ``significant_bits``, else 0.
    finite : numpy.ndarray or None
        Boolean mask of the finite pixels, None when all pixels are finite.
    raw_min, raw_max : float
        Smallest and largest finite value of ``raw`` (NaN when no pixel is finite).
    """

    raw: npt.NDArray[Any]
    _work: FloatArray | None
    exponent: int
    full_scale: float
    saturation_level: float | None
    n_finite: int
    range_min: float = 0.0
    finite: npt.NDArray[np.bool_] | None = None
    raw_min: float = math.nan
    raw_max: float = math.nan
    transient: bool = field(default=False, compare=False, repr=False)

    @property
    def work(self) -> FloatArray:
        """The float working copy (see the class attributes)."""
        work = self._work
        if work is None:
            work = _scaled(self.raw, self.exponent, self.transient)
            object.__setattr__(self, "_work", work)
        return work

    @property
    def small_ints(self) -> bool:
        """Integers of up to 16 bits: their float32 values and squares are exact, and the
        metrics compute on ``raw`` directly (in raw units, scaled exactly at the end)."""
        return self.raw.dtype.kind in "ui" and self.raw.dtype.itemsize <= 2

    @property
    def size(self) -> int:
        """Number of pixels."""
        return int(self.raw.size)

    @property
    def all_nonfinite(self) -> bool:
        """True when no pixel is finite (every metric is then NaN)."""
        return self.n_finite == 0

    def to_units(self, value: float, power: int = 1) -> float:
        """Convert a value computed on ``work`` (of degree ``power`` in intensity) to raw units."""
        return _ldexp(float(value), self.exponent * power)

    def to_full_scale(self, value: float, power: int = 1) -> float:
        """Convert a value computed on ``work`` to fractions of the full scale."""
        raw = self.to_units(value, power)
        scale = self.full_scale**power
        if not math.isfinite(raw):
            return raw
        return raw / scale  # Python floats (scale > 0): inf or 0 where it over- or underflows

    def counted_sample(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """The regular subsample of :meth:`sample` as ascending values and their counts.

        Integer samples are counted (distinct values, by :func:`counting_sort`); otherwise
        every sample is its own value with count 1.
        """
        step = max(1, math.ceil(math.sqrt(self.size / SAMPLE_TARGET)))
        if self.raw.dtype.kind in "ui":
            lo, hi = int(self.raw_min), int(self.raw_max)
            bounds = (lo, hi) if hi - lo <= 1 << 16 else None  # else the sample's own range
            counted = counting_sort(np.asarray(self.raw[::step, ::step]), bounds)
            if counted is not None:
                values, counts = counted
                return np.ldexp(values.astype(np.float64), -self.exponent), counts
        s = self.sample()
        return s, np.ones(s.size, np.int64)

    def sample(self) -> npt.NDArray[np.float64]:
        """Sorted 1-D regular subsample (about :data:`SAMPLE_TARGET` pixels) of finite values.

        Values are in working units (``raw * 2**-exponent``), float64. Integer samples are
        sorted by counting (see :func:`counting_sort`).
        """
        step = max(1, math.ceil(math.sqrt(self.size / SAMPLE_TARGET)))
        if self.raw.dtype.kind in "ui":
            sub = np.asarray(self.raw[::step, ::step])
            counted = counting_sort(sub)
            if counted is not None:
                values, counts = counted
                return np.repeat(np.ldexp(values.astype(np.float64), -self.exponent), counts)
            ints = np.sort(sub.ravel())
            return np.ldexp(ints.astype(np.float64), -self.exponent)
        sub = self.work[::step, ::step]
        if self.finite is not None:
            sub = sub[self.finite[::step, ::step]]
            if sub.size == 0:
                sub = self.work[self.finite]
        return np.sort(sub.astype(np.float64).ravel())


def _full_scale(
    dtype: np.dtype[Any], significant_bits: int | None
) -> tuple[float, float | None, float]:
    if significant_bits is not None:
        if isinstance(significant_bits, bool) or not isinstance(significant_bits, int | np.integer):
            raise InvalidInput(
                f"significant_bits: expected an integer number of bits, got {significant_bits!r}"
            )
        bits = int(significant_bits)
        limit = np.iinfo(dtype).bits if dtype.kind in "ui" else 64
        if dtype.kind == "i":
            limit -= 1
        if not 1 <= bits <= limit:
            raise InvalidInput(
                f"significant_bits: {bits} is out of range for a {dtype} image; it must be "
                f"1..{limit} (e.g. 12 for a 12-bit camera stored as uint16)"
            )
        top = float(2**bits - 1)
        return top, top, 0.0
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(info.max), float(info.max), float(info.min)
    return 1.0, None, 0.0


def prepare(
    plane: Any,
    *,
    significant_bits: int | None = None,
    name: str = "plane",
    transient: bool = False,
) -> Plane:
    """Check a 2-D image plane and build its :class:`Plane` working copy.

    Parameters
    ----------
    plane : array_like
        2-D image ``(Y, X)`` of integers, booleans or floats. Non-finite float pixels are
        allowed (they are replaced by the median of the finite ones in the working copy).
    significant_bits : int, optional
        Bits the detector actually uses (e.g. 12 for a 12-bit camera stored as uint16).
    name : str
        Name of the argument, for error messages.
    transient : bool
        Build ``work`` in this thread's :func:`scratch` buffer (no page faults for a fresh
        array): for callers that drop the plane before preparing another one.

    Raises
    ------
    quantscope.errors.InvalidInput
        If the array is not 2-D, is empty, or is not of a real numeric type.
    """
    raw = np.asarray(plane)
    if raw.ndim != 2:
        raise InvalidInput(
            f"{name}: expected a 2-D image plane (Y, X), got an array of shape {raw.shape}; "
            f"pass one channel (and one z-plane) at a time, or use stack_metrics for (Z, Y, X)"
        )
    if raw.size == 0:
        raise InvalidInput(f"{name}: the image plane is empty (shape {raw.shape})")
    if raw.dtype.kind == "b":
        raw = raw.view(np.uint8)
    if raw.dtype.kind not in "uif":
        raise InvalidInput(
            f"{name}: unsupported pixel type {raw.dtype}; expected integers, booleans or floats"
        )
    full_scale, saturation_level, range_min = _full_scale(raw.dtype, significant_bits)
    work_dtype = np.float64 if raw.dtype.itemsize > 2 or raw.dtype == np.float64 else np.float32

    n_finite = raw.size
    mask: npt.NDArray[np.bool_] | None = None
    lo: float
    hi: float
    if raw.dtype.kind in "ui":
        lo, hi = int(raw.min()), int(raw.max())
        exponent = _exponent(max(abs(lo), abs(hi)))
        return Plane(
            raw,
            None,  # built on first use: see Plane.work
            exponent,
            full_scale,
            saturation_level,
            n_finite,
            range_min,
            None,
            lo,
            hi,
            transient=transient,
        )
    if raw.dtype.kind == "f":
        finite = np.isfinite(raw)
        n_finite = int(np.count_nonzero(finite))
        if n_finite == 0:
            work = np.zeros(raw.shape, work_dtype)
            return Plane(raw, work, 0, full_scale, saturation_level, 0, range_min, finite)
        if n_finite < raw.size:
            mask = finite
            lo = float(np.min(raw, where=finite, initial=np.inf))
            hi = float(np.max(raw, where=finite, initial=-np.inf))
        else:
            lo, hi = float(raw.min()), float(raw.max())
    exponent = _exponent(max(abs(lo), abs(hi)))
    work = _scaled(raw, exponent, transient)
    if mask is not None:
        work[~mask] = np.median(work[mask])
    return Plane(
        raw, work, exponent, full_scale, saturation_level, n_finite, range_min, mask, lo, hi
    )


#: Planes of at least this many px on each side have their power-spectrum slope and Laplacian
#: variance measured on the 2 x 2-binned plane (see :func:`binned`).
BINNED_MIN_SIDE = 128


def binned(p: Plane) -> Plane:
    """The 2 x 2-binned plane: the mean of each 2 x 2 block, as a prepared float plane with
    the full scale and saturation level of ``p`` (an odd last row or column is dropped).

    The focus metrics whose cost is dominated by filtering (power spectrum, Laplacian) use
    it for planes of at least :data:`BINNED_MIN_SIDE` px per side: a quarter of the pixels,
    the pixel noise halved, and the cell-scale structure that defocus removes kept (what the
    validation tests check). Integers of up to 16 bits are summed exactly (float32 holds the
    sum of four 16-bit values, and the division by 4 is exact). Computed anew on every call:
    callers that need it twice keep the result.
    """
    ny, nx = p.raw.shape[0] // 2 * 2, p.raw.shape[1] // 2 * 2
    if ny == 0 or nx == 0:
        raise InvalidInput(f"plane: {p.raw.shape} is too small to bin 2 x 2")
    # The binned plane's "raw units" are the working units of p (exponent 0): its values are
    # in [-1, 1] and its full scale, saturation level and extremes are p's scaled alike.
    if p.small_ints:
        src: npt.NDArray[Any] = p.raw
        acc: Any = np.int32 if p.raw.dtype.kind == "i" else np.uint32
        dtype: Any = np.float32
        factor = math.ldexp(1.0, -p.exponent - 2)  # exact: sums of four 16-bit values
    else:  # the working copy (non-finite pixels replaced)
        src = p.work
        acc = dtype = p.work.dtype.type
        factor = 0.25
    shape = (ny // 2, nx // 2)
    out = scratch("binned", shape, dtype) if p.transient else np.empty(shape, dtype)
    bin2x2(src, acc, factor, out, max_value=p.raw_max if p.small_ints else None)
    e = -p.exponent
    return Plane(
        out,
        out,
        0,
        math.ldexp(p.full_scale, e),
        None if p.saturation_level is None else math.ldexp(p.saturation_level, e),
        out.size,
        math.ldexp(p.range_min, e),
        None,
        math.ldexp(p.raw_min, e),
        math.ldexp(p.raw_max, e),
        transient=p.transient,
    )


def _exponent(peak: float) -> int:
    """The exponent ``e`` with ``peak * 2**-e`` in [0.5, 1) (0 for 0)."""
    return math.frexp(float(peak))[1] if peak > 0 else 0


def _scaled(raw: npt.NDArray[Any], exponent: int, transient: bool) -> FloatArray:
    """``raw * 2**-exponent`` (exact power-of-two scaling: values end up in [-1, 1]) as
    float32 for inputs of up to 16 bits, float64 otherwise; in the thread's scratch buffer
    for ``transient`` planes."""
    wide = raw.dtype.itemsize > 2 or raw.dtype == np.float64
    work_dtype = np.float64 if wide else np.float32
    scale = _ldexp(1.0, -exponent)
    if np.finfo(work_dtype).tiny <= scale <= np.finfo(work_dtype).max:
        # Fused with the conversion where the factor is a normal number of the working type
        # (always, except for subnormal data).
        out = scratch("work", raw.shape, work_dtype) if transient else None
        return np.asarray(np.multiply(raw, work_dtype(scale), out=out, dtype=work_dtype))
    work: FloatArray = raw.astype(work_dtype)
    np.ldexp(work, -exponent, out=work)
    return work
