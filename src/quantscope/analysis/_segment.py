"""Classical segmentation: nuclei from a DNA stain, cells from nuclei seeds, cytoplasm.

Three pure functions from pixels to instance labels (``int32``, 0 = background, 1..N):

- :func:`segment_nuclei`: smoothing, automatic threshold (Otsu, Li or local) with a robust
  "no foreground" test, hole filling, declumping by size-aware h-maxima of a shape + intensity
  surface (distance transform blended with the smoothed stain), marker watershed, per-object
  boundary refinement, size / border / contrast filters. Parameters are in µm
  (:class:`NucleiParams`), so one parameter set works across magnifications.
- :func:`segment_cells`: propagation from nuclei seeds on a cytoplasm image as CellProfiler's
  IdentifySecondaryObjects (Propagation) does (:class:`CellParams`).
- :func:`cytoplasm`: cell minus nucleus (CellProfiler's IdentifyTertiaryObjects).

Every function accepts any real 2-D array. Degenerate images (constant, all zero, one pixel
wide, noise only) give empty labels; malformed input (not 2-D, complex, NaN/inf pixels) raises
:class:`quantscope.errors.InvalidInput` naming the problem. No function warns.

This module holds the three functions, their parameter models and input validation; the
thresholds and the empty-field test live in :mod:`quantscope.analysis._threshold`, the label
morphology (declumping markers, propagation, hole filling, relabelling) in
:mod:`quantscope.analysis._morphology`.

References
----------
.. [1] Otsu N. (1979) A threshold selection method from gray-level histograms. IEEE Trans.
   Syst. Man Cybern. 9(1):62-66. doi:10.1109/TSMC.1979.4310076
.. [2] Li C.H., Tam P.K.S. (1998) An iterative algorithm for minimum cross entropy
   thresholding. Pattern Recognit. Lett. 19(8):771-776. doi:10.1016/S0167-8655(98)00057-9
.. [3] Soille P. (2003) Morphological Image Analysis, 2nd ed., ch. 6 (h-maxima, regional
   extrema). doi:10.1007/978-3-662-05088-0
.. [4] Vincent L., Soille P. (1991) Watersheds in digital spaces. IEEE Trans. Pattern Anal.
   Mach. Intell. 13(6):583-598. doi:10.1109/34.87344
.. [5] Jones T.R., Carpenter A.E., Golland P. (2005) Voronoi-based segmentation of cells on
   image manifolds. CVBIA 2005, LNCS 3765:535-543. doi:10.1007/11569541_54
.. [6] Caicedo J.C. et al. (2019) Evaluation of deep learning strategies for nucleus
   segmentation in fluorescence images. Cytometry A 95(9):952-965. doi:10.1002/cyto.a.23863
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from .._text import plural
from ..errors import InvalidInput
from ._morphology import (
    Labels,
    _border_labels,
    _fill_label_holes,
    _fill_small_holes,
    _h_maxima,
    _keep_largest_piece,
    _propagate,
    _relabel,
)
from ._threshold import F32, ThresholdMethod, _flatten, _foreground

__all__ = [
    "DEFAULT_PIXEL_SIZE_UM",
    "CellParams",
    "NucleiParams",
    "cytoplasm",
    "segment_cells",
    "segment_nuclei",
]

#: Pixel size (µm) assumed when the caller does not know it: a 20x objective on a 6.45 µm
#: camera pixel with 2x2 binning (ImageXpress Micro, as used for BBBC022/BBBC039), 0.645 µm,
#: rounded. Parameters in µm are converted to pixels with it.
DEFAULT_PIXEL_SIZE_UM = 0.65

#: Gaussian sigma (µm) applied to the distance transform before marker detection, so that
#: pixel-level ragged outlines do not create spurious maxima.
_DIST_SMOOTHING_UM = 0.65


class NucleiParams(BaseModel):
    """Parameters of :func:`segment_nuclei`; lengths in µm, converted with the pixel size.

    The defaults were tuned on the first 10 (sorted by name) of the 40 BBBC039 fields in
    ``../shared/data/bbbc039_nuclei_subset`` (U2OS, Hoechst, 20x, read at the default
    0.65 µm/px; see ``bench/segmentation_tuning.py``) and are meant for widefield images of
    cultured mammalian nuclei (about 8-30 µm across). Reference objects BBBC039 annotates
    below ~4 µm (micronuclei, blebs: 6 % of its objects) are mostly out of reach.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    smoothing_sigma_um: float = Field(
        default=0.65,
        ge=0.0,
        le=20.0,
        description="Gaussian smoothing before thresholding, sigma in µm (0 = none).",
    )
    threshold_method: ThresholdMethod = Field(
        default="li",
        description=(
            "Automatic threshold of the smoothed image: 'otsu' (between-class variance), "
            "'li' (minimum cross entropy; finds dim nuclei beside bright ones) or 'local' "
            "(Otsu after subtracting the local background, a grey opening over "
            "local_block_um: for uneven illumination)."
        ),
    )
    threshold_correction: float = Field(
        default=0.8,
        gt=0.0,
        le=5.0,
        description=(
            "Multiplies the threshold's height above the background level (dimensionless; "
            "< 1 finds dimmer nuclei, > 1 is stricter)."
        ),
    )
    local_block_um: float = Field(
        default=60.0,
        gt=0.0,
        le=5000.0,
        description=(
            "Window of the 'local' background in µm; must exceed the largest nucleus "
            "(default about three nuclei)."
        ),
    )
    min_contrast_snr: float = Field(
        default=6.0,
        ge=0.0,
        le=1000.0,
        description=(
            "'No foreground' test, in units of the noise sigma: if the automatic threshold is "
            "less than this far above the background the field is empty (0 objects), and "
            "objects whose mean smoothed intensity is less than this far above the background "
            "are dropped. On BBBC039 the empty field's Li threshold lies 1.5 sigma above its "
            "background, the 39 fields with nuclei 22-34 sigma."
        ),
    )
    declump: bool = Field(
        default=True,
        description="Split touching nuclei with a marker watershed (False: one object per blob).",
    )
    intensity_weight: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description=(
            "Blend of the declumping surface: 0 = distance transform only (shape), 1 = smoothed "
            "stain intensity only; in between both must agree on a separate nucleus."
        ),
    )
    marker_smoothing_um: float = Field(
        default=1.3,
        ge=0.0,
        le=20.0,
        description="Gaussian sigma (µm) of the stain image used for markers and refinement.",
    )
    h_um: float = Field(
        default=0.33,
        ge=0.0,
        le=50.0,
        description=(
            "h of the h-maxima markers in µm of the declumping surface: a peak becomes a "
            "separate nucleus only if it rises this much above the saddle to its neighbour."
        ),
    )
    clump_area_ratio: float = Field(
        default=1.5,
        ge=1.0,
        le=100.0,
        description=(
            "Size-aware h: a blob larger than this multiple of the field's median blob area "
            "(dimensionless) is likely a clump, and its peaks need only clump_h_factor x h_um."
        ),
    )
    clump_h_factor: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Multiplies h_um inside blobs larger than clump_area_ratio x the median.",
    )
    refine_fraction: float = Field(
        default=0.35,
        ge=0.0,
        lt=1.0,
        description=(
            "Per-object boundary: after the watershed each nucleus keeps the pixels brighter "
            "than background + refine_fraction x (its peak - background), so dim and bright "
            "nuclei both get a tight outline (0 = keep the global threshold's outline)."
        ),
    )
    fill_holes: bool = Field(default=True, description="Fill holes inside nuclei (dark nucleoli).")
    min_diameter_um: float = Field(
        default=3.3,
        ge=0.0,
        le=1000.0,
        description="Objects with a smaller equivalent diameter (µm) are dropped.",
    )
    max_diameter_um: float = Field(
        default=200.0,
        gt=0.0,
        le=10000.0,
        description="Objects with a larger equivalent diameter (µm) are dropped.",
    )
    border_min_diameter_um: float = Field(
        default=6.0,
        ge=0.0,
        le=1000.0,
        description=(
            "Objects touching the image border with a smaller equivalent diameter (µm) are "
            "dropped as edge fragments; larger cut nuclei are kept (see exclude_border)."
        ),
    )
    exclude_border: bool = Field(
        default=False,
        description="Drop every object touching the image border (CellProfiler's default).",
    )


