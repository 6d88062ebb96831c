"""A streaming OME-Zarr (NGFF 0.5, Zarr v3) image writer.

Why our own writer: zarr-python's array creation and async store cost several ms per array,
which dominates ingest of the small images typical of high-content screening (bench/ingest.py
measures it against bioio-ome-zarr's writer). This module writes the same standard layout
directly: ``zarr.json`` documents, one file per chunk, Blosc-zstd compression (a core Zarr v3
codec), and a pyramid computed on the fly while level 0 streams through in bands of rows, so
memory stays bounded whatever the image size. Everything is written under a temporary name and
renamed into place, and the SHA-256 of every file written is returned as a manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHUNK",
    "MAX_TOP_LEVEL",
    "ChannelDisplay",
    "ImageSpec",
    "ManifestEntry",
    "WriteResult",
    "chunk_path",
    "pyramid_shapes",
    "write_image",
]

CHUNK = 1024  # chunk edge (y, x) in px: one chunk holds a 1024² tile, a few per plane
MAX_TOP_LEVEL = 512  # the pyramid goes down until the largest of (y, x) is at most this
_CLEVEL = 1
_SMALL_CHUNK_ELEMENTS = 2**20  # z-stacked chunks of small planes hold up to this many pixels

RowReader = Callable[[int, int, int, int, int], np.ndarray]


@dataclass(frozen=True)
class ChannelDisplay:
    """Name and display colour (``RRGGBB``) of a channel, for the ``omero`` block."""

    label: str
    color: str = "FFFFFF"


@dataclass(frozen=True)
class ImageSpec:
    """What to write: shape ``(t, c, z, y, x)``, dtype, scale (µm, s) and channels."""

    shape: tuple[int, int, int, int, int]
    dtype: str
    name: str = "image"
    physical_size: tuple[float | None, float | None, float | None] = (
        None,
        None,
        None,
    )  # x, y, z µm
    time_increment_s: float | None = None
    channels: tuple[ChannelDisplay, ...] = ()
    chunk: int = CHUNK


@dataclass(frozen=True)
class ManifestEntry:
    """A file of a stored image: path relative to the image root, size in bytes, SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass
class WriteResult:
    """What :func:`write_image` wrote."""

    path: Path
    levels: int
    bytes_written: int
    manifest: list[ManifestEntry] = field(default_factory=list)
    minmax: list[tuple[float, float]] = field(default_factory=list)  # per channel


def chunk_path(level: int, key: Sequence[int]) -> str:
    """Path of a chunk file inside an image: ``<level>/c.<t>.<c>.<z>.<y>.<x>`` (Zarr v3 default
    chunk-key encoding with the "." separator: one folder per level, no nested folders)."""
    return f"{level}/c." + ".".join(map(str, key))


def pyramid_shapes(shape: Sequence[int], max_top: int = MAX_TOP_LEVEL) -> list[tuple[int, ...]]:
    """Shapes of every pyramid level: (y, x) halved (floor) until max(y, x) <= ``max_top``."""
    shapes = [tuple(shape)]
    while True:
        *lead, y, x = shapes[-1]
        if max(y, x) <= max_top or min(y, x) < 2:
            return shapes
        shapes.append((*lead, y // 2, x // 2))


def _zarr_dtype(dtype: np.dtype[Any]) -> str:
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise ValueError(f"dtype {dtype} cannot be stored (expected bool, integer or float)")
    return "bool" if dtype.kind == "b" else dtype.name


def _array_meta(
    shape: tuple[int, ...], chunks: tuple[int, ...], dtype: np.dtype[Any]
) -> dict[str, Any]:
    codecs: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    codecs.append(
        {
            "name": "blosc",
            "configuration": {
                "typesize": dtype.itemsize,
                "cname": "zstd",
                "clevel": _CLEVEL,
                "shuffle": "shuffle" if dtype.itemsize > 1 else "noshuffle",
                "blocksize": 0,
            },
        }
    )
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": _zarr_dtype(dtype),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "."}},
        "fill_value": False if dtype.kind == "b" else (0.0 if dtype.kind == "f" else 0),
        "codecs": codecs,
        "attributes": {},
        "dimension_names": ["t", "c", "z", "y", "x"],
        "storage_transformers": [],
    }


def _multiscales(
    spec: ImageSpec, shapes: list[tuple[int, ...]], dtype: np.dtype[Any]
) -> dict[str, Any]:
    px, py, pz = spec.physical_size
    space_unit = px is not None or py is not None or pz is not None
    axes: list[dict[str, str]] = [
        {"name": "t", "type": "time"},
        {"name": "c", "type": "channel"},
        {"name": "z", "type": "space"},
        {"name": "y", "type": "space"},
        {"name": "x", "type": "space"},
    ]
    if spec.time_increment_s is not None:
        axes[0]["unit"] = "second"
    if space_unit:  # z only when its spacing is known: 1.0 is a placeholder, not a size
        for a, size in zip(axes[2:], (pz, py, px), strict=True):
            if size is not None or a["name"] != "z":
                a["unit"] = "micrometer"
    datasets = []
    for level in range(len(shapes)):
        # every level is a 2x2 reduction of the one above (an odd last row/column is dropped),
        # so its pixel is exactly 2**level level-0 pixels, whatever the shapes' ratio
        f = float(2**level)
        scale = [spec.time_increment_s or 1.0, 1.0, pz or 1.0, (py or 1.0) * f, (px or 1.0) * f]
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [{"type": "scale", "scale": scale}],
            }
        )
    method = "nearest" if dtype.kind == "b" else "local_mean"
    return {
        "name": spec.name,
        "axes": axes,
        "datasets": datasets,
        "type": method,
        "metadata": {
            "description": "each level is the 2x2 mean of the previous one (integers rounded half "
            "up, booleans take the top-left pixel); an odd last row or column is dropped",
            "method": "quantscope.io.write_image",
        },
    }


