"""The raster images of the HTML quality-control report, and its colours.

The viridis colour map (:func:`_colors`, :func:`_hex`) and the colours of empty and undefined
wells; PNG encoding to ``data:`` URIs (:func:`_png_uri`); the thumbnails of an image (one per
channel, and an additive composite of the channels) and the card of an illumination profile
(the flat field in false colour, the dark field in grey, downsampled by block means).
"""

from __future__ import annotations

import base64
import io
import math
import warnings

import numpy as np
import numpy.typing as npt

from .._text import plural
from ._data import ImageQCRecord, ProfileRecord
from ._report_common import _e, _isfinite, _num

# Viridis (matplotlib) sampled at 0, 0.1, ..., 1; interpolated linearly in between.
_VIRIDIS = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
)
_VIRIDIS_RGB = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _VIRIDIS], float)
_NAN_COLOR = "#d0d7de"
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


def _colors(t: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Viridis RGB (uint8, shape ``t.shape + (3,)``) of values in [0, 1]."""
    x = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    lo = np.minimum(np.floor(x).astype(np.intp), len(_VIRIDIS) - 2)
    frac = (x - lo)[..., None]
    rgb = _VIRIDIS_RGB[lo] * (1.0 - frac) + _VIRIDIS_RGB[lo + 1] * frac
    return np.asarray(np.rint(rgb), dtype=np.uint8)


def _hex(t: float) -> str:
    r, g, b = (int(v) for v in _colors(np.array([t]))[0])
    return f"#{r:02x}{g:02x}{b:02x}"


def _png_uri(array: npt.NDArray[np.uint8]) -> str:
    """A ``data:image/png;base64,...`` URI of a 2-D (grey) or 3-D (RGB) uint8 array."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumbnails(record: ImageQCRecord) -> str:
    thumbs = [
        (name, t)
        for name, t in zip(record.channels, record.thumbnails, strict=False)
        if isinstance(t, np.ndarray) and t.ndim == 2 and t.size
    ]
    if not thumbs:
        return "<div class='thumbs'><div class='nothumb'>no preview</div></div>"
    out = ["<div class='thumbs'>"]
    shapes = {t.shape for _, t in thumbs}
    if len(thumbs) > 1 and len(shapes) == 1:
        rgb = np.zeros((*thumbs[0][1].shape, 3), float)
        for i, (_, t) in enumerate(thumbs):
            rgb += t.astype(float)[..., None] * np.array(_CHANNEL_COLORS[i % len(_CHANNEL_COLORS)])
        composite = np.clip(rgb, 0, 255).astype(np.uint8)
        legend = " + ".join(
            f"<span style='color:{_css_rgb(_CHANNEL_COLORS[i % len(_CHANNEL_COLORS)])}'>"
            f"{_e(name)}</span>"
            for i, (name, _) in enumerate(thumbs)
        )
        out.append(
            f"<figure><img src='{_png_uri(composite)}' alt='composite of "
            f"{_e(record.name)}'><figcaption>{legend}</figcaption></figure>"
        )
    for name, t in thumbs:
        out.append(
            f"<figure><img src='{_png_uri(np.asarray(t, dtype=np.uint8))}' "
            f"alt='{_e(name)} of {_e(record.name)}'><figcaption>{_e(name)}</figcaption></figure>"
        )
    out.append("</div>")
    return "".join(out)


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


def _field_png(field: npt.NDArray[np.floating], *, false_colour: bool) -> tuple[str, float, float]:
    small = _downsample(field)
    finite = small[np.isfinite(small)]
    lo = float(finite.min()) if finite.size else math.nan
    hi = float(finite.max()) if finite.size else math.nan
    t = (small - lo) / (hi - lo) if finite.size and hi > lo else np.full(small.shape, 0.5)
    t = np.where(np.isfinite(t), t, 0.0)
    if false_colour:
        image = _colors(t)
    else:
        image = np.asarray(np.rint(np.clip(t, 0, 1) * 255), dtype=np.uint8)
    return _png_uri(image), lo, hi


def _profile_card(profile: ProfileRecord) -> str:
    flat = np.asarray(profile.flat)
    if flat.ndim != 2 or not flat.size:
        body = "<div class='nothumb'>no flat field</div>"
        stats = ""
    else:
        uri, lo, hi = _field_png(flat, false_colour=True)
        ratio = lo / hi if _isfinite(lo) and _isfinite(hi) and hi > 0 else math.nan
        body = (
            f"<figure><img class='field' src='{uri}' alt='flat field of "
            f"{_e(profile.channel_name)} on plate {_e(profile.plate)}'>"
            f"<figcaption><span class='cbar'></span><span class='cbar-l'>{_num(lo)}</span>"
            f"<span class='cbar-r'>{_num(hi)}</span></figcaption></figure>"
        )
        stats = (
            f"<div class='small'>flat: min {_num(lo)} · max {_num(hi)} · min/max "
            f"{_num(ratio)} · {flat.shape[1]}×{flat.shape[0]} px</div>"
        )
    dark = ""
    if profile.dark is not None and np.asarray(profile.dark).ndim == 2:
        duri, dlo, dhi = _field_png(np.asarray(profile.dark), false_colour=False)
        dark = (
            f"<figure><img class='field' src='{duri}' alt='dark field'>"
            f"<figcaption>dark field: {_num(dlo)} to {_num(dhi)} ADU</figcaption></figure>"
        )
    where = f" · <code>{_e(profile.store_path)}</code>" if profile.store_path else ""
    return (
        f"<article class='profile'><header><b>{_e(profile.plate)}</b> · "
        f"{_e(profile.channel_name)}<div class='muted small'>"
        f"from {plural(profile.n_images, 'image')}{where}</div></header>"
        f"<div class='thumbs'>{body}{dark}</div>{stats}</article>"
    )
