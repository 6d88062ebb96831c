"""Rendering of one synthetic widefield fluorescence field, with exact ground truth.

The model, in the order it is applied:

1. **Geometry.** Nuclei are ellipses (equivalent radius 8-14 px at >= 64 px image size, aspect
   ratio 1-1.7, random orientation) whose boundary is perturbed by low harmonics (2-5) of the
   polar angle. Centres are placed by random sequential addition with a minimum centre distance
   (a fraction of the sum of radii); ``touching`` shrinks that distance and places new nuclei
   next to existing ones, forming clumps. Where two shapes overlap, a pixel belongs to the
   nucleus whose normalized radial coordinate is smallest, so the labels are a partition and
   touching nuclei meet along a shared boundary. Cells grow from the nuclei by a marker
   watershed on the distance to the nearest nucleus plus smooth noise, limited to a noisy
   per-cell cytoplasm width (6-15 px), so cell ``k`` always contains nucleus ``k``.
2. **Stains** (in expected photo-electrons scaled to ADU). Channel 0: nuclear stain with a
   per-nucleus brightness (log-normal), a dome profile, smooth texture and bright chromatin
   spots. Channel 1: cytoplasmic stain, brighter near the nucleus, textured, dim (30 %) over the
   nucleus. Further channels alternate between puncta (vesicle-like spots) and a membrane
   pattern.
3. **Optics.** Gaussian PSF (sigma ``sqrt(1 + blur**2)`` px), smooth background with a shallow
   gradient, radial vignetting ``1 - vignetting * (r / r_corner)**2``.
4. **Camera.** Poisson shot noise and Gaussian read noise, both scaled by ``1 / snr`` while the
   mean stays put, a camera offset, rounding and clipping to the dtype.

Everything is drawn from the generator handed in; geometry, each channel's texture and each
channel's noise use independent child streams, so adding a channel or changing an optical knob
does not move the cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._options import SynthOptions

__all__ = ["Camera", "camera_for", "label_dtype", "render_field"]

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]

#: Mean nuclei per 256 x 256 px field at density 1 (proportional to the area).
NUCLEI_PER_256 = 30.0
_RADIUS_PX = (8.0, 14.0)  # equivalent radius range of nuclei at full scale, px
_CYTO_WIDTH_PX = (6.0, 15.0)  # cytoplasm width range, px
_PSF_SIGMA_PX = 1.0  # base PSF sigma, px
_SATURATED_OVERSHOOT = 2.5  # saturated nuclei are this many times the dtype range


@dataclass(frozen=True)
class Camera:
    """Detector model of one dtype: intensities in ADU, noise in ADU at ``snr == 1``."""

    max_value: int  # dtype maximum, ADU
    offset: float  # camera offset (bias), ADU
    read_noise: float  # Gaussian read noise sigma, ADU
    e_per_adu: float  # photo-electrons per ADU (sets the shot noise)
    scale: float  # nominal uint16 levels are multiplied by this


def camera_for(dtype: str) -> Camera:
    """The detector model used for ``dtype`` (``"uint16"`` or ``"uint8"``)."""
    if dtype == "uint8":
        return Camera(max_value=255, offset=3.0, read_noise=0.4, e_per_adu=32.0, scale=1 / 32)
    return Camera(max_value=65535, offset=100.0, read_noise=2.0, e_per_adu=1.0, scale=1.0)


def label_dtype(n_objects: int) -> type[np.unsignedinteger[Any]]:
    """Label image dtype for ``n_objects`` objects: uint16, or uint32 above 65535."""
    return np.uint16 if n_objects <= np.iinfo(np.uint16).max else np.uint32


# Nominal levels in uint16 ADU: (signal, background) per stain pattern.
_LEVELS = {
    "nuclei": (2500.0, 150.0),
    "cytoplasm": (900.0, 120.0),
    "puncta": (700.0, 110.0),
    "membrane": (800.0, 110.0),
}


def _pattern(channel_index: int) -> str:
    if channel_index == 0:
        return "nuclei"
    if channel_index == 1:
        return "cytoplasm"
    return "puncta" if channel_index % 2 == 0 else "membrane"


@dataclass(frozen=True)
class _Geometry:
    nuclei: I32  # nucleus labels, 0 = background
    cells: I32  # cell labels, same ids as the nuclei
    dnorm: F32  # normalized radial coordinate inside nuclei (0 centre .. 1 edge), 1 elsewhere
    dist: F32  # distance to the nearest nucleus pixel, px (0 inside nuclei)
    width: npt.NDArray[np.float64]  # cytoplasm width per label, px (index 0 unused)

    @property
    def n(self) -> int:
        return int(self.width.size - 1)


def _scale(size: int) -> float:
    """Size scale of objects: full size from 64 px up, smaller in tiny images."""
    return min(1.0, size / 64.0)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], *sigmas: float) -> list[F32]:
    """Gaussian-filtered white noise (zero mean, unit standard deviation), one per sigma (px).

    The fields share one white-noise draw, so they are correlated (a texture at two scales).
    """
    from scipy import ndimage

    white = rng.standard_normal(shape, dtype=np.float32)
    out = []
    for sigma in sigmas:
        smooth = ndimage.gaussian_filter(white, sigma, mode="wrap", truncate=3.0)
        # Standard deviation of 2-D white noise after a Gaussian of sigma s: 1 / (2 sqrt(pi) s).
        smooth *= np.float32(2.0 * math.sqrt(math.pi) * max(sigma, 0.5))
        out.append(smooth)
    return out


def _place_nuclei(
    size: int, density: float, touching: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Centres (y, x) and equivalent radii of non-overlapping nuclei, px."""
    scale = _scale(size)
    n_target = int(rng.poisson(density * NUCLEI_PER_256 * (size / 256.0) ** 2))
    cy = np.empty(n_target)
    cx = np.empty(n_target)
    rr = np.empty(n_target)
    spacing = 1.3 - 0.45 * touching  # minimum centre distance / sum of radii
    p_cluster = 0.85 * touching
    lo, hi = _RADIUS_PX
    n = 0
    for _ in range(50 * n_target):
        if n == n_target:
            break
        r = rng.uniform(lo, hi) * scale
        margin = 0.3 * r  # centres may lie slightly outside: objects cut by the border
        if n and rng.random() < p_cluster:
            j = int(rng.integers(n))
            angle = rng.uniform(0.0, 2.0 * math.pi)
            reach = (r + rr[j]) * spacing * rng.uniform(1.0, 1.1)
            y, x = cy[j] + reach * math.sin(angle), cx[j] + reach * math.cos(angle)
            if not (-margin <= y <= size - 1 + margin and -margin <= x <= size - 1 + margin):
                continue
        else:
            y, x = rng.uniform(-margin, size - 1 + margin, 2)
        if n:
            d2 = (cy[:n] - y) ** 2 + (cx[:n] - x) ** 2
            if np.any(d2 < ((rr[:n] + r) * spacing) ** 2):
                continue
        cy[n], cx[n], rr[n] = y, x, r
        n += 1
    return cy[:n], cx[:n], rr[:n]


