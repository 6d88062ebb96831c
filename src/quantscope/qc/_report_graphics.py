"""The raster images of the HTML quality-control report.

The thumbnails of an image (:func:`_thumbnails`: one per channel, and an additive composite of
the channels) and the images of an illumination profile (:func:`_profile_card`: the flat field
in false colour, the dark field in grey, downsampled by block means), as PNG data URIs for the
templates of :mod:`quantscope._html` (``qc_macros.html.j2``, ``qc_profiles.html.j2``). The
colour map and the PNG encoding are the toolkit's (:func:`quantscope._html.viridis_rgb`,
:func:`quantscope._html.png_data_uri`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._html import png_data_uri, viridis_rgb
from ._data import ImageQCRecord, ProfileRecord
from ._report_common import _isfinite

#: The colour of a well without an image in a plate heatmap.
_EMPTY_WELL = "#f6f8fa"

# Additive colours of the channels of a composite thumbnail (RGB, 0..1).
_CHANNEL_COLORS = (
    (0.25, 0.55, 1.0),  # blue-ish (often DNA)
    (0.1, 1.0, 0.1),  # green
    (1.0, 0.1, 1.0),  # magenta
    (1.0, 0.25, 0.1),  # red
    (0.1, 1.0, 1.0),  # cyan
    (1.0, 1.0, 0.1),  # yellow
)


@dataclass(frozen=True)
class Thumbnails:
    """The previews of one image: ``channels`` as (name, PNG URI); ``composite`` (a PNG URI, or
    ``""`` for one channel or channels of different shapes) with its ``legend`` of (CSS colour,
    channel name)."""

    name: str
    channels: list[tuple[str, str]]
    composite: str = ""
    legend: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FieldImage:
    """A flat or dark field as a PNG URI, with its range and its size in pixels."""

    uri: str
    low: float
    high: float
    width: int
    height: int


@dataclass(frozen=True)
class ProfileCard:
    """An illumination profile: its record, its flat field (``None`` when there is none), its
    dark field and the flat field's min / max ratio."""

    record: ProfileRecord
    flat: FieldImage | None
    dark: FieldImage | None
    ratio: float


def _thumbnails(record: ImageQCRecord) -> Thumbnails:
    thumbs = [
        (name, t)
        for name, t in zip(record.channels, record.thumbnails, strict=False)
        if isinstance(t, np.ndarray) and t.ndim == 2 and t.size
    ]
    channels = [(name, png_data_uri(np.asarray(t, dtype=np.uint8))) for name, t in thumbs]
    if len(thumbs) < 2 or len({t.shape for _, t in thumbs}) != 1:
        return Thumbnails(record.name, channels)
    rgb = np.zeros((*thumbs[0][1].shape, 3), float)
    for i, (_, t) in enumerate(thumbs):
        rgb += t.astype(float)[..., None] * np.array(_CHANNEL_COLORS[i % len(_CHANNEL_COLORS)])
    composite = png_data_uri(np.clip(rgb, 0, 255).astype(np.uint8))
    legend = tuple(
        (_css_rgb(_CHANNEL_COLORS[i % len(_CHANNEL_COLORS)]), name)
        for i, (name, _) in enumerate(thumbs)
    )
    return Thumbnails(record.name, channels, composite, legend)


def _css_rgb(color: tuple[float, float, float]) -> str:
    # darkened so that the text stays readable on white
    r, g, b = (int(0.75 * 255 * c) for c in color)
    return f"rgb({r},{g},{b})"


def _downsample(field: npt.NDArray[np.floating], edge: int = 192) -> npt.NDArray[np.float64]:
    """Block-mean downsampling so that the longer edge is at most ``edge`` px."""
    arr = np.asarray(field, dtype=np.float64)
    factor = max(1, math.ceil(max(arr.shape) / edge))
    if factor == 1:
        return arr
    ny, nx = arr.shape[0] // factor, arr.shape[1] // factor
    if ny == 0 or nx == 0:
        return arr[::factor, ::factor]
    cut = arr[: ny * factor, : nx * factor]
    with warnings.catch_warnings():  # "mean of empty slice" where a block is all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(cut.reshape(ny, factor, nx, factor), axis=(1, 3)))


def _field_png(field: npt.NDArray[np.floating], *, false_colour: bool) -> FieldImage:
    small = _downsample(field)
    finite = small[np.isfinite(small)]
    lo = float(finite.min()) if finite.size else math.nan
    hi = float(finite.max()) if finite.size else math.nan
    t = (small - lo) / (hi - lo) if finite.size and hi > lo else np.full(small.shape, 0.5)
    t = np.where(np.isfinite(t), t, 0.0)
    if false_colour:
        image = viridis_rgb(t)
    else:
        image = np.asarray(np.rint(np.clip(t, 0, 1) * 255), dtype=np.uint8)
    return FieldImage(png_data_uri(image), lo, hi, int(field.shape[1]), int(field.shape[0]))


def _profile_card(profile: ProfileRecord) -> ProfileCard:
    flat = np.asarray(profile.flat)
    image = None
    ratio = math.nan
    if flat.ndim == 2 and flat.size:
        image = _field_png(flat, false_colour=True)
        lo, hi = image.low, image.high
        ratio = lo / hi if _isfinite(lo) and _isfinite(hi) and hi > 0 else math.nan
    dark = None
    if profile.dark is not None and np.asarray(profile.dark).ndim == 2:
        dark = _field_png(np.asarray(profile.dark), false_colour=False)
    return ProfileCard(profile, image, dark, ratio)
