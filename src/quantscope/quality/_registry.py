"""The registry of per-channel quality metrics: names, units, direction and references."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["METRICS", "Direction", "MetricInfo"]

Direction = Literal["higher", "lower", "none"]

_BRAY = "Bray et al. 2012, J Biomol Screen 17:266, doi:10.1177/1087057111420292"
_CP = (
    "CellProfiler MeasureImageQuality, https://cellprofiler-manual.s3.amazonaws.com/"
    "CellProfiler-4.2.6/modules/measurement.html#measureimagequality"
)
_METROLOJ = "Faklaris et al. 2022, J Cell Biol 221:e202107093, doi:10.1083/jcb.202107093"


@dataclass(frozen=True)
class MetricInfo:
    """Description of one metric of :func:`channel_metrics`.

    Attributes
    ----------
    name : str
        Stable key in the metrics dict (also the catalog column / query field name).
    category : str
        ``"focus"``, ``"saturation"``, ``"intensity"``, ``"illumination"``, ``"content"`` or
        ``"input"``.
    description : str
        One sentence for reports and ``--help`` texts, including when the value is NaN.
    unit : str
        Unit of the value (``"1"`` for dimensionless, ``"%"``, ``"ADU"``: raw intensity units,
        ``"FS"``: fraction of the detector's full scale).
    direction : {"higher", "lower", "none"}
        Which way is better: ``"higher"`` (sharper, cleaner), ``"lower"``, or ``"none"``
        (descriptive: depends on the sample). Dataset-level outliers are flagged only on the
        worse side (both sides for ``"none"``).
    log_scale : bool
        Compare images on the logarithm of the value (positive quantities that span decades,
        such as variances); robust z-scores are then computed on ``log10``.
    cross_field : bool
        Whether values of *different* fields of view can be compared. A focus metric with
        ``cross_field=False`` measures focus only within one field (z-stacks), and is not
        used for dataset-level focus outliers.
    reference : str
        Where the definition comes from (with DOI where there is one).
    """

    name: str
    category: str
    description: str
    unit: str
    direction: Direction
    log_scale: bool = False
    cross_field: bool = True
    reference: str = ""


_ALL = (
    MetricInfo(
        "focus_plls",
        "focus",
        "Power-spectrum log-log slope (Hann window, noise floor removed); more negative = "
        "blurrier. Planes of >= 128 px per side: on the 2x2-binned plane, same frequency "
        "band. NaN for constant or pure-noise images, images < 32 px, and empty fields.",
        "1",
        "higher",
        reference=_BRAY,
    ),
    MetricInfo(
        "focus_normvar",
        "focus",
        "Normalized variance var/mean (CellProfiler FocusScore). Within one field only "
        "(z-stacks): across fields it follows the amount of content and does not separate "
        "out-of-focus from in-focus fields on real data. NaN for a non-positive mean and "
        "empty fields.",
        "FS",
        "higher",
        log_scale=True,
        cross_field=False,
        reference=_CP + "; Sun et al. 2004, Microsc Res Tech 65:139, doi:10.1002/jemt.20118",
    ),
    MetricInfo(
        "focus_local",
        "focus",
        "Local focus score (CellProfiler LocalFocusScore, 20 px tiles): variance over median "
        "of the tiles' normalized variances. NaN when most tiles are flat, and for empty fields.",
        "FS",
        "higher",
        log_scale=True,
        reference=_CP + "; " + _BRAY,
    ),
    MetricInfo(
        "focus_laplacian_var",
        "focus",
        "Variance of the Laplacian after 1 px Gaussian smoothing; planes of >= 128 px per "
        "side: of the 2x2-binned plane (1 binned px), in binned px. NaN for empty fields.",
        "FS^2/px^4",
        "higher",
        log_scale=True,
        reference="Pech-Pacheco et al. 2000, Proc. ICPR, doi:10.1109/ICPR.2000.903548",
    ),
    MetricInfo(
        "saturation_pct_at_max",
        "saturation",
        "Percent of pixels at the image's own maximum (CellProfiler PercentMaximal). NaN for "
        "a constant image.",
        "%",
        "lower",
        reference=_CP,
    ),
    MetricInfo(
        "saturation_pct_at_dtype_max",
        "saturation",
        "Percent of pixels at the detector maximum (2**significant_bits - 1, else the integer "
        "dtype maximum). NaN for float images without significant_bits.",
        "%",
        "lower",
        reference=_BRAY,
    ),
    MetricInfo(
        "pct_at_min",
        "saturation",
        "Percent of pixels at the image's own minimum (CellProfiler PercentMinimal). NaN for "
        "a constant image.",
        "%",
        "lower",
        reference=_CP,
    ),
    MetricInfo(
        "intensity_min", "intensity", "Minimum intensity of the finite pixels.", "ADU", "none"
    ),
    MetricInfo(
        "intensity_max", "intensity", "Maximum intensity of the finite pixels.", "ADU", "none"
    ),
    MetricInfo(
        "intensity_mean", "intensity", "Mean intensity of the finite pixels.", "ADU", "none"
    ),
    MetricInfo(
        "dynamic_range_used",
        "intensity",
        "(max - min) / detector range. NaN for float images without significant_bits, and "
        "for empty fields.",
        "1",
        "higher",
    ),
    MetricInfo(
        "background_median",
        "intensity",
        "Median of the background pixels (those up to 3 sigma above the histogram mode).",
        "ADU",
        "none",
    ),
    MetricInfo(
        "background_mad",
        "intensity",
        "Median absolute deviation of the background pixels (noise sigma ~ 1.4826 x MAD).",
        "ADU",
        "lower",
    ),
    MetricInfo(
        "snr",
        "intensity",
        "(99th percentile - background median) / pixel noise sigma of the background. NaN "
        "for empty fields and for float images with a noise-free background.",
        "1",
        "higher",
        log_scale=True,
    ),
    MetricInfo(
        "illum_corner_center_ratio",
        "illumination",
        "Mean of the four corners over the centre of the smooth background field (8 x 8 "
        "block 5th percentiles: quadratic trend plus smoothed residuals). "
        "NaN for images < 16 px or a non-positive centre.",
        "1",
        "higher",
        reference=_METROLOJ,
    ),
    MetricInfo(
        "illum_flatness",
        "illumination",
        "Minimum over maximum of the smoothed background field (MetroloJ uniformity).",
        "1",
        "higher",
        reference=_METROLOJ,
    ),
    MetricInfo(
        "foreground_pct",
        "content",
        "Percent of pixels more than 6 noise sigmas above their local background (smooth "
        "field of block 5th percentiles).",
        "%",
        "none",
    ),
    MetricInfo(
        "is_empty",
        "content",
        "1 if the foreground covers less than 0.05 % of the field (empty or blank), else 0. "
        "Fixed threshold; the QC flag comes from the configurable foreground_pct limit.",
        "1",
        "lower",
    ),
    MetricInfo(
        "pct_nonfinite",
        "input",
        "Percent of NaN or infinite pixels (float images). Other metrics use the finite ones.",
        "%",
        "lower",
    ),
)

#: Every metric of :func:`channel_metrics`, by name, in a stable order.
METRICS: MappingProxyType[str, MetricInfo] = MappingProxyType({m.name: m for m in _ALL})