def _rasterize_nuclei(
    size: int,
    cy: npt.NDArray[np.float64],
    cx: npt.NDArray[np.float64],
    rr: npt.NDArray[np.float64],
    rng: np.random.Generator,
) -> tuple[I32, F32]:
    """Label image of perturbed ellipses (a partition) and the normalized radial coordinate."""
    from scipy import ndimage

    n = cy.size
    labels = np.zeros((size, size), np.int32)
    best = np.full((size, size), np.inf, np.float32)
    aspect = rng.uniform(1.0, 1.7, n)
    theta = rng.uniform(0.0, math.pi, n)
    harmonics = np.arange(2, 6, dtype=np.float32)[:, None, None]
    amps = rng.normal(0.0, 0.035, (n, harmonics.shape[0])).astype(np.float32)
    phases = rng.uniform(0.0, 2.0 * math.pi, (n, harmonics.shape[0])).astype(np.float32)
    for k in range(n):
        a = rr[k] * math.sqrt(aspect[k])
        b = rr[k] / math.sqrt(aspect[k])
        reach = a * (1.0 + float(np.abs(amps[k]).sum())) + 1.0
        y0, y1 = max(0, math.floor(cy[k] - reach)), min(size, math.ceil(cy[k] + reach) + 1)
        x0, x1 = max(0, math.floor(cx[k] - reach)), min(size, math.ceil(cx[k] + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy[k])
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx[k])
        c, s = np.float32(math.cos(theta[k])), np.float32(math.sin(theta[k]))
        u = (dx * c + dy * s) / np.float32(a)
        v = (dy * c - dx * s) / np.float32(b)
        phi = np.arctan2(v, u)
        boundary = 1.0 + np.sum(
            amps[k][:, None, None] * np.cos(harmonics * phi + phases[k][:, None, None]), axis=0
        )
        d = np.hypot(u, v) / boundary
        sub_best = best[y0:y1, x0:x1]
        take = (d <= 1.0) & (d < sub_best)
        sub_best[take] = d[take]
        labels[y0:y1, x0:x1][take] = k + 1

    # Keep the largest connected part of each nucleus, drop slivers, renumber 1..N.
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == k
        parts, n_parts = ndimage.label(mask)
        if n_parts > 1:
            counts = np.bincount(parts.ravel())
            counts[0] = 0
            labels[sl][mask & (parts != int(np.argmax(counts)))] = 0
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    min_area = max(4.0, 0.1 * math.pi * (_RADIUS_PX[0] * _scale(size)) ** 2)
    keep = areas >= min_area
    keep[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    labels = remap[labels]
    dnorm = np.where(labels > 0, best, np.float32(1.0)).astype(np.float32)
    return labels, dnorm


def _grow_cells(nuclei: I32, rng: np.random.Generator) -> tuple[I32, F32, npt.NDArray[np.float64]]:
    """Cells grown from the nuclei: noisy distance watershed limited to a cytoplasm width."""
    from scipy import ndimage
    from skimage.segmentation import watershed

    size = nuclei.shape[0]
    n = int(nuclei.max())
    scale = _scale(size)
    width = np.zeros(n + 1)
    width[1:] = rng.uniform(*_CYTO_WIDTH_PX, n) * scale
    if n == 0:
        return np.zeros_like(nuclei), np.full(nuclei.shape, np.inf, np.float32), width
    dist, (iy, ix) = ndimage.distance_transform_edt(nuclei == 0, return_indices=True)
    dist = dist.astype(np.float32)
    nearest = nuclei[iy, ix]
    shape_noise, edge_noise = _smooth_noise(rng, nuclei.shape, 4.0 * scale + 1.0, 2.0)
    limit = width[nearest] * np.clip(1.0 + 0.35 * shape_noise, 0.25, None)
    elevation = dist + np.float32(2.0 * scale) * edge_noise
    mask = ndimage.binary_fill_holes(dist <= limit)
    cells = watershed(elevation, markers=nuclei, mask=mask).astype(np.int32)
    return cells, dist, width


def _geometry(options: SynthOptions, rng: np.random.Generator, empty: bool) -> _Geometry:
    size = options.size
    if empty:
        cy = cx = rr = np.empty(0)
    else:
        cy, cx, rr = _place_nuclei(size, options.density, options.touching, rng)
    nuclei, dnorm = _rasterize_nuclei(size, cy, cx, rr, rng)
    cells, dist, width = _grow_cells(nuclei, rng)
    return _Geometry(nuclei=nuclei, cells=cells, dnorm=dnorm, dist=dist, width=width)


def _spots(
    at: npt.NDArray[np.intp],
    amplitude: npt.NDArray[np.float64],
    shape: tuple[int, int],
    sigma: float,
) -> F32:
    """Gaussian spots (sigma in px) of peak ``amplitude`` centred at flat pixel indices ``at``."""
    from scipy import ndimage

    if at.size == 0:
        return np.zeros(shape, np.float32)
    deltas = np.bincount(at, weights=amplitude, minlength=shape[0] * shape[1]).reshape(shape)
    spots = ndimage.gaussian_filter(deltas.astype(np.float32), sigma)
    spots *= np.float32(2.0 * math.pi * sigma**2)
    return spots


def _stain(
    pattern: str,
    geom: _Geometry,
    level: float,
    rng: np.random.Generator,
    cap: float,
    saturated_level: float,
    saturation: float,
) -> F32:
    """Noise-free stain intensity (ADU above background) before optics."""
    shape = geom.nuclei.shape
    n = geom.n
    nuclei, cells = geom.nuclei, geom.cells
    fine, medium = _smooth_noise(rng, shape, 1.0, 3.0)
    if pattern == "nuclei":
        bright = np.zeros(n + 1)
        bright[1:] = level * np.clip(rng.lognormal(0.0, 0.25, n), 0.55, 1.7)
        texture = np.clip(1.0 + 0.15 * fine + 0.12 * medium, 0.3, None)
        dome = 1.0 - 0.3 * geom.dnorm**2
        signal = (bright.astype(np.float32)[nuclei] * dome * texture).astype(np.float32)
        inside = np.flatnonzero(nuclei)
        at = rng.choice(inside, inside.size // 35) if inside.size else inside
        amp = rng.uniform(0.25, 0.6, at.size) * bright[nuclei.ravel()[at]]
        signal += _spots(at, amp, shape, 0.9) * (nuclei > 0)
        np.minimum(signal, np.float32(cap), out=signal)
        n_sat = math.ceil(saturation * n) if saturation > 0 else 0
        if n_sat:
            brightest = np.argsort(bright[1:], kind="stable")[::-1][:n_sat] + 1
            hot = np.zeros(n + 1, bool)
            hot[brightest] = True
            sat_pixels = hot[nuclei]
            signal[sat_pixels] = (saturated_level * dome * texture)[sat_pixels]
        return signal
    amount = np.zeros(n + 1)
    amount[1:] = level * np.clip(rng.lognormal(0.0, 0.3, n), 0.4, 2.0)
    in_cell = amount.astype(np.float32)[cells]
    if pattern == "cytoplasm":
        width = np.maximum(geom.width, 1.0).astype(np.float32)[cells]
        profile = 0.6 + 0.4 * np.exp(-np.minimum(geom.dist, 1e6) / width)
        texture = np.clip(1.0 + 0.25 * medium + 0.12 * fine, 0.2, None)
        signal = in_cell * profile * texture
        signal[nuclei > 0] *= np.float32(0.3)
    elif pattern == "puncta":
        cytoplasm = np.flatnonzero((cells > 0) & (nuclei == 0))
        at = rng.choice(cytoplasm, cytoplasm.size // 20) if cytoplasm.size else cytoplasm
        amp = rng.uniform(0.6, 1.6, at.size) * level
        signal = 0.2 * in_cell + _spots(at, amp, shape, 1.0)
    else:  # membrane
        from skimage.segmentation import find_boundaries

        edges = find_boundaries(cells, mode="inner") & (cells > 0)
        signal = 0.15 * in_cell + edges * in_cell * np.clip(1.0 + 0.3 * fine, 0.2, None)
    return np.minimum(signal, np.float32(cap)).astype(np.float32)


def _background(rng: np.random.Generator, size: int, level: float) -> F32:
    """Smooth background: a shallow linear gradient plus a few low-frequency waves."""
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ramp = np.arange(size, dtype=np.float32) / np.float32(max(size - 1, 1)) - np.float32(0.5)
    field = (
        np.float32(0.08 * math.sin(angle)) * ramp[:, None]
        + np.float32(0.08 * math.cos(angle)) * ramp[None, :]
    )
    n_waves = 4
    freq = rng.uniform(-1.5, 1.5, (n_waves, 2)) * 2.0 * math.pi  # < 1.5 cycles per image
    phase = rng.uniform(0.0, 2.0 * math.pi, n_waves)
    amp = 0.03 / math.sqrt(n_waves / 2.0)
    for (fy, fx), p in zip(freq, phase, strict=True):
        # cos(a + b) = cos a cos b - sin a sin b, as outer products (no per-pixel trig).
        ay = np.float32(fy) * ramp + np.float32(p)
        ax = np.float32(fx) * ramp
        field += np.float32(amp) * (
            np.cos(ay)[:, None] * np.cos(ax)[None, :] - np.sin(ay)[:, None] * np.sin(ax)[None, :]
        )
    return (level * (1.0 + field)).astype(np.float32)


def _vignetting(size: int, strength: float) -> F32:
    """Radial falloff ``1 - strength * (r / r_corner)**2`` (1 at the centre)."""
    centre = (size - 1) / 2.0
    axis = (np.arange(size, dtype=np.float32) - np.float32(centre)) ** 2
    r2 = (axis[:, None] + axis[None, :]) / np.float32(max(2.0 * centre**2, 1.0))
    return (1.0 - strength * r2).astype(np.float32)


def render_field(
    options: SynthOptions,
    rng: np.random.Generator,
    *,
    empty: bool | None = None,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """Render one field (site): pixels and exact nucleus and cell labels. Pure, no I/O.

    Parameters
    ----------
    options : SynthOptions
        What to render; ``size``, ``channels``, ``density``, ``touching``, ``blur``,
        ``vignetting``, ``saturation``, ``snr`` and ``dtype`` are used here.
    rng : numpy.random.Generator
        Source of all randomness. The same generator state gives the same arrays.
    empty : bool, optional
        Render background and noise only (no cells). By default the field is empty with
        probability ``options.empty_fraction``.

    Returns
    -------
    image : numpy.ndarray
        ``(C, Y, X)`` pixels of ``options.dtype``, channels in the order of
        ``options.channels``.
    nuclei : numpy.ndarray
        ``(Y, X)`` nucleus instance labels, 0 = background, 1..N; uint16 (uint32 above 65535
        objects).
    cells : numpy.ndarray
        ``(Y, X)`` cell instance labels of the same dtype; cell ``k`` contains nucleus ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> image, nuclei, cells = render_field(SynthOptions(size=64), np.random.default_rng(0))
    >>> image.shape, nuclei.shape
    ((2, 64, 64), (64, 64))
    """
    from scipy import ndimage

    size = options.size
    seeds = [int(s) for s in rng.integers(0, 2**63, size=3)]
    draw_empty = bool(rng.random() < options.empty_fraction)
    is_empty = draw_empty if empty is None else bool(empty)

    geom = _geometry(options, np.random.default_rng(seeds[0]), is_empty)
    cam = camera_for(options.dtype)
    vignette = _vignetting(size, options.vignetting)
    sigma = math.sqrt(_PSF_SIGMA_PX**2 + options.blur**2)
    gain = cam.e_per_adu * options.snr**2  # expected electrons per ADU of mean signal
    dtype = np.dtype(options.dtype)
    saturated = (
        _SATURATED_OVERSHOOT * (cam.max_value - cam.offset) / max(1.0 - options.vignetting, 0.1)
    )
    image = np.empty((len(options.channels), size, size), dtype)
    for c in range(len(options.channels)):
        pattern = _pattern(c)
        signal_level, bg_level = (v * cam.scale for v in _LEVELS[pattern])
        texture_rng = np.random.default_rng([seeds[1], c])
        noise_rng = np.random.default_rng([seeds[2], c])
        cap = 0.8 * cam.max_value - cam.offset - bg_level
        signal = _stain(
            pattern, geom, signal_level, texture_rng, cap, saturated, options.saturation
        )
        signal = ndimage.gaussian_filter(signal, sigma, mode="nearest")
        fluor = (signal + _background(texture_rng, size, bg_level)) * vignette
        electrons = noise_rng.poisson(np.maximum(fluor, 0.0).astype(np.float64) * gain)
        adu = electrons / gain + cam.offset
        adu += noise_rng.normal(0.0, cam.read_noise / options.snr, adu.shape)
        image[c] = np.clip(np.rint(adu), 0, cam.max_value).astype(dtype)

    ltype = label_dtype(geom.n)
    return image, geom.nuclei.astype(ltype), geom.cells.astype(ltype)
