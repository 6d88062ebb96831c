"""Pixels to pictures: tiles, thumbnails, label overlays and object crops of stored OME-Zarr
images, as PNG bytes. Pure functions over a folder (no HTTP): the tile routes of :mod:`._tiles`
call them, and the tests compare their pixels with the stored arrays.

- :func:`open_image`: an :class:`OpenImage` (pyramid shapes, scales, omero channel settings,
  label names), cached per process and reopened when the image's ``zarr.json`` (or its
  ``labels/zarr.json``) changes; decoded chunks are kept in a bounded LRU shared by all images;
- :func:`tile_png`, :func:`thumbnail_png`, :func:`label_tile_png`, :func:`crop_png`.

Coordinates out of range raise :class:`~quantscope.errors.NotFound` naming the coordinate;
malformed parameters :class:`~quantscope.errors.InvalidInput` (the server answers 404 / 400).
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, NotFound

__all__ = [
    "TILE",
    "ChunkCache",
    "OpenImage",
    "Styles",
    "composite",
    "crop_png",
    "encode_png",
    "label_colors",
    "label_tile_png",
    "open_image",
    "parse_styles",
    "thumbnail_png",
    "tile_box",
    "tile_png",
]

TILE = 256  # tile edge in px
THUMB = 256  # a thumbnail's longest edge is at most this
CROP_PAD = 16  # px of context around an object in a crop
OUTLINE = (255, 255, 0)  # the colour of an object's outline in a crop

# colours of channels without omero metadata: DAPI/Hoechst blue, then these in turn
_NUCLEAR = ("dapi", "hoechst", "nuclei", "nucleus")
_PALETTE = (
    (0, 255, 0),
    (255, 0, 0),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 0),
    (255, 255, 255),
)
_BLUE = (0, 0, 255)


# ------------------------------------------------------------------------------------ caches


class ChunkCache:
    """A thread-safe LRU of decoded chunks bounded by bytes (the tiles of one chunk share it)."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> np.ndarray | None:
        with self._lock:
            block = self._items.get(key)
            if block is not None:
                self._items.move_to_end(key)
            return block

    def put(self, key: Any, block: np.ndarray) -> None:
        if block.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = block
            self._bytes += block.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


CHUNKS = ChunkCache(int(os.environ.get("QUANTSCOPE_CHUNK_CACHE_MB", "256")) * 2**20)


class _Stamped:
    """A view of :data:`CHUNKS` whose keys carry an image's stamp (rewritten files: new keys)."""

    def __init__(self, stamp: tuple[int, ...]) -> None:
        self.stamp = stamp

    def get(self, key: Any) -> np.ndarray | None:
        return CHUNKS.get((self.stamp, key))

    def put(self, key: Any, block: np.ndarray) -> None:
        CHUNKS.put((self.stamp, key), block)


class _ZarrPlanes:
    """Fallback reader for layouts :class:`quantscope.io.OmeZarrPlanes` does not implement
    (zarr-python; same ``window`` interface)."""

    def __init__(self, path: Path, paths: Sequence[str]) -> None:
        import zarr

        group = zarr.open_group(str(path), mode="r")
        self._arrays: list[Any] = [group[p] for p in paths]
        self.shapes = [tuple(int(n) for n in a.shape) for a in self._arrays]
        self.dtype = np.dtype(self._arrays[0].dtype)

    def window(
        self,
        level: int,
        c: int,
        z: int,
        t: int,
        ys: tuple[int, int],
        xs: tuple[int, int],
        *,
        cache: Any = None,
    ) -> np.ndarray:
        return np.asarray(self._arrays[level][t, c, z, ys[0] : ys[1], xs[0] : xs[1]])


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as e:
        raise NotFound(f"{path.name}: the image's files are missing") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path}: not valid JSON ({e})") from e


