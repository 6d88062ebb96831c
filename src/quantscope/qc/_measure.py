"""Measure stored images: read the QC pyramid level of an OME-Zarr and compute the metrics."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput, NotFound
from ..model import Image
from ..quality import BEST_FOCUS_PLANE as _BEST_FOCUS_PLANE

__all__ = [
    "QC_MAX_EDGE",
    "StoredImage",
    "alpha_channels",
    "measure_image",
    "measure_planes",
    "qc_level",
    "significant_bits",
]

#: Images up to this many px on their longer side are measured at full resolution; larger ones
#: on the first pyramid level at most this large (see :func:`qc_level`).
QC_MAX_EDGE = 2048

#: Name of the extra per-channel value stored for z-stacks (0-based z index of the best plane).
BEST_FOCUS_PLANE = _BEST_FOCUS_PLANE


def alpha_channels(names: Sequence[str]) -> set[int]:
    """Indices of the channels that hold opacity (alpha), not a measurement.

    A channel named ``alpha`` (any case), and the fourth channel of an image whose channels
    are ``R, G, B, A`` (``red, green, blue, alpha``): the names the readers give the samples
    of an RGBA file (PNG, TIFF with an alpha extra sample). QC neither measures nor flags
    them: a constant alpha channel at the dtype maximum would read as 100 % saturated.
    """
    low = [str(n).strip().lower() for n in names]
    out = {i for i, n in enumerate(low) if n == "alpha"}
    if (
        len(low) == 4
        and low[3] in ("a", "alpha")
        and (low[:3] == ["r", "g", "b"] or low[:3] == ["red", "green", "blue"])
    ):
        out.add(3)
    return out


def qc_level(shapes: list[tuple[int, ...]], max_edge: int = QC_MAX_EDGE) -> int:
    """The pyramid level QC measures: 0 when level 0 is at most ``max_edge`` px on its longer
    (y, x) side, else the first level that is (the last level when none is).

    Measuring a downsampled level keeps QC of an 8192 x 8192 image affordable; the metrics then
    describe that level (a 2x2 mean per step): saturation percentages count its pixels (a
    saturated pixel averaged with unsaturated neighbours no longer reaches the maximum), focus
    and noise figures are those of the coarser sampling.
    """
    for level, shape in enumerate(shapes):
        if max(shape[-2], shape[-1]) <= max_edge:
            return level
    return len(shapes) - 1


def significant_bits(ome_xml: str | None, dtype: str, scene: int = 0) -> int | None:
    """``SignificantBits`` of the image's OME ``Pixels`` when it is usable for ``dtype``.

    Only integer dtypes use it; a value outside ``1..bits of dtype`` is ignored (None). With
    several ``Pixels`` elements (a multi-scene file) the one of ``scene`` is used.
    """
    dt = np.dtype(dtype)
    if ome_xml is None or dt.kind not in "iu":
        return None
    found = re.findall(r"<(?:\w+:)?Pixels\b[^>]*>", ome_xml)
    if not found:
        return None
    tag = found[scene] if len(found) > 1 and scene < len(found) else found[0]
    m = re.search(r'\bSignificantBits\s*=\s*"(\d+)"', tag)
    if not m:
        return None
    bits = int(m.group(1))
    max_bits = dt.itemsize * 8 - (1 if dt.kind == "i" else 0)
    return bits if 1 <= bits <= max_bits else None


class StoredImage:
    """An opened stored OME-Zarr image: the shapes of its pyramid levels and plane access.

    Stores in the plain layouts quantscope writes are read with the fast direct reader
    (:class:`quantscope.io.OmeZarrPlanes`, ~1 ms instead of ~4 ms per small image); anything
    else (other axes, sharding) through zarr-python.
    """

    def __init__(self, path: Path, reader: Any, shapes: list[tuple[int, ...]]) -> None:
        self.path, self._reader, self.shapes = path, reader, shapes

    @classmethod
    def open(cls, path: Path) -> StoredImage:
        """Open the multiscale image at ``path`` (read-only)."""
        from ..io import OmeZarrPlanes, UnsupportedLayout

        try:
            fast = OmeZarrPlanes(path)
            return cls(path, fast, [tuple(s) for s in fast.shapes])
        except UnsupportedLayout:
            pass
        import zarr

        try:
            group = zarr.open_group(str(path), mode="r")
            attrs: Any = group.attrs.asdict()
            ms = attrs["ome"]["multiscales"][0]
            paths = [str(d["path"]) for d in ms["datasets"]]
        except FileNotFoundError as e:
            raise NotFound(f"{path}: stored image not found ({e})") from e
        except (KeyError, IndexError, TypeError) as e:
            raise InvalidInput(f"{path}: not an OME-Zarr multiscale image ({e!r})") from e
        arrays: list[Any] = [group[p] for p in paths]
        return cls(path, _ZarrPlanes(arrays), [tuple(int(n) for n in a.shape) for a in arrays])

    def plane(self, level: int, c: int, z: int, t: int = 0) -> npt.NDArray[Any]:
        """One 2-D plane ``(y, x)`` of a level."""
        return np.asarray(self._reader.plane(level, c, z, t))

    def stack(self, level: int, c: int, t: int = 0) -> npt.NDArray[Any]:
        """The z-stack ``(z, y, x)`` of one channel of a level."""
        return np.asarray(self._reader.stack(level, c, t))

    def ome_xml(self) -> str | None:
        f = self.path / "OME" / "METADATA.ome.xml"
        try:
            return f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None


class _ZarrPlanes:
    """Plane access through zarr-python, for layouts the direct reader does not handle."""

    def __init__(self, arrays: list[Any]) -> None:
        self.arrays = arrays

    def plane(self, level: int, c: int, z: int, t: int = 0) -> Any:
        return self.arrays[level][t, c, z]

    def stack(self, level: int, c: int, t: int = 0) -> Any:
        return self.arrays[level][t, c]


def measure_image(store_path: Path, image: Image) -> dict[int, dict[str, float]]:
    """Quality metrics of every channel of a stored image.

    Parameters
    ----------
    store_path : pathlib.Path
        Folder of the image's OME-Zarr (``repo.root / image.store_path``).
    image : quantscope.model.Image
        The image's catalog record (shape, dtype, channels, sources).

    Returns
    -------
    dict of int to dict of str to float
        ``{channel index: metrics}`` with every metric of
        :func:`quantscope.quality.channel_metrics` (NaN where undefined). For a z-stack
        (``z > 1``) the metrics are those of the best-focus plane, found per channel with
        :func:`quantscope.quality.stack_metrics`, and ``"best_focus_plane"`` holds its 0-based
        z index (NaN when no plane has a defined focus; the middle plane is measured then).
        Alpha channels (:func:`alpha_channels`) are left out.

    Notes
    -----
    Only the first time point is measured. Images larger than :data:`QC_MAX_EDGE` px are
    measured on a downsampled pyramid level (:func:`qc_level`): their saturation percentages
    refer to that level's pixels. ``SignificantBits`` from the stored OME-XML (when present
    and valid) sets the detector maximum for saturation and dynamic range.

    Raises
    ------
    quantscope.errors.NotFound
        The stored image is missing.
    quantscope.errors.InvalidInput
        The store is not an OME-Zarr multiscale image.
    """
    stored = StoredImage.open(Path(store_path))
    level = qc_level(stored.shapes)
    shape = stored.shapes[level]
    scene = image.sources[0].scene if image.sources else 0
    bits = significant_bits(stored.ome_xml(), image.dtype, scene)
    return _measure_channels(
        shape[1],
        shape[2],
        lambda c: stored.plane(level, c, 0),
        lambda c: stored.stack(level, c),
        bits,
        alpha_channels([ch.name for ch in image.channels]),
    )


def measure_planes(
    planes: npt.NDArray[Any], image: Image, ome_xml: str | None = None
) -> dict[int, dict[str, float]]:
    """Quality metrics of every channel of an image whose QC planes are in memory.

    What :func:`measure_image` computes from the stored OME-Zarr, from the planes instead:
    ingest keeps the first time point of an image it writes (when that is the level QC
    measures, :func:`qc_level`) and measures it without reading the store back.

    Parameters
    ----------
    planes : numpy.ndarray
        ``(C, Z, Y, X)``: time point 0 of every channel and z-plane, at full resolution
        (level 0 of the pyramid, which must be the QC level: at most :data:`QC_MAX_EDGE` px
        on its longer side).
    image : quantscope.model.Image
        The image's record (dtype, sources).
    ome_xml : str, optional
        The OME-XML stored with the image (for ``SignificantBits``).

    Returns
    -------
    dict of int to dict of str to float
        As :func:`measure_image`; bit for bit the same values for the same pixels.

    Raises
    ------
    quantscope.errors.InvalidInput
        ``planes`` is not 4-D or is larger than the QC level.
    """
    arr = np.asarray(planes)
    if arr.ndim != 4:
        raise InvalidInput(f"planes: expected a (C, Z, Y, X) array, got shape {arr.shape}")
    if max(arr.shape[-2:]) > QC_MAX_EDGE:
        raise InvalidInput(
            f"planes: {arr.shape[-2]}x{arr.shape[-1]} px is larger than the QC level "
            f"({QC_MAX_EDGE} px); measure the stored image with measure_image"
        )
    scene = image.sources[0].scene if image.sources else 0
    bits = significant_bits(ome_xml, image.dtype, scene)
    return _measure_channels(
        arr.shape[0],
        arr.shape[1],
        lambda c: arr[c, 0],
        lambda c: arr[c],
        bits,
        alpha_channels([ch.name for ch in image.channels]),
    )


def _measure_channels(
    n_c: int,
    n_z: int,
    plane: Callable[[int], npt.NDArray[Any]],
    stack: Callable[[int], npt.NDArray[Any]],
    bits: int | None,
    skip: set[int],
) -> dict[int, dict[str, float]]:
    """Metrics of each of ``n_c`` channels but ``skip`` (alpha): of its plane, or of the
    best-focus plane of its stack of ``n_z > 1`` planes (``best_focus_plane`` added)."""
    from ..quality import best_plane_metrics

    return {
        c: best_plane_metrics(stack(c) if n_z > 1 else plane(c), significant_bits=bits)
        for c in range(n_c)
        if c not in skip
    }


def thumbnail(plane: npt.NDArray[Any], max_edge: int) -> npt.NDArray[np.uint8]:
    """A uint8 preview of a 2-D plane: block mean down to at most ``max_edge`` px, then
    contrast-stretched from the 1st to the 99.8th percentile of its finite values."""
    a = np.asarray(plane, dtype=np.float32)
    step = max(1, math.ceil(max(a.shape) / max_edge))
    if step > 1:
        ny, nx = a.shape[0] // step, a.shape[1] // step
        if ny >= 1 and nx >= 1:
            a = a[: ny * step, : nx * step].reshape(ny, step, nx, step).mean(axis=(1, 3))
        else:
            a = a[::step, ::step]
    finite = np.isfinite(a)
    out = np.zeros(a.shape, np.uint8)
    if not finite.any():
        return out
    lo, hi = np.percentile(a[finite], [1.0, 99.8])
    if not hi > lo:
        hi = lo + 1.0
    scaled = (np.where(finite, a, lo) - lo) * (255.0 / (hi - lo))
    np.clip(scaled, 0.0, 255.0, out=scaled)
    out[...] = np.rint(scaled).astype(np.uint8)
    return out