def _omero(
    spec: ImageSpec, dtype: np.dtype[Any], minmax: list[tuple[float, float]]
) -> dict[str, Any]:
    if dtype.kind in "iu":
        lo, hi = float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)
    elif dtype.kind == "b":
        lo, hi = 0.0, 1.0
    else:
        lo = min((m[0] for m in minmax), default=0.0)
        hi = max((m[1] for m in minmax), default=1.0)
    chans = list(spec.channels) or [ChannelDisplay(f"C{i}") for i in range(spec.shape[1])]
    out = []
    for i, ch in enumerate(chans):
        start, end = minmax[i] if i < len(minmax) else (lo, hi)
        out.append(
            {
                "label": ch.label,
                "color": ch.color,
                "active": True,
                "coefficient": 1.0,
                "family": "linear",
                "inverted": False,
                "window": {"min": lo, "max": hi, "start": float(start), "end": float(end)},
            }
        )
    return {
        "channels": out,
        "rdefs": {"defaultT": 0, "defaultZ": spec.shape[2] // 2, "model": "color"},
    }


def _downsample(rows: np.ndarray) -> np.ndarray:
    """2x2 mean (integers rounded half up) of an even number of rows; odd last column dropped."""
    y, x = rows.shape
    a = rows[: y - y % 2, : x - x % 2]
    if a.dtype.kind == "b":
        return a[0::2, 0::2].copy()
    if a.dtype.kind == "f":
        # sum in float64 (exact for float16/32 inputs), so the mean is rounded once, not thrice
        w = a.astype(np.float64) if a.dtype.itemsize < 8 else a
        return ((w[0::2, 0::2] + w[1::2, 0::2] + w[0::2, 1::2] + w[1::2, 1::2]) * 0.25).astype(
            a.dtype
        )
    if a.dtype.itemsize == 8:
        # no wider type: with v = 4q + r (r in 0..3), round(mean) = sum(q) + (sum(r) + 2) >> 2,
        # and neither sum can overflow
        quads = (a[0::2, 0::2], a[1::2, 0::2], a[0::2, 1::2], a[1::2, 1::2])
        q: Any = sum(v >> 2 for v in quads)
        r: Any = sum(v & 3 for v in quads)
        return np.asarray(q + ((r + 2) >> 2)).astype(a.dtype)
    wide: type[np.integer[Any]]
    if a.dtype.itemsize <= 2:
        wide = np.int32 if a.dtype.kind == "i" else np.uint32
    else:
        wide = np.int64 if a.dtype.kind == "i" else np.uint64
    s: Any = a[0::2, 0::2].astype(wide)
    s += a[1::2, 0::2]
    s += a[0::2, 1::2]
    s += a[1::2, 1::2]
    s += 2
    s >>= 2
    return s.astype(a.dtype)


class _Writer:
    def __init__(
        self,
        root: Path,
        dtype: np.dtype[Any],
        shapes: list[tuple[int, ...]],
        chunk: int,
        executor: Executor | None,
        chunk_z: int = 1,
    ) -> None:
        import numcodecs

        self.root, self.dtype, self.shapes = root, dtype, shapes
        self.chunks = [(1, 1, chunk_z, min(chunk, s[3]), min(chunk, s[4])) for s in shapes]
        self.codec = numcodecs.Blosc(
            cname="zstd",
            clevel=_CLEVEL,
            shuffle=numcodecs.Blosc.SHUFFLE if dtype.itemsize > 1 else numcodecs.Blosc.NOSHUFFLE,
        )
        self.executor = executor
        self.manifest: list[ManifestEntry] = []
        self.bytes = 0
        self._dirs: set[str] = set()
        self._pending: list[Any] = []

    def put_file(self, rel: str, data: bytes) -> None:
        self._record(self._put(rel, data))

    def _put(self, rel: str, data: bytes) -> ManifestEntry:
        """Write one file (any thread); the caller records the returned entry."""
        parent = os.path.dirname(rel)
        if parent not in self._dirs:
            os.makedirs(self.root / parent, exist_ok=True)
            self._dirs.add(parent)
        with open(self.root / rel, "wb") as fh:
            fh.write(data)
        return ManifestEntry(rel, len(data), hashlib.sha256(data).hexdigest())

    def _record(self, entry: ManifestEntry) -> None:
        self.manifest.append(entry)
        self.bytes += entry.size

    def _encode(self, level: int, key: tuple[int, ...], block: np.ndarray) -> tuple[str, bytes]:
        """Encode one chunk: ``block`` is (y, x), or (z, y, x) when chunks span several planes."""
        cz, cy, cx = self.chunks[level][2:]
        want = (cy, cx) if block.ndim == 2 else (cz, cy, cx)
        if block.shape != want:
            full = np.zeros(want, dtype=block.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        data = self.codec.encode(np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<")))
        return chunk_path(level, key), bytes(data)

    def _encode_and_put(self, level: int, key: tuple[int, ...], block: np.ndarray) -> ManifestEntry:
        rel, data = self._encode(level, key, block)
        return self._put(rel, data)

    def write_chunk_row(
        self, level: int, tcz: tuple[int, int, int], yi: int, rows: np.ndarray
    ) -> None:
        cx = self.chunks[level][4]
        jobs = [
            (level, (*tcz, yi, xi), rows[:, xi * cx : (xi + 1) * cx])
            for xi in range(-(-rows.shape[1] // cx))
        ]
        if self.executor is not None and len(jobs) > 1:
            # encode, write and hash in the pool: all three release the GIL
            entries: Iterable[ManifestEntry] = self.executor.map(
                lambda j: self._encode_and_put(*j), jobs
            )
        else:
            entries = (self._encode_and_put(*j) for j in jobs)
        for entry in entries:
            self._record(entry)


class _LevelCascade:
    """Streams the rows of one plane into every pyramid level, writing whole chunk rows."""

    def __init__(self, w: _Writer, tcz: tuple[int, int, int]) -> None:
        self.w, self.tcz = w, tcz
        n = len(w.shapes)
        self.buf: list[list[np.ndarray]] = [[] for _ in range(n)]
        self.buffered = [0] * n
        self.next_chunk = [0] * n
        self.carry: list[np.ndarray | None] = [None] * n  # odd row waiting for its pair

    def push(self, level: int, rows: np.ndarray) -> None:
        if rows.shape[0] == 0:
            return
        self.buf[level].append(rows)
        self.buffered[level] += rows.shape[0]
        cy = self.w.chunks[level][3]
        while self.buffered[level] >= cy:
            self._flush(level, cy)
        if level + 1 < len(self.w.shapes):
            if self.carry[level] is not None:
                rows = np.concatenate([self.carry[level], rows])  # type: ignore[list-item]
                self.carry[level] = None
            if rows.shape[0] % 2:
                self.carry[level] = rows[-1:]
                rows = rows[:-1]
            if rows.shape[0]:
                small = _downsample(rows)
                small = small[:, : self.w.shapes[level + 1][4]]
                self.push(level + 1, small)

    def _flush(self, level: int, n: int) -> None:
        block = np.concatenate(self.buf[level]) if len(self.buf[level]) > 1 else self.buf[level][0]
        out, rest = block[:n], block[n:]
        self.buf[level] = [rest] if rest.shape[0] else []
        self.buffered[level] = rest.shape[0]
        self.w.write_chunk_row(level, self.tcz, self.next_chunk[level], out)
        self.next_chunk[level] += 1

    def finish(self) -> None:
        for level in range(len(self.w.shapes)):
            want = self.w.shapes[level][3]
            written = self.next_chunk[level] * self.w.chunks[level][3]
            if self.buffered[level]:
                n = min(self.buffered[level], want - written)
                if n > 0:
                    self._flush(level, self.buffered[level])


def _write_stacked(
    w: _Writer,
    t: int,
    c: int,
    z_n: int,
    y_n: int,
    chunk_z: int,
    read: Callable[[int, int, int, int], np.ndarray],
) -> None:
    """Write planes that each fit in one chunk, ``chunk_z`` planes per chunk, every level."""
    for zi, z0 in enumerate(range(0, z_n, chunk_z)):
        block = np.stack([read(t, z, 0, y_n) for z in range(z0, min(z0 + chunk_z, z_n))])
        for level, shp in enumerate(w.shapes):
            if level:
                block = np.stack([_downsample(p) for p in block])[:, : shp[3], : shp[4]]
            w._record(w._encode_and_put(level, (t, c, zi, 0, 0), block))


def write_image(
    dest: str | os.PathLike[str],
    read_rows: RowReader,
    spec: ImageSpec,
    *,
    ome_xml: str | None = None,
    executor: Executor | None = None,
    band_rows: int | None = None,
) -> WriteResult:
    """Write one image as an NGFF 0.5 multiscale at ``dest`` (which must not exist).

    Parameters
    ----------
    dest
        Folder of the image (``…/<id>.ome.zarr`` or a field of a plate).
    read_rows
        ``read_rows(t, c, z, y0, y1)`` returns rows ``y0:y1`` of a plane as a 2-D array.
    spec
        Shape, dtype, scale and channel display of the image.
    ome_xml
        OME-XML kept beside the pixels as ``OME/METADATA.ome.xml`` (as bioformats2raw does).
    executor
        Encodes the chunks of a row of chunks in parallel when given.
    band_rows
        Rows read per call (default: one chunk row). Memory use is about
        ``band_rows * x * itemsize`` times a small constant, whatever the image size.

    Returns
    -------
    WriteResult
        Levels written, bytes, and the manifest (path, size, SHA-256) of every file.
    """
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    dtype = np.dtype(spec.dtype)
    shapes = pyramid_shapes(spec.shape)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:12]}"
    # parent folders created here are removed again if the write fails
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    tmp.mkdir(parents=True)
    try:
        t_n, c_n, z_n, y_n, x_n = spec.shape
        # planes that fit in one chunk are grouped along z, so a stack of small planes (a line
        # scan, a thumbnail series) becomes a few chunk files rather than one tiny file per plane
        small = y_n <= spec.chunk and x_n <= spec.chunk
        chunk_z = min(z_n, max(1, _SMALL_CHUNK_ELEMENTS // max(1, y_n * x_n))) if small else 1
        w = _Writer(tmp, dtype, shapes, spec.chunk, executor, chunk_z)
        for level, shp in enumerate(shapes):
            meta = _array_meta(shp, w.chunks[level], dtype)
            w.put_file(f"{level}/zarr.json", json.dumps(meta).encode())
        step = band_rows or w.chunks[0][3]
        minmax: list[tuple[float, float]] = []
        for c in range(c_n):
            lo, hi = np.inf, -np.inf

            def read(t: int, z: int, y0: int, y1: int, c: int = c) -> np.ndarray:
                nonlocal lo, hi
                rows = read_rows(t, c, z, y0, y1)
                if rows.dtype != dtype:
                    rows = rows.astype(dtype)
                # display range from finite values only: one NaN must not hide the rest
                vals = rows[np.isfinite(rows)] if dtype.kind == "f" else rows
                if vals.size:
                    lo = min(lo, float(vals.min()))
                    hi = max(hi, float(vals.max()))
                return rows

            for t in range(t_n):
                if chunk_z > 1:
                    _write_stacked(w, t, c, z_n, y_n, chunk_z, read)
                    continue
                for z in range(z_n):
                    cascade = _LevelCascade(w, (t, c, z))
                    for y0 in range(0, y_n, step):
                        cascade.push(0, read(t, z, y0, min(y0 + step, y_n)))
                    cascade.finish()
            minmax.append((lo if np.isfinite(lo) else 0.0, hi if np.isfinite(hi) else 0.0))
        attrs = {
            "ome": {
                "version": "0.5",
                "multiscales": [_multiscales(spec, shapes, dtype)],
                "omero": _omero(spec, dtype, minmax),
            }
        }
        group = {"zarr_format": 3, "node_type": "group", "attributes": attrs}
        if ome_xml is not None:
            w.put_file("OME/METADATA.ome.xml", ome_xml.encode("utf-8"))
            ome_group = {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {"ome": {"version": "0.5", "series": ["."]}},
            }
            w.put_file("OME/zarr.json", json.dumps(ome_group).encode())
        w.put_file("zarr.json", json.dumps(group).encode())
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # innermost first; stop at the first one something else filled
            try:
                p.rmdir()
            except OSError:
                break
        raise
    return WriteResult(dest, len(shapes), w.bytes, w.manifest, minmax)