@dataclass
class OpenImage:
    """One OME-Zarr multiscale image (or label image), open for reading windows.

    ``shapes``: ``(t, c, z, y, x)`` per level; ``scales``: the scale transform per level;
    ``omero``: the omero channel records (may be empty); ``labels``: names in ``labels/``.
    """

    path: Path
    stamp: tuple[int, ...]
    shapes: list[tuple[int, ...]]
    scales: list[list[float]]
    omero: list[dict[str, Any]]
    labels: list[str]
    planes: Any
    _children: dict[str, OpenImage] = field(default_factory=dict, repr=False)
    _auto: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)
    _boxes: dict[tuple[int, int], list[Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._cache = _Stamped(self.stamp)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.planes.dtype)

    def window(
        self, level: int, c: int, z: int, t: int, ys: tuple[int, int], xs: tuple[int, int]
    ) -> np.ndarray:
        return np.asarray(self.planes.window(level, c, z, t, ys, xs, cache=self._cache))

    def label(self, name: str) -> OpenImage:
        """The label image ``name`` (exact, or the unique one whose name before ``-`` is it)."""
        names = [n for n in self.labels if n == name]
        if not names:
            names = [n for n in self.labels if n.rsplit("-", 1)[0] == name]
        if len(names) != 1:
            known = ", ".join(self.labels) or "none"
            raise NotFound(f"labels {name!r}: not found in this image (it has: {known})")
        with self._lock:
            child = self._children.get(names[0])
            if child is None:
                child = _open(self.path / "labels" / names[0], ())
                self._children[names[0]] = child
        return child

    def auto_window(self, c: int) -> tuple[float, float]:
        """Contrast of channel ``c`` where omero stores none: the 0.1-99.9 percentiles of the
        coarsest level's first plane."""
        with self._lock:
            got = self._auto.get(c)
        if got is not None:
            return got
        if self.dtype == np.uint8:
            win = (0.0, 255.0)
        else:
            lv = len(self.shapes) - 1
            plane = self.window(lv, c, 0, 0, (0, self.shapes[lv][3]), (0, self.shapes[lv][4]))
            lo, hi = (float(v) for v in np.percentile(plane, [0.1, 99.9]))
            win = (lo, hi if hi > lo else lo + 1.0)
        with self._lock:
            self._auto[c] = win
        return win

    def boxes(self, t: int, z: int) -> list[Any]:
        """``scipy.ndimage.find_objects`` of plane (t, z) at level 0 (label images)."""
        with self._lock:
            got = self._boxes.get((t, z))
        if got is None:
            from scipy import ndimage

            ny, nx = self.shapes[0][3], self.shapes[0][4]
            plane = self.window(0, 0, z, t, (0, ny), (0, nx))
            got = list(ndimage.find_objects(plane.astype(np.int64, copy=False)))
            with self._lock:
                self._boxes[(t, z)] = got
        return got


def _stamp(path: Path) -> tuple[int, ...]:
    out = []
    for p in (path / "zarr.json", path / "labels" / "zarr.json"):
        try:
            st = p.stat()
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


def _open(path: Path, stamp: tuple[int, ...]) -> OpenImage:
    from ..io import OmeZarrPlanes, UnsupportedLayout

    attrs = _json(path / "zarr.json").get("attributes", {})
    ome = attrs.get("ome", attrs)
    try:
        ms = ome["multiscales"][0]
        paths = [str(d["path"]) for d in ms["datasets"]]
        scales = []
        for d in ms["datasets"]:
            sc = [t for t in d.get("coordinateTransformations", []) if t.get("type") == "scale"]
            scales.append([float(v) for v in sc[0]["scale"]] if sc else [])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise InvalidInput(f"{path.name}: not an OME-Zarr multiscale image ({e!r})") from e
    planes: Any
    try:
        planes = OmeZarrPlanes(path)
    except UnsupportedLayout:
        planes = _ZarrPlanes(path, paths)
    if any(len(s) != 5 for s in planes.shapes):
        raise InvalidInput(f"{path.name}: expected (t, c, z, y, x) arrays")
    labels: list[str] = []
    if (path / "labels" / "zarr.json").is_file():
        la = _json(path / "labels" / "zarr.json").get("attributes", {})
        labels = [str(n) for n in la.get("ome", la).get("labels", [])]
    omero = ome.get("omero", {}).get("channels", []) if isinstance(ome.get("omero"), dict) else []
    return OpenImage(path, stamp, list(planes.shapes), scales, list(omero), labels, planes)


_OPEN: OrderedDict[Path, OpenImage] = OrderedDict()
_OPEN_LOCK = threading.Lock()
_OPEN_MAX = 128


def open_image(path: str | os.PathLike[str]) -> OpenImage:
    """The image at ``path`` (an OME-Zarr image group), from this process's cache unless its
    ``zarr.json`` or ``labels/zarr.json`` changed since it was opened.

    Raises
    ------
    NotFound
        The folder has no ``zarr.json``.
    InvalidInput
        It is not an OME-Zarr multiscale image with ``(t, c, z, y, x)`` axes.
    """
    p = Path(path)
    stamp = _stamp(p)
    with _OPEN_LOCK:
        got = _OPEN.get(p)
        if got is not None and got.stamp == stamp:
            _OPEN.move_to_end(p)
            return got
    img = _open(p, stamp)
    with _OPEN_LOCK:
        _OPEN[p] = img
        _OPEN.move_to_end(p)
        while len(_OPEN) > _OPEN_MAX:
            _OPEN.popitem(last=False)
    return img


# ------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Styles:
    """Channels to composite, their colours (0-255 RGB) and contrast windows (lo, hi)."""

    channels: tuple[int, ...]
    colors: tuple[tuple[int, int, int], ...]
    windows: tuple[tuple[float, float], ...]


def _color(hexa: Any) -> tuple[int, int, int] | None:
    if not isinstance(hexa, str) or len(hexa) not in (6, 8):
        return None
    try:
        v = int(hexa[:6], 16)
    except ValueError:
        return None
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def default_color(img: OpenImage, c: int) -> tuple[int, int, int]:
    """Channel ``c``'s colour: omero's, else blue for a nuclear stain, else the palette."""
    rec = img.omero[c] if c < len(img.omero) else {}
    got = _color(rec.get("color"))
    if got is not None:
        return got
    label = str(rec.get("label", "")).lower()
    if any(k in label for k in _NUCLEAR) or (c == 0 and not label):
        return _BLUE
    return _PALETTE[(c - 1) % len(_PALETTE)] if c > 0 else _PALETTE[0]


def default_window(img: OpenImage, c: int) -> tuple[float, float]:
    """Channel ``c``'s contrast window: omero's ``start``/``end``, else automatic."""
    rec = img.omero[c] if c < len(img.omero) else {}
    win = rec.get("window") if isinstance(rec, dict) else None
    if isinstance(win, dict):
        try:
            lo, hi = float(win["start"]), float(win["end"])
            if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                return lo, hi
        except (KeyError, TypeError, ValueError):
            pass
    return img.auto_window(c)


def _numbers(name: str, text: str, kind: type) -> list[Any]:
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            v = kind(part)
        except ValueError:
            raise InvalidInput(
                f"{name}: expected comma-separated {'whole numbers' if kind is int else 'numbers'}"
                f", got {text[:80]!r}"
            ) from None
        if kind is float and not math.isfinite(v):
            raise InvalidInput(f"{name}: {part!r} is not a finite number")
        out.append(v)
    return out


def parse_styles(
    img: OpenImage, c: str | None = None, lo: str | None = None, hi: str | None = None
) -> Styles:
    """Channels ``c`` (``"0,2"``; default the omero-active ones, else all) with contrast from
    ``lo``/``hi`` (``min``/``max`` parameters, parallel to ``c``, or one value for all), else the
    omero window.

    Raises
    ------
    InvalidInput
        A malformed list, a channel outside the image, lists of the wrong length, max <= min.
    """
    n = img.shapes[0][1]
    if c is None or not c.strip():
        active = [i for i in range(n) if i < len(img.omero) and img.omero[i].get("active")]
        chans = active or list(range(n))
    else:
        chans = _numbers("c", c, int)
        bad = [k for k in chans if not 0 <= k < n]
        if bad:
            raise InvalidInput(f"c: channel {bad[0]} does not exist (this image has 0-{n - 1})")
        if len(set(chans)) != len(chans):
            raise InvalidInput(f"c: a channel is listed twice in {c!r}")
    wins = [default_window(img, k) for k in chans]
    for name, text, idx in (("min", lo, 0), ("max", hi, 1)):
        if text is None or not text.strip():
            continue
        vals = _numbers(name, text, float)
        if len(vals) == 1:
            vals = vals * len(chans)
        if len(vals) != len(chans):
            raise InvalidInput(
                f"{name}: {len(vals)} values for {len(chans)} channels (give one per channel of c)"
            )
        wins = [(v, w[1]) if idx == 0 else (w[0], v) for v, w in zip(vals, wins, strict=True)]
    for k, (a, b) in zip(chans, wins, strict=True):
        if not b > a:
            raise InvalidInput(f"max: must be above min for channel {k} (got min={a}, max={b})")
    return Styles(tuple(chans), tuple(default_color(img, k) for k in chans), tuple(wins))


# -------------------------------------------------------------------------------- rendering


def composite(
    planes: Sequence[np.ndarray],
    colors: Sequence[tuple[int, int, int]],
    windows: Sequence[tuple[float, float]],
) -> np.ndarray:
    """Additive colour composite (uint8 ``(y, x, 3)``): each plane scaled linearly from its
    window ``(lo, hi)`` to 0-1 (clipped), times its colour, summed and clipped to 255."""
    if not planes:
        raise InvalidInput("c: no channel to render")
    h, w = planes[0].shape
    # one contiguous plane per colour component: ~9x faster than adding into acc[..., k]
    acc = np.zeros((3, h, w), dtype=np.float32)
    for plane, col, (lo, hi) in zip(planes, colors, windows, strict=True):
        s = (plane.astype(np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
        np.clip(s, 0.0, 1.0, out=s)
        for k in range(3):
            if col[k]:
                acc[k] += s * np.float32(col[k])
    np.clip(acc, 0.0, 255.0, out=acc)
    acc += 0.5
    return np.ascontiguousarray(acc.astype(np.uint8).transpose(1, 2, 0))


def _hash_colors(values: np.ndarray) -> np.ndarray:
    """RGBA of label values (any shape): a multiplicative hash per value, each component in
    64-255 (bright enough to see), alpha 255, value 0 transparent."""
    h = values.astype(np.uint32) * np.uint32(2654435761)  # wraps modulo 2**32
    h ^= h >> np.uint32(15)
    out = np.empty((4, *values.shape), dtype=np.uint8)
    for k, shift in enumerate((0, 8, 16)):
        ch = (h >> np.uint32(shift)) & np.uint32(255)
        out[k] = np.uint32(64) + ch * np.uint32(191) // np.uint32(255)
    out[3] = np.where(values != 0, 255, 0)
    return np.moveaxis(out, 0, -1)


def label_colors(labels: np.ndarray) -> np.ndarray:
    """RGBA (uint8 ``(y, x, 4)``) of a label plane: each label value a colour of its own (a
    hash of the value, bright enough to see), background (0) transparent."""
    top = int(labels.max()) if labels.size else 0
    if labels.dtype.kind in "ui" and int(labels.min(initial=0)) >= 0 and top < 2**20:
        table = np.ascontiguousarray(_hash_colors(np.arange(top + 1, dtype=np.uint32)))
        return table[labels]  # one gather: the hash of each value computed once
    return np.ascontiguousarray(_hash_colors(labels))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + tag
        + data
        + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    )


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(y, x, 3|4)`` array (RGB or RGBA), encoded for speed.

    Every row uses PNG's SUB filter (computed with numpy) and the rows are compressed with
    libdeflate at level 1 (``imagecodecs.deflate_encode``, a zlib stream): about half the CPU
    time of libpng at its fastest settings for the same size (bench/serve.py).
    """
    import imagecodecs

    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, ch = a.shape
    if ch not in (3, 4):
        raise ValueError(f"expected RGB or RGBA, got {ch} channels")
    flat = a.reshape(h, w * ch)
    rows = np.empty((h, w * ch + 1), dtype=np.uint8)
    rows[:, 0] = 1  # SUB: each byte minus the byte of the pixel to its left
    rows[:, 1 : 1 + ch] = flat[:, :ch]
    np.subtract(flat[:, ch:], flat[:, :-ch], out=rows[:, 1 + ch :])
    data = bytes(imagecodecs.deflate_encode(rows.tobytes(), level=1))
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if ch == 3 else 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def _check(name: str, value: int, n: int) -> None:
    if not 0 <= value < n:
        raise NotFound(f"{name} {value}: out of range (this image has {name} 0-{n - 1})")


def tile_box(
    img: OpenImage, level: int, z: int, t: int, y: int, x: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Pixel bounds ``((y0, y1), (x0, x1))`` of tile (y, x) of ``level`` (edge tiles cropped).

    Raises
    ------
    NotFound
        Level, z, t or tile index out of range (the message names which).
    """
    _check("level", level, len(img.shapes))
    nt, _, nz, ny, nx = img.shapes[level]
    _check("t", t, nt)
    _check("z", z, nz)
    _check("tile y", y, -(-ny // TILE))
    _check("tile x", x, -(-nx // TILE))
    return (y * TILE, min(ny, (y + 1) * TILE)), (x * TILE, min(nx, (x + 1) * TILE))


def render_tile(
    img: OpenImage, level: int, z: int, y: int, x: int, t: int, styles: Styles
) -> np.ndarray:
    """The RGB composite of tile (y, x) (see :func:`tile_box`)."""
    ys, xs = tile_box(img, level, z, t, y, x)
    planes = [img.window(level, c, z, t, ys, xs) for c in styles.channels]
    return composite(planes, styles.colors, styles.windows)


def tile_png(img: OpenImage, level: int, z: int, y: int, x: int, t: int, styles: Styles) -> bytes:
    """PNG of :func:`render_tile`."""
    return encode_png(render_tile(img, level, z, y, x, t, styles))


def render_thumbnail(img: OpenImage, styles: Styles, *, size: int = THUMB) -> np.ndarray:
    """RGB composite of the middle z-plane (t 0) at the coarsest level, subsampled so its
    longest edge is at most ``size`` px."""
    lv = len(img.shapes) - 1
    _, _, nz, ny, nx = img.shapes[lv]
    step = max(1, -(-max(ny, nx) // size))
    planes = [
        img.window(lv, c, nz // 2, 0, (0, ny), (0, nx))[::step, ::step] for c in styles.channels
    ]
    return composite(planes, styles.colors, styles.windows)


def thumbnail_png(img: OpenImage, styles: Styles) -> bytes:
    """PNG of :func:`render_thumbnail`."""
    return encode_png(render_thumbnail(img, styles))


def render_label_tile(
    img: OpenImage, name: str, level: int, z: int, y: int, x: int, t: int
) -> np.ndarray:
    """RGBA tile (y, x) of label image ``name`` (see :func:`label_colors`)."""
    lab = img.label(name)
    ys, xs = tile_box(lab, level, z, t, y, x)
    return label_colors(lab.window(level, 0, z, t, ys, xs))


def label_tile_png(img: OpenImage, name: str, level: int, z: int, y: int, x: int, t: int) -> bytes:
    """PNG of :func:`render_label_tile`."""
    return encode_png(render_label_tile(img, name, level, z, y, x, t))


def render_crop(
    img: OpenImage, name: str, value: int, styles: Styles, *, t: int = 0, z: int = 0
) -> np.ndarray:
    """RGB crop (level 0) around object ``value`` of label image ``name`` at (t, z), with
    :data:`CROP_PAD` px of context and the object's outline drawn in yellow.

    Raises
    ------
    NotFound
        No such label image, plane or object.
    """
    from scipy import ndimage

    lab = img.label(name)
    nt, _, nz, ny, nx = lab.shapes[0]
    _check("t", t, nt)
    _check("z", z, nz)
    boxes = lab.boxes(t, z)
    box = boxes[value - 1] if 0 < value <= len(boxes) else None
    if box is None:
        raise NotFound(f"object {value}: not in labels {name!r} (t={t}, z={z})")
    ys = (max(0, box[0].start - CROP_PAD), min(ny, box[0].stop + CROP_PAD))
    xs = (max(0, box[1].start - CROP_PAD), min(nx, box[1].stop + CROP_PAD))
    planes = [img.window(0, c, z, t, ys, xs) for c in styles.channels]
    rgb = composite(planes, styles.colors, styles.windows)
    mask = lab.window(0, 0, z, t, ys, xs) == value
    edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
    rgb[edge] = OUTLINE
    return rgb


def crop_png(
    img: OpenImage, name: str, value: int, styles: Styles, *, t: int = 0, z: int = 0
) -> bytes:
    """PNG of :func:`render_crop`."""
    return encode_png(render_crop(img, name, value, styles, t=t, z=z))
