"""Bootstrap confidence intervals for scores aggregated over images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput

__all__ = ["Estimate", "bootstrap_ci"]


@dataclass(frozen=True)
class Estimate:
    """A mean over images with its bootstrap confidence interval.

    Attributes
    ----------
    value : float
        Mean over the images with a defined value (NaN if none).
    low, high : float
        Bounds of the confidence interval (equal to ``value`` for a single image).
    n : int
        Images that entered the mean.
    confidence : float
        Coverage of the interval, e.g. 0.95.
    """

    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready (NaN as None)."""

        def clean(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "value": clean(self.value),
            "low": clean(self.low),
            "high": clean(self.high),
            "n": self.n,
            "confidence": self.confidence,
        }


def bootstrap_ci(
    values: Sequence[float] | npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Mean of per-image values with a bias-corrected and accelerated (BCa) bootstrap interval.

    Images are resampled with replacement (Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993, doi:10.1201/9780429246593), with :func:`scipy.stats.bootstrap`. NaN values
    (undefined for that image, such as SEG without truth objects) are left out. The seed makes
    the interval reproducible.

    Parameters
    ----------
    values : array_like of float
        One value per image.
    confidence : float
        Coverage of the interval, in (0, 1).
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    Estimate
    """
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence {confidence} is not in (0, 1)")
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, 0, confidence)
    mean = float(arr.mean())
    if n == 1 or np.all(arr == arr[0]):
        return Estimate(mean, mean, mean, n, confidence)
    import warnings

    from scipy.stats import bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(
            (arr,),
            np.mean,
            confidence_level=confidence,
            n_resamples=n_resamples,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa degenerate: percentile interval
        rng = np.random.default_rng(seed)
        means = arr[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(means, [alpha, 1 - alpha]))
    return Estimate(mean, min(low, mean), max(high, mean), n, confidence)