class CellParams(BaseModel):
    """Parameters of :func:`segment_cells` (CellProfiler IdentifySecondaryObjects, Propagation).

    Defaults follow CellProfiler's ExampleHuman pipeline: minimum cross entropy threshold
    with a 0.8 correction, regularization 0.05, holes filled.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    smoothing_sigma_um: float = Field(
        default=0.0,
        ge=0.0,
        le=20.0,
        description="Gaussian smoothing of the cytoplasm image before thresholding, µm.",
    )
    threshold_method: ThresholdMethod = Field(
        default="li", description="Threshold of the cell foreground: 'otsu', 'li' or 'local'."
    )
    threshold_correction: float = Field(
        default=0.8,
        gt=0.0,
        le=5.0,
        description="Multiplies the threshold's height above the background level.",
    )
    local_block_um: float = Field(
        default=150.0,
        gt=0.0,
        le=5000.0,
        description="Window of the 'local' background in µm; must exceed the largest cell.",
    )
    regularization: float = Field(
        default=0.05,
        ge=0.0,
        le=1000.0,
        description=(
            "Lambda of the propagation (intensities scaled to 0..1 as in CellProfiler): 0 = "
            "boundaries follow the image only, large = Voronoi tessellation of the nuclei."
        ),
    )
    max_distance_um: float = Field(
        default=0.0,
        ge=0.0,
        le=10000.0,
        description=(
            "Cells extend at most this far (µm, Euclidean) beyond their nucleus; 0 = no limit."
        ),
    )
    fill_holes: bool = Field(default=True, description="Fill holes inside cells.")
    exclude_border: bool = Field(
        default=False, description="Drop cells touching the image border (their nuclei stay)."
    )


# ----------------------------------------------------------------------------- validation


def _as_plane(image: Any, name: str) -> npt.NDArray[Any]:
    """``image`` as a real 2-D numpy array, or InvalidInput naming what is wrong."""
    try:
        arr = np.asarray(image)
    except Exception as exc:  # e.g. ragged nested sequences
        raise InvalidInput(f"{name}: cannot be read as an array ({exc})") from None
    if arr.ndim != 2:
        raise InvalidInput(
            f"{name}: expected a 2-D (Y, X) plane, got an array of shape {arr.shape}; select "
            f"one plane and channel first (e.g. image[c, z] of a (C, Z, Y, X) array)"
        )
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "iuf":
        raise InvalidInput(
            f"{name}: expected real numbers (integer or float pixels), got dtype {arr.dtype}"
        )
    if arr.dtype.kind == "f" and arr.size:
        bad = ~np.isfinite(arr)
        if bad.any():
            y, x = np.argwhere(bad)[0]
            n_bad = int(bad.sum())
            raise InvalidInput(
                f"{name}: {plural(n_bad, 'pixel')} {'is' if n_bad == 1 else 'are'} NaN or "
                f"infinite (first at y={y}, "
                f"x={x}); replace them (e.g. numpy.nan_to_num) or mask them out first"
            )
    return arr


def _as_labels(labels: Any, name: str) -> npt.NDArray[Any]:
    arr = _as_plane(labels, name)
    if arr.dtype.kind == "f":
        if arr.size and not np.array_equal(arr, np.round(arr)):
            raise InvalidInput(f"{name}: label images hold integers, got fractional values")
        arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise InvalidInput(f"{name}: label values must be >= 0, found {int(arr.min())}")
    if arr.size and int(arr.max()) > np.iinfo(np.int32).max:
        raise InvalidInput(
            f"{name}: label {int(arr.max())} does not fit int32; relabel the objects "
            f"consecutively first (skimage.segmentation.relabel_sequential)"
        )
    return arr


def _pixel_size(pixel_size_um: float | None) -> float:
    if pixel_size_um is None:
        return DEFAULT_PIXEL_SIZE_UM
    if isinstance(pixel_size_um, bool):
        raise InvalidInput(f"pixel_size_um: expected a number in µm, got {pixel_size_um!r}")
    try:
        value = float(pixel_size_um)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"pixel_size_um: expected a number in µm, got {pixel_size_um!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(
            f"pixel_size_um: {pixel_size_um!r} is not a pixel size; give a positive size in µm "
            f"or None for the default {DEFAULT_PIXEL_SIZE_UM} µm"
        )
    return value


def _empty(shape: tuple[int, ...]) -> Labels:
    return np.zeros(shape, np.int32)


# ----------------------------------------------------------------------------- helpers


def _disk_area(diameter_px: float) -> float:
    return math.pi * (diameter_px / 2.0) ** 2


def _scale_to_unit(arr: npt.NDArray[Any]) -> F32:
    """Intensities scaled as CellProfiler does: integers by their dtype maximum, floats as is.

    Floats outside [-1e6, 1e6] (where CellProfiler's 0..1 convention clearly does not hold
    and squares could overflow) are divided by their largest magnitude.
    """
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        return (arr.astype(np.float64) / float(info.max)).astype(np.float32)
    top = float(np.abs(arr).max()) if arr.size else 0.0
    if top > 1e6:
        return (arr.astype(np.float64) / top).astype(np.float32)
    return arr.astype(np.float32)


# ----------------------------------------------------------------------------- nuclei


def segment_nuclei(
    image: Any,
    params: NucleiParams | None = None,
    pixel_size_um: float | None = None,
) -> Labels:
    """Segment nuclei in a 2-D image of a DNA stain (Hoechst, DAPI).

    Steps (lengths converted from µm with ``pixel_size_um``):

    1. Gaussian smoothing (``smoothing_sigma_um``).
    2. Automatic threshold (``threshold_method``: Otsu [1]_, Li [2]_ or local) scaled about
       the background level by ``threshold_correction``. The field is empty when the
       automatic threshold lies less than ``min_contrast_snr`` noise sigmas above the
       background (noise-only images).
    3. Holes filled; declumping by size-aware h-maxima [3]_ (``h_um``, lowered by
       ``clump_h_factor`` in blobs ``clump_area_ratio`` times the median blob) of a surface
       that blends the smoothed distance transform with the normalized smoothed stain
       (``intensity_weight``), then a marker watershed [4]_ of that surface within the mask.
    4. Per-object refinement (``refine_fraction``): each nucleus keeps the pixels brighter
       than background + fraction x (its peak - background); holes refilled, stray pieces
       dropped.
    5. Filters: equivalent diameter outside ``min_diameter_um`` .. ``max_diameter_um``, edge
       fragments (``border_min_diameter_um``, or every border object with
       ``exclude_border``) and objects of too little contrast (``min_contrast_snr``).

    Parameters
    ----------
    image : array_like
        2-D ``(Y, X)`` plane of any real dtype.
    params : NucleiParams, optional
        Parameters. On the BBBC039 subset the defaults reach F1 0.925 at IoU 0.5 and mean AP
        0.71 over IoU 0.5:0.95 on all 40 fields (0.923 / 0.69 on the 30 not used for tuning;
        0 objects on the empty field): ``bench/segmentation_tuning.py``.
    pixel_size_um : float, optional
        Pixel size in µm; None uses :data:`DEFAULT_PIXEL_SIZE_UM` (0.65 µm).

    Returns
    -------
    numpy.ndarray
        ``int32`` labels of the image's shape: 0 background, nuclei 1..N. Constant, all-zero,
        noise-only and one-pixel-wide images give all zeros.

    Raises
    ------
    quantscope.errors.InvalidInput
        If the image is not 2-D, not real, or has NaN/inf pixels, or the pixel size is not a
        positive number.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> img = 100 + 1000 * (((yy - 32) ** 2 + (xx - 32) ** 2) < 100)
    >>> labels = segment_nuclei(img.astype(np.uint16))
    >>> int(labels.max())
    1
    """
    p = params if params is not None else NucleiParams()
    if not isinstance(p, NucleiParams):
        raise InvalidInput(f"params: expected NucleiParams, got {type(p).__name__}")
    arr = _as_plane(image, "image")
    px = _pixel_size(pixel_size_um)
    if min(arr.shape) < 3 or arr.size == 0:
        return _empty(arr.shape)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return _empty(arr.shape)
    x, quantum = _working_copy(arr, lo, hi)
    smooth, stain = _smoothed(x, p, px)
    mask, bg, noise = _foreground(
        smooth, x, p.threshold_method, p.threshold_correction, p.min_contrast_snr, quantum
    )
    if mask is None:
        return _empty(arr.shape)
    min_area = _disk_area(p.min_diameter_um / px)
    max_area = _disk_area(p.max_diameter_um / px)
    cleaned = _without_specks(mask, p, min_area, max_area)
    if cleaned is None:
        return _empty(arr.shape)
    mask, blobs = cleaned
    labels = _split_clumps(mask, blobs, stain, bg, p, px)
    n = int(labels.max())
    if n == 0:
        return _empty(arr.shape)
    if p.refine_fraction > 0:
        labels = _refine(labels, n, smooth, stain, bg, p.refine_fraction)
    if p.fill_holes:
        labels = _fill_label_holes(labels, max_area)
    return _filter_nuclei(labels, n, smooth, bg, noise, p, px, min_area, max_area)


def _working_copy(arr: npt.NDArray[Any], lo: float, hi: float) -> tuple[F32, float]:
    """The image as float32, and its quantization step: integers as they are (steps of 1),
    floats of any range (1e-30 or 1e300) as (image - min) / range, computed in float64 first
    so that nothing overflows; every step of :func:`segment_nuclei` is invariant to this
    scaling."""
    if arr.dtype.kind in "iu":
        return arr.astype(np.float32), 1.0  # quantization noise floor 1/sqrt(12)
    half = arr.astype(np.float64) / 2.0
    return ((half - lo / 2.0) / (hi / 2.0 - lo / 2.0)).astype(np.float32), 1e-6


def _smoothed(x: F32, p: NucleiParams, px: float) -> tuple[F32, F32]:
    """The image smoothed for thresholding, and the stain smoothed for the declumping
    surface; with the 'local' threshold, both less their local background."""
    from scipy import ndimage as ndi

    sigma = p.smoothing_sigma_um / px
    smooth = ndi.gaussian_filter(x, sigma) if sigma > 0 else x
    msig = p.marker_smoothing_um / px
    stain = ndi.gaussian_filter(x, msig) if msig > 0 else x
    if p.threshold_method == "local":
        background = _flatten(smooth, p.local_block_um / px)
        smooth = smooth - background
        stain = stain - background
    return smooth, stain


def _without_specks(
    mask: npt.NDArray[np.bool_], p: NucleiParams, min_area: float, max_area: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[Any]] | None:
    """The foreground with small holes filled and specks dropped, and its blobs (labelled);
    None when nothing is left."""
    from scipy import ndimage as ndi

    blobs, n_blobs = ndi.label(mask)
    if n_blobs == 0:
        return None
    if p.fill_holes:
        # holes smaller than the median blob (nucleoli); larger enclosed background is the
        # gap inside a ring of touching nuclei and must not feed the distance transform
        blob_area = np.bincount(blobs.ravel())[1:]
        mask = _fill_small_holes(mask, min(max_area, float(np.median(blob_area))))
        blobs, n_blobs = ndi.label(mask)
    # drop specks before the distance transform so they cannot claim markers
    blob_area = np.bincount(blobs.ravel())
    speck = blob_area < 0.5 * min_area
    speck[0] = True
    mask = ~speck[blobs]
    blobs[~mask] = 0
    if not mask.any():
        return None
    return mask, blobs


def _split_clumps(
    mask: npt.NDArray[np.bool_],
    blobs: npt.NDArray[Any],
    stain: F32,
    bg: float,
    p: NucleiParams,
    px: float,
) -> Labels:
    """One label per nucleus: a marker watershed from the size-aware h-maxima of the distance
    transform blended with the stain (``p.declump``), else one label per blob."""
    from scipy import ndimage as ndi
    from skimage import segmentation

    if not p.declump:
        labels, _ = ndi.label(mask)
        return labels.astype(np.int32)
    dist = ndi.distance_transform_edt(mask).astype(np.float32)
    dist = ndi.gaussian_filter(dist, _DIST_SMOOTHING_UM / px)
    w = p.intensity_weight
    if w > 0:
        top = float(np.percentile(stain[mask], 99.5))
        scale = max(top - bg, 1e-6)
        rel = np.clip((stain - bg) / scale, 0.0, 1.0)
        surface = ((1.0 - w) * dist + w * float(dist.max()) * rel).astype(np.float32)
    else:
        surface = dist
    surface[~mask] = 0
    peaks = _h_maxima(surface, blobs, p.h_um / px, p.clump_area_ratio, p.clump_h_factor) & mask
    markers, _ = ndi.label(peaks)
    return segmentation.watershed(-surface, markers, mask=mask).astype(np.int32)


def _refine(labels: Labels, n: int, smooth: F32, stain: F32, bg: float, fraction: float) -> Labels:
    """Each nucleus keeps the pixels brighter than background + ``fraction`` x (its peak -
    background), its largest piece only."""
    peak = np.full(n + 1, bg, np.float32)
    inside = labels > 0
    np.maximum.at(peak, labels[inside], stain[inside])
    level = bg + np.float32(fraction) * (peak - bg)
    labels = np.where(smooth > level[labels], labels, 0).astype(np.int32)
    return _keep_largest_piece(labels)


def _filter_nuclei(
    labels: Labels,
    n: int,
    smooth: F32,
    bg: float,
    noise: float,
    p: NucleiParams,
    px: float,
    min_area: float,
    max_area: float,
) -> Labels:
    """Drop the objects of a size outside the limits, the edge fragments and the objects of
    too little contrast; relabel the rest 1..N."""
    area = np.bincount(labels.ravel(), minlength=n + 1)
    drop = (area < max(min_area, 1.0)) | (area > max_area)
    touches = _border_labels(labels, n)
    if p.exclude_border:
        drop |= touches
    else:
        drop |= touches & (area < _disk_area(p.border_min_diameter_um / px))
    if p.min_contrast_snr > 0:
        sums = np.bincount(labels.ravel(), weights=smooth.ravel(), minlength=n + 1)
        mean = sums / np.maximum(area, 1)
        drop |= (mean - bg) < p.min_contrast_snr * noise
    drop[0] = True
    return _relabel(labels, drop)


# ----------------------------------------------------------------------------- cells


def segment_cells(
    nuclei_labels: Any,
    cyto_image: Any,
    params: CellParams | None = None,
    pixel_size_um: float | None = None,
) -> Labels:
    """Grow cells from nuclei seeds on a cytoplasm image (IdentifySecondaryObjects, Propagation).

    The cell foreground is the cytoplasm image above an automatic threshold (Otsu [1]_, Li
    [2]_ or local, scaled about the background by ``threshold_correction``), plus the nuclei
    themselves. Every foreground pixel joins the nucleus with the cheapest path to it, where a
    step costs the local intensity change combined with ``regularization`` times its length
    (Jones et al. [5]_). Cell ``k`` therefore always contains nucleus ``k``; foreground not
    connected to any nucleus stays background.

    Parameters
    ----------
    nuclei_labels : array_like
        2-D integer labels of the nuclei (0 = background), e.g. from :func:`segment_nuclei`.
    cyto_image : array_like
        2-D cytoplasm (or whole-cell) stain of the same shape, any real dtype; integer images
        are scaled to 0..1 by their dtype maximum, as CellProfiler does.
    params : CellParams, optional
        Parameters (defaults: CellProfiler's ExampleHuman pipeline).
    pixel_size_um : float, optional
        Pixel size in µm; None uses :data:`DEFAULT_PIXEL_SIZE_UM`.

    Returns
    -------
    numpy.ndarray
        ``int32`` cell labels with the nuclei's numbers (cell ``k`` contains nucleus ``k``).

    Raises
    ------
    quantscope.errors.InvalidInput
        If an input is not 2-D or real, has NaN/inf pixels, the labels are negative or
        fractional, or the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> nuclei = np.zeros((32, 32), np.int32); nuclei[14:18, 6:10] = 1; nuclei[14:18, 22:26] = 2
    >>> cyto = np.zeros((32, 32), np.float32); cyto[8:24, 2:30] = 1.0
    >>> cells = segment_cells(nuclei, cyto)
    >>> sorted(np.unique(cells).tolist())
    [0, 1, 2]
    """
    from scipy import ndimage as ndi

    p = params if params is not None else CellParams()
    if not isinstance(p, CellParams):
        raise InvalidInput(f"params: expected CellParams, got {type(p).__name__}")
    seeds = _as_labels(nuclei_labels, "nuclei_labels")
    arr = _as_plane(cyto_image, "cyto_image")
    if seeds.shape != arr.shape:
        raise InvalidInput(
            f"cyto_image: shape {arr.shape} differs from nuclei_labels shape {seeds.shape}; "
            f"both must be the same (Y, X) field"
        )
    px = _pixel_size(pixel_size_um)
    seeds = seeds.astype(np.int32)
    if arr.size == 0 or not seeds.any():
        return _empty(arr.shape)
    x = _scale_to_unit(arr)
    sigma = p.smoothing_sigma_um / px
    smooth = ndi.gaussian_filter(x, sigma) if sigma > 0 else x
    if min(arr.shape) >= 3 and float(smooth.max()) > float(smooth.min()):
        quantum = 1.0 / float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "iu" else 1e-9
        work = smooth
        if p.threshold_method == "local":
            work = smooth - _flatten(smooth, p.local_block_um / px)
        fg, _, _ = _foreground(work, x, p.threshold_method, p.threshold_correction, 0.0, quantum)
        mask = fg if fg is not None else np.zeros(arr.shape, bool)
    else:
        mask = np.zeros(arr.shape, bool)
    mask = mask | (seeds > 0)
    if p.max_distance_um > 0:
        dist = ndi.distance_transform_edt(seeds == 0)
        mask &= dist <= p.max_distance_um / px
    cells = _propagate(seeds, smooth, mask, p.regularization)
    cells = np.where(seeds > 0, seeds, cells).astype(np.int32)
    n = int(cells.max())
    if p.fill_holes and n:
        cells = _fill_label_holes(cells, float(cells.size))
    if p.exclude_border and n:
        touches = _border_labels(cells, n)
        cells = np.where(touches[cells], 0, cells).astype(np.int32)
    return cells


def cytoplasm(cells: Any, nuclei_labels: Any) -> Labels:
    """Cytoplasm objects: each cell minus every nucleus pixel (IdentifyTertiaryObjects).

    Parameters
    ----------
    cells : array_like
        2-D cell labels (e.g. from :func:`segment_cells`).
    nuclei_labels : array_like
        2-D nucleus labels of the same shape.

    Returns
    -------
    numpy.ndarray
        ``int32`` labels with the cells' numbers; a cell entirely covered by nuclei has no
        cytoplasm pixels (its number is absent).

    Raises
    ------
    quantscope.errors.InvalidInput
        If an input is not a 2-D non-negative integer label image or the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> cells = np.zeros((5, 5), np.int32); cells[1:4, 1:4] = 1
    >>> nuclei = np.zeros((5, 5), np.int32); nuclei[2, 2] = 1
    >>> int((cytoplasm(cells, nuclei) == 1).sum())
    8
    """
    c = _as_labels(cells, "cells")
    nuc = _as_labels(nuclei_labels, "nuclei_labels")
    if c.shape != nuc.shape:
        raise InvalidInput(
            f"nuclei_labels: shape {nuc.shape} differs from cells shape {c.shape}; both must "
            f"label the same (Y, X) field"
        )
    return np.where(nuc > 0, 0, c).astype(np.int32)
