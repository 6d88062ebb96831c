"""Input checking and the shared working copy of one plane.

Every metric accepts any real 2-D array: integers of any width, booleans and floats (NaN and
infinity allowed). :func:`prepare` turns it once into a :class:`Plane`: a float working copy
whose non-finite pixels are replaced by the median of the finite ones and whose values are
multiplied by an exact power of two so that they lie in [-1, 1] (squares then never overflow,
whatever the dynamic range). Metrics convert their result back to physical units with
:meth:`Plane.to_units`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

__all__ = ["SAMPLE_TARGET", "Plane", "prepare", "safe_ratio"]

#: Robust statistics (medians, percentiles, modes) use a regular subsample of about this many
#: pixels; the standard error this adds is well below 1 % of the noise level.
SAMPLE_TARGET = 1 << 16

FloatArray = npt.NDArray[np.floating[Any]]


def safe_ratio(num: float, den: float) -> float:
    """``num / den`` as a Python float; NaN where the ratio is undefined (0/0, x/0, non-finite)."""
    if den == 0 or not math.isfinite(num) or not math.isfinite(den):
        return math.nan
    with np.errstate(all="ignore"):
        return float(num) / float(den)


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
    """

    raw: npt.NDArray[Any]
    work: FloatArray
    exponent: int
    full_scale: float
    saturation_level: float | None
    n_finite: int
    range_min: float = 0.0
    finite: npt.NDArray[np.bool_] | None = None

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
        with np.errstate(all="ignore"):
            out = raw / scale
        return float(out)

    def sample(self) -> npt.NDArray[np.float64]:
        """Sorted 1-D regular subsample (about :data:`SAMPLE_TARGET` pixels) of finite values.

        Values are in working units (``raw * 2**-exponent``), float64.
        """
        step = max(1, math.ceil(math.sqrt(self.size / SAMPLE_TARGET)))
        if self.raw.dtype.kind in "ui":
            ints = np.sort(np.asarray(self.raw[::step, ::step]).ravel())
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


def prepare(plane: Any, *, significant_bits: int | None = None, name: str = "plane") -> Plane:
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
    wide = raw.dtype.itemsize > 2 or raw.dtype == np.float64
    work_dtype = np.float64 if wide else np.float32

    n_finite = raw.size
    mask: npt.NDArray[np.bool_] | None = None
    if raw.dtype.kind == "f":
        finite = np.isfinite(raw)
        n_finite = int(np.count_nonzero(finite))
        if n_finite == 0:
            work = np.zeros(raw.shape, work_dtype)
            return Plane(raw, work, 0, full_scale, saturation_level, 0, range_min, finite)
        if n_finite < raw.size:
            mask = finite
            peak = float(np.max(np.abs(raw), where=finite, initial=0.0))
        else:
            peak = float(np.max(np.abs(raw)))
    else:
        peak = float(max(abs(int(raw.min())), abs(int(raw.max()))))
    exponent = math.frexp(peak)[1] if peak > 0 else 0
    work = raw.astype(work_dtype)
    if exponent:
        # Exact power-of-two scaling: values end up in [-1, 1].
        np.ldexp(work, -exponent, out=work)
    if mask is not None:
        work[~mask] = np.median(work[mask])
    return Plane(raw, work, exponent, full_scale, saturation_level, n_finite, range_min, mask)
