"""Order statistics of a ranked sample: medians, percentiles and MADs found by bisection.

:class:`_Ranked` holds a sorted sample as ascending values with counts (integer samples are
counted, one entry per distinct value, by ``counting_sort``) and reads off it exactly the
values ``np.median`` and ``np.percentile`` give on the expanded sorted sample, in O(log n)
per statistic (the MADs with the kernels :func:`~._kernels.sorted_mad` and
:func:`~._kernels.counted_mad`). They serve the background and pixel-noise estimates of
:mod:`._background`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ._kernels import counted_mad, sorted_mad


class _Ranked:
    """A sorted sample as ascending values with counts: order statistics in O(log n).

    Integer samples are counted (one entry per distinct value), so every statistic of the
    background works on a few hundred entries instead of ~65,000 samples, with exactly the
    values ``np.median`` and ``np.percentile`` give on the expanded sorted sample.
    """

    def __init__(
        self,
        values: npt.NDArray[np.float64],
        counts: npt.NDArray[np.int64],
        unit: float | None = None,
    ) -> None:
        self.values = values
        self.counts = counts
        self.cum = counts.cumsum()
        self.n = int(self.cum[-1]) if counts.size else 0
        self.unit_counts = values.size == self.n  # one sample per entry (float images)
        # a power of two of which every value is a whole multiple (counted integer samples
        # in working units), or None
        self.unit = unit

    def kth(self, k: int) -> float:
        """The ``k``-th smallest sample (0-based)."""
        if self.unit_counts:
            return float(self.values[k])
        return float(self.values[int(self.cum.searchsorted(k, side="right"))])

    def median(self, first: int, count: int) -> float:
        """``np.median`` of the samples of ranks ``first .. first + count - 1``."""
        mid = first + count // 2
        if count % 2:
            return self.kth(mid)
        return (self.kth(mid - 1) + self.kth(mid)) / 2.0

    def count_le(self, x: float) -> int:
        """Number of samples ``<= x``."""
        i = int(self.values.searchsorted(x, side="right"))
        return int(self.cum[i - 1]) if i else 0

    def percentile(self, q: float) -> float:
        """``np.percentile(sample, q)`` (linear interpolation, numpy's formula)."""
        virtual = (self.n - 1) * (q / 100.0)
        if virtual >= self.n - 1:
            return self.kth(self.n - 1)
        prev = math.floor(virtual)
        t = virtual - prev
        a, b = self.kth(prev), self.kth(prev + 1)
        diff = b - a
        # numpy's _lerp: interpolate from the nearer end.
        return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t

    def mad(self, count: int, centre: float) -> float:
        """``np.median(np.abs(s - centre))`` of the ``count`` smallest samples ``s``."""
        if self.unit_counts:
            return sorted_mad(self.values[:count], centre)
        if self.unit is not None and count > 0:
            return self._counted_mad(count, centre, self.unit)
        return self._general_mad(count, centre)

    def _general_mad(self, count: int, centre: float) -> float:
        """:meth:`mad` of counted samples: bisection over the distances on both sides."""
        last = int(self.cum.searchsorted(count - 1, side="right"))  # entry of rank count-1
        values = self.values[: last + 1]
        counts = self.counts[: last + 1].copy()
        counts[-1] -= int(self.cum[last]) - count  # only part of the last value's samples
        split = int(values.searchsorted(centre, side="left"))
        below = centre - values[:split][::-1]  # ascending distances, both sides
        above = values[split:] - centre
        zero = np.zeros(1, np.int64)
        cum_below = np.concatenate((zero, np.cumsum(counts[:split][::-1])))
        cum_above = np.concatenate((zero, np.cumsum(counts[split:])))

        def within(dist: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
            """Samples at most ``dist`` from the centre, for each of ``dist`` (ascending)."""
            i = below.searchsorted(dist, side="right")
            j = above.searchsorted(dist, side="right")
            return np.asarray(cum_below[i] + cum_above[j])

        reach_below = within(below)
        reach_above = within(above)

        def kth(k: int) -> float:
            best = math.inf
            i = int(reach_below.searchsorted(k + 1, side="left"))
            if i < below.size:
                best = float(below[i])
            j = int(reach_above.searchsorted(k + 1, side="left"))
            if j < above.size:
                best = min(best, float(above[j]))
            return best

        if count % 2:
            return kth(count // 2)
        return (kth(count // 2 - 1) + kth(count // 2)) / 2.0

    def _counted_mad(self, count: int, centre: float, unit: float) -> float:
        """:meth:`mad` of samples that are whole multiples of ``unit`` (a power of two): the
        kernel :func:`~._kernels.counted_mad` where the centre allows (the same values as
        the general path, exactly), else :meth:`_general_mad`."""
        last = int(self.cum.searchsorted(count - 1, side="right"))  # entry of rank count-1
        counts = self.counts[: last + 1].copy()
        counts[-1] -= int(self.cum[last]) - count  # only part of the last value's samples
        mad = counted_mad(self.values[: last + 1], counts, centre, unit)
        return self._general_mad(count, centre) if mad is None else mad
