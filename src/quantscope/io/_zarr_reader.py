"""Read planes of OME-Zarr images that use plain Zarr v3 layouts, without zarr-python.

Quality control reads back every image right after ingest. zarr-python spends ~4 ms opening a
group and reading one small plane (async machinery, codec pipeline set-up); reading the chunk
files and decoding them with numcodecs takes under 1 ms (bench/qc.py). This reader handles the
layouts quantscope writes — regular chunk grid, default chunk keys ("/" or "." separator),
``bytes`` then an optional ``blosc``, ``zstd`` or ``gzip`` codec — and says so
(:class:`UnsupportedLayout`) for anything else, so callers fall back to zarr-python.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, NotFound

__all__ = ["OmeZarrPlanes", "UnsupportedLayout"]


class UnsupportedLayout(InvalidInput):
    """The store uses a Zarr feature this reader does not implement (sharding, v2, …)."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as e:
        raise NotFound(f"{path}: not found") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path}: not valid JSON ({e})") from e


class _Array:
    def __init__(self, root: Path) -> None:
        meta = _read_json(root / "zarr.json")
        if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
            raise UnsupportedLayout(f"{root}: not a Zarr v3 array")
        grid = meta.get("chunk_grid", {})
        keys = meta.get("chunk_key_encoding", {})
        if grid.get("name") != "regular" or keys.get("name") != "default":
            raise UnsupportedLayout(f"{root}: chunk grid or key encoding not supported")
        self.root = root
        self.shape = tuple(int(n) for n in meta["shape"])
        self.chunks = tuple(int(n) for n in grid["configuration"]["chunk_shape"])
        self.sep = keys.get("configuration", {}).get("separator", "/")
        codecs = list(meta.get("codecs", []))
        if not codecs or codecs[0].get("name") != "bytes" or len(codecs) > 2:
            raise UnsupportedLayout(f"{root}: codec pipeline {codecs} not supported")
        endian = codecs[0].get("configuration", {}).get("endian", "little")
        dtype = np.dtype(meta["data_type"])
        self.dtype = dtype.newbyteorder("<" if endian == "little" else ">")
        self.fill = meta.get("fill_value", 0)
        self.decoder = _decoder(codecs[1]) if len(codecs) == 2 else None

    def chunk(self, key: tuple[int, ...]) -> np.ndarray | None:
        path = self.root / ("c" + self.sep + self.sep.join(map(str, key)))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        raw = self.decoder(data) if self.decoder is not None else data
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.chunks)

    def window(
        self, t: int, c: int, z: int, ys: tuple[int, int], xs: tuple[int, int], cache: Any = None
    ) -> np.ndarray:
        """Plane window ``[t, c, z, y0:y1, x0:x1]`` (bounds already clipped to the shape);
        ``cache``: a mapping-like with ``get(key)``/``put(key, block)`` of decoded chunks."""
        _, _, cz, cy, cx = self.chunks
        (y0, y1), (x0, x1) = ys, xs
        out = np.full((y1 - y0, x1 - x0), self.fill, dtype=self.dtype.newbyteorder("="))
        for yi in range(y0 // cy, -(-y1 // cy)):
            for xi in range(x0 // cx, -(-x1 // cx)):
                key = (t // self.chunks[0], c // self.chunks[1], z // cz, yi, xi)
                block = cache.get((self.root, key)) if cache is not None else None
                if block is None:
                    block = self.chunk(key)
                    if block is None:
                        continue
                    if cache is not None:
                        cache.put((self.root, key), block)
                b = block[t % self.chunks[0], c % self.chunks[1], z % cz]
                ly0, ly1 = max(y0, yi * cy), min(y1, (yi + 1) * cy)
                lx0, lx1 = max(x0, xi * cx), min(x1, (xi + 1) * cx)
                out[ly0 - y0 : ly1 - y0, lx0 - x0 : lx1 - x0] = b[
                    ly0 - yi * cy : ly1 - yi * cy, lx0 - xi * cx : lx1 - xi * cx
                ]
        return out

    def region(self, t: int, c: int, z: slice) -> np.ndarray:
        """Array ``[t, c, z, :, :]`` assembled from its chunks (missing chunks = fill value)."""
        _, _, nz, ny, nx = self.shape
        _, _, cz, cy, cx = self.chunks
        z0, z1, _ = z.indices(nz)
        out = np.full((z1 - z0, ny, nx), self.fill, dtype=self.dtype.newbyteorder("="))
        for zi in range(z0 // cz, -(-z1 // cz)):
            for yi in range(-(-ny // cy)):
                for xi in range(-(-nx // cx)):
                    block = self.chunk((t // self.chunks[0], c // self.chunks[1], zi, yi, xi))
                    if block is None:
                        continue
                    b = block[t % self.chunks[0], c % self.chunks[1]]
                    lo, hi = max(z0, zi * cz), min(z1, (zi + 1) * cz)
                    y0, x0 = yi * cy, xi * cx
                    h, w = min(cy, ny - y0), min(cx, nx - x0)
                    out[lo - z0 : hi - z0, y0 : y0 + h, x0 : x0 + w] = b[
                        lo - zi * cz : hi - zi * cz, :h, :w
                    ]
        return out


def _decoder(codec: dict[str, Any]) -> Any:
    import numcodecs

    name = codec.get("name")
    if name == "blosc":
        return numcodecs.Blosc().decode
    if name == "zstd":
        return numcodecs.Zstd().decode
    if name == "gzip":
        return numcodecs.GZip().decode
    raise UnsupportedLayout(f"codec {name!r} not supported")


class OmeZarrPlanes:
    """Planes of an NGFF multiscale image with ``(t, c, z, y, x)`` axes.

    Raises
    ------
    NotFound
        The image folder or a ``zarr.json`` is missing.
    UnsupportedLayout
        The store uses other axes or Zarr features: read it with zarr-python instead.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        attrs = _read_json(self.path / "zarr.json").get("attributes", {})
        try:
            ms = attrs["ome"]["multiscales"][0]
            axes = [a["name"] for a in ms["axes"]]
            self.paths = [str(d["path"]) for d in ms["datasets"]]
        except (KeyError, IndexError, TypeError) as e:
            raise InvalidInput(f"{self.path}: not an OME-Zarr multiscale image ({e!r})") from e
        if axes != ["t", "c", "z", "y", "x"]:
            raise UnsupportedLayout(f"{self.path}: axes {axes} (expected t, c, z, y, x)")
        self._arrays = [_Array(self.path / p) for p in self.paths]
        self.shapes = [a.shape for a in self._arrays]

    def plane(self, level: int, c: int, z: int, t: int = 0) -> np.ndarray:
        """Plane ``(y, x)`` of channel ``c``, z ``z``, time ``t`` at pyramid ``level``."""
        return self._arrays[level].region(t, c, slice(z, z + 1))[0]

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
        """The ``(y, x)`` window ``[y0:y1, x0:x1]`` of one plane at pyramid ``level``, reading
        only the chunks it touches (bounds clipped to the plane). ``cache``: an object with
        ``get(key)`` and ``put(key, block)`` keeping decoded chunks between calls (a server's
        tiles share chunks)."""
        arr = self._arrays[level]
        ny, nx = arr.shape[3], arr.shape[4]
        y0, y1 = max(0, ys[0]), min(ny, ys[1])
        x0, x1 = max(0, xs[0]), min(nx, xs[1])
        return arr.window(t, c, z, (y0, max(y0, y1)), (x0, max(x0, x1)), cache)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The pixel type (native byte order)."""
        return self._arrays[0].dtype.newbyteorder("=")

    def stack(self, level: int, c: int, t: int = 0) -> np.ndarray:
        """The ``(z, y, x)`` stack of channel ``c`` at time ``t``."""
        return self._arrays[level].region(t, c, slice(None))
