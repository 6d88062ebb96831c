"""Image quality metrics, pure functions of pixels (and flags, pure functions of metrics).

``quality`` is the pure half of quality control: every function here takes arrays (or
metric values) and returns numbers, with no repository, file, process or shared state. QC
*of a repository* (reading stored images, the measuring process, storing metrics and
verdicts, the HTML report) is :mod:`quantscope.qc`, built on top of this package.

Three layers, each usable on its own:

1. **Metrics** of one 2-D plane (one channel of one image): focus
   (:func:`focus_plls`, :func:`focus_normvar`, :func:`focus_local`,
   :func:`focus_laplacian_var`), saturation (:func:`percent_at_max`,
   :func:`percent_at_dtype_max`, :func:`percent_at_min`), intensity
   (:func:`intensity_range`, :func:`dynamic_range_used`, :func:`background`,
   :func:`signal_to_noise`), illumination (:func:`illumination_uniformity`) and content
   (:func:`foreground_pct`, :func:`is_empty`). :func:`channel_metrics` computes them all in one
   pass with the stable names of :data:`METRICS`; :func:`stack_metrics` finds the best-focus
   plane of a z-stack, and :func:`best_plane_metrics` measures it.
2. **Flags**: :class:`QCThresholds` (absolute per-metric :class:`Limit` s and the settings of
   dataset-level outliers, with documented defaults and :meth:`QCThresholds.from_dict` for
   quantscope.toml) and :func:`evaluate`, which gives every image a :class:`QCResult`
   (``"pass"``, ``"warn"`` or ``"fail"`` with its :class:`QCFlag` records), combining the
   limits with robust z-scores among the images of the same group (plate and channel). A
   flag is a record (metric, channel, value, limit or robust z, direction, severity and rule,
   one of :data:`RULES`); :func:`describe_flag` renders the sentence a person reads.
3. **Illumination profiles**: :func:`estimate_illumination_profile` (flat and dark field of
   one channel of one plate) and :func:`apply_flatfield`.

The fast kernels behind the metrics (2 x 2 binning, tile sums, the smoothed Laplacian, the
MAD of counted samples, the block percentiles of the background field...) live in one private
module, ``_kernels``, each checked by the tests against a plain numpy / scipy reference.

Every metric accepts any real 2-D array (integers, booleans, floats with NaN/inf, one pixel
wide, constant) and returns a number or a documented NaN, never a warning; malformed input
(not 2-D, empty, complex) raises :class:`quantscope.errors.InvalidInput`.

Examples
--------
>>> import numpy as np
>>> from quantscope.quality import channel_metrics, evaluate
>>> rng = np.random.default_rng(0)
>>> planes = {f"field{i}": rng.poisson(100, (64, 64)).astype(np.uint16) for i in range(3)}
>>> results = evaluate({k: channel_metrics(v) for k, v in planes.items()})
>>> results["field0"].status, results["field0"].reasons[0][:38]
('warn', 'foreground_pct = 0 % is below the warn')
"""

from __future__ import annotations

from ._background import Background, background, signal_to_noise
from ._flags import (
    RULES,
    FlagKind,
    QCFlag,
    QCResult,
    Status,
    check_limits,
    describe_flag,
    evaluate,
    finite_or_none,
    flag_rule,
    robust_zscores,
)
from ._focus import (
    focus_laplacian_var,
    focus_local,
    focus_normvar,
    focus_plls,
    stack_metrics,
)
from ._illumination import illumination_uniformity
from ._intensity import (
    dynamic_range_used,
    foreground_pct,
    intensity_range,
    is_empty,
    percent_at_dtype_max,
    percent_at_max,
    percent_at_min,
)
from ._metrics import BEST_FOCUS_PLANE, best_plane_metrics, channel_metrics
from ._profile import IlluminationProfile, apply_flatfield, estimate_illumination_profile
from ._registry import METRICS, Direction, MetricInfo
from ._thresholds import DEFAULT_LIMITS, DEFAULT_OUTLIER_METRICS, Limit, QCThresholds

__all__ = [
    "BEST_FOCUS_PLANE",
    "DEFAULT_LIMITS",
    "DEFAULT_OUTLIER_METRICS",
    "METRICS",
    "RULES",
    "Background",
    "Direction",
    "FlagKind",
    "IlluminationProfile",
    "Limit",
    "MetricInfo",
    "QCFlag",
    "QCResult",
    "QCThresholds",
    "Status",
    "apply_flatfield",
    "background",
    "best_plane_metrics",
    "channel_metrics",
    "check_limits",
    "describe_flag",
    "dynamic_range_used",
    "estimate_illumination_profile",
    "evaluate",
    "finite_or_none",
    "flag_rule",
    "focus_laplacian_var",
    "focus_local",
    "focus_normvar",
    "focus_plls",
    "foreground_pct",
    "illumination_uniformity",
    "intensity_range",
    "is_empty",
    "percent_at_dtype_max",
    "percent_at_max",
    "percent_at_min",
    "robust_zscores",
    "signal_to_noise",
    "stack_metrics",
]
