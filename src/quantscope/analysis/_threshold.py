"""Thresholding for the classical segmentation: automatic threshold and the empty-field test.

What :mod:`quantscope.analysis._segment` uses to split foreground from background: the
global automatic threshold (Otsu [1]_ or Li [2]_), the slowly varying background removed
before the 'local' threshold (a grey-opening top-hat), the robust pixel-noise sigma, and the
foreground mask with its "no foreground" test (the threshold must lie ``min_snr`` noise
sigmas above the background level, else the field is empty). Also the float image type and
the threshold method names shared by the segmentation modules.

References
----------
.. [1] Otsu N. (1979) A threshold selection method from gray-level histograms. IEEE Trans.
   Syst. Man Cybern. 9(1):62-66. doi:10.1109/TSMC.1979.4310076
.. [2] Li C.H., Tam P.K.S. (1998) An iterative algorithm for minimum cross entropy
   thresholding. Pattern Recognit. Lett. 19(8):771-776. doi:10.1016/S0167-8655(98)00057-9
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

ThresholdMethod = Literal["otsu", "li", "local"]


def _noise_sigma(x: F32, background: npt.NDArray[np.bool_] | None, quantum: float) -> float:
    """Robust sigma of the pixel noise: MAD of the residual to the 3x3 mean (background only).

    The residual ``x - mean3x3(x)`` of white noise of sigma ``s`` has sigma ``s * sqrt(8/9)``.
    The estimate is at least the quantization noise ``quantum / sqrt(12)``.
    """
    from scipy import ndimage as ndi

    resid = x - ndi.uniform_filter(x, 3, mode="reflect")
    values = resid[background] if background is not None and background.any() else resid
    med = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - med))) / math.sqrt(8.0 / 9.0)
    if sigma <= 0:
        sigma = float(np.std(values)) / math.sqrt(8.0 / 9.0)
    return max(sigma, quantum / math.sqrt(12.0))


def _auto_threshold(smooth: F32, method: ThresholdMethod) -> float:
    """Global automatic threshold (Otsu for 'otsu' and 'local', Li for 'li')."""
    from skimage import filters

    if method == "li":
        return float(filters.threshold_li(smooth))
    return float(filters.threshold_otsu(smooth))


def _flatten(smooth: F32, block_px: float) -> F32:
    """Slowly varying background of ``smooth``: a grey opening over ``block_px``, smoothed.

    The opening (a square of ``block_px`` side, separable min/max filters) follows the lower
    envelope of the image wherever objects are smaller than the block; subtracting it is the
    classical top-hat background correction used by the 'local' threshold.
    """
    from scipy import ndimage as ndi

    size = max(3, round(block_px) | 1)
    # point-symmetric padding continues gradients linearly past the border, so the envelope
    # of a shaded field does not sag at the image edges
    pad = min(size, *smooth.shape) - 1
    padded = np.pad(smooth, pad, mode="reflect", reflect_type="odd")
    envelope = ndi.uniform_filter(ndi.grey_opening(padded, size=(size, size)), size)
    return envelope[pad : pad + smooth.shape[0], pad : pad + smooth.shape[1]].astype(np.float32)


def _foreground(
    smooth: F32,
    x: F32,
    method: ThresholdMethod,
    correction: float,
    min_snr: float,
    quantum: float,
) -> tuple[npt.NDArray[np.bool_] | None, float, float]:
    """Foreground mask, background level and noise sigma; mask None when there is none.

    The field has no foreground when the automatic threshold is less than ``min_snr`` noise
    sigmas above the background level (the median of the pixels below the threshold): Otsu
    or Li on a noise-only image splits the noise distribution near its middle. For 'local'
    the caller has already subtracted the local background (:func:`_flatten`).
    """
    t_auto = _auto_threshold(smooth, method)
    below = smooth <= t_auto
    if not below.any() or below.all():
        return None, float(np.median(smooth)), 0.0
    bg = float(np.median(smooth[below]))
    noise = _noise_sigma(x, below, quantum)
    if t_auto - bg < min_snr * noise:
        return None, bg, noise
    mask = smooth > bg + correction * (t_auto - bg)
    if not mask.any():
        return None, bg, noise
    return mask, bg, noise
