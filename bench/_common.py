"""Helpers shared by the benchmarks in ``bench/``: timing, subprocesses, synthetic images, tables.

Nothing here imports quantscope, so the helpers measure the same way for quantscope and its peers.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MB = 1e6  # MB/s figures are decimal megabytes of uncompressed pixels per second
GIB = 2**30

# --------------------------------------------------------------------------------- environment


def venv_bin(name: str) -> str:
    """Path of a console script installed beside the running interpreter (``.venv/bin/name``)."""
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name}: not found beside {sys.executable} nor on PATH")
    return found


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def machine() -> dict[str, Any]:
    import platform

    import psutil

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / GIB, 1),
        "platform": platform.platform(terse=True),
    }


# -------------------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Wall times (s) of repeated runs of one measurement."""

    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_s": round(self.median, 4),
            "best_s": round(self.best, 4),
            "runs_s": [round(s, 4) for s in self.seconds],
        }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_cmd(
    cmd: Sequence[str], *, check: bool = True, env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command, return (wall seconds, completed process)."""
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, check=False)
    dt = time.perf_counter() - t0
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return dt, proc


# Runs a command as this wrapper's only child; afterwards RUSAGE_CHILDREN holds exactly that
# child's peak RSS (ru_maxrss, KiB on Linux) and CPU times.
_RUSAGE_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
dt = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "wall_s": dt, "maxrss_kib": ru.ru_maxrss,
                  "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
                  "stdout": p.stdout[-1_000_000:], "stderr": p.stderr[-4000:]}))
"""


def run_with_peak_rss(cmd: Sequence[str], poll_s: float = 0.05) -> dict[str, Any]:
    """Run ``cmd`` and measure its peak RSS two ways.

    Exact: ``ru_maxrss`` of the command, read by a wrapper process whose only child it is.
    Sampled: psutil polls the command's RSS every ``poll_s`` seconds (a cross-check, and the
    only figure available while it runs).
    """
    import psutil

    wrapper = subprocess.Popen(
        [sys.executable, "-c", _RUSAGE_WRAPPER, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    me = psutil.Process(wrapper.pid)
    sampled = 0
    samples = 0
    while wrapper.poll() is None:
        try:
            for child in me.children(recursive=True):
                try:
                    sampled = max(sampled, child.memory_info().rss)
                    samples += 1
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        time.sleep(poll_s)
    out, err = wrapper.communicate()
    if wrapper.returncode != 0 or not out.strip():
        raise RuntimeError(f"rusage wrapper failed ({wrapper.returncode}): {err[-2000:]}")
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    res["peak_rss_bytes"] = int(res["maxrss_kib"]) * 1024
    res["sampled_peak_rss_bytes"] = sampled
    res["samples"] = samples
    return res


# Lists which heavy libraries a command imported: runs the CLI's main() in-process, then reports.
_MODULES_PROBE = r"""
import json, sys
heavy = ["numpy", "sqlalchemy", "alembic", "pydantic", "ome_types", "rich", "typer", "tifffile",
         "zarr", "numcodecs", "dask", "bioio", "bioio_base", "scipy", "skimage", "xarray", "pandas"]
sys.argv = ["quantscope", *sys.argv[1:]]
from quantscope.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("MODULES " + json.dumps([m for m in heavy if m in sys.modules]) + "\n")
"""


def imported_heavy_modules(args: Sequence[str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _MODULES_PROBE, *args], capture_output=True, text=True, check=False
    )
    for line in proc.stderr.splitlines():
        if line.startswith("MODULES "):
            return list(json.loads(line[len("MODULES ") :]))
    return ["?"]


# ------------------------------------------------------------------------------ synthetic images


def coarse_field(shape: tuple[int, int], factor: int, seed: int) -> np.ndarray:
    """Blob field (0..1, nuclei-like) on a grid ``factor`` times coarser than ``shape``.

    Gaussian-filtered white noise pushed through a soft threshold: smooth round blobs of a
    few tens of pixels once interpolated to full size. One extra row and column so tiles can
    interpolate across their right and bottom edges.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    cy, cx = -(-shape[0] // factor) + 1, -(-shape[1] // factor) + 1
    noise = rng.standard_normal((cy, cx), dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma=1.5, mode="wrap")
    smooth /= smooth.std()
    background = ndimage.gaussian_filter(rng.standard_normal((cy, cx), dtype=np.float32), 12.0)
    background /= background.std() or 1.0
    blobs = 1.0 / (1.0 + np.exp(-(smooth - 1.2) * 5.0))
    return np.clip(0.85 * blobs + 0.05 * (background + 2.0), 0.0, 1.0).astype(np.float32)


def render_tile(
    field: np.ndarray, factor: int, y0: int, x0: int, h: int, w: int, seed: int
) -> np.ndarray:
    """Pixels ``[y0:y0+h, x0:x0+w]`` of the full-size image as uint16 (0..~4000 + noise).

    Bilinear interpolation of ``field`` (seamless across tiles), scaled to 150..4000 counts,
    plus Poisson-like noise (normal with variance = signal) drawn from a per-tile seed, so the
    same tile always has the same bytes.
    """
    ys = (np.arange(y0, y0 + h, dtype=np.float32) + 0.5) / factor - 0.5
    xs = (np.arange(x0, x0 + w, dtype=np.float32) + 0.5) / factor - 0.5
    ys = np.clip(ys, 0, field.shape[0] - 1.001)
    xs = np.clip(xs, 0, field.shape[1] - 1.001)
    iy, ix = ys.astype(np.intp), xs.astype(np.intp)
    wy = (ys - iy).astype(np.float32)[:, None]
    wx = (xs - ix).astype(np.float32)[None, :]
    y_lo, x_lo = int(iy[0]), int(ix[0])
    block = field[y_lo : int(iy[-1]) + 2, x_lo : int(ix[-1]) + 2]  # the coarse cells this tile uses
    iy, ix = iy - y_lo, ix - x_lo
    rows = block[iy] * (1 - wy) + block[iy + 1] * wy  # (h, coarse x)
    img = rows[:, ix] * (1 - wx) + rows[:, ix + 1] * wx
    signal = np.float32(150.0) + np.float32(3850.0) * img
    noise = np.random.default_rng(seed).standard_normal(signal.shape, dtype=np.float32)
    noise *= np.sqrt(signal)
    noise += signal
    np.clip(noise, 0, 65535, out=noise)
    return noise.astype(np.uint16)


def image_tiles(
    shape: tuple[int, int], tile: int, seed: int, factor: int = 8
) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """(coarse field, iterator of tiles in row-major order) of a synthetic image."""
    field = coarse_field(shape, factor, seed)
    ny, nx = -(-shape[0] // tile), -(-shape[1] // tile)

    def gen() -> Iterator[np.ndarray]:
        for ty in range(ny):
            for tx in range(nx):
                h = min(tile, shape[0] - ty * tile)
                w = min(tile, shape[1] - tx * tile)
                t = render_tile(
                    field, factor, ty * tile, tx * tile, h, w, seed * 1_000_003 + ty * nx + tx
                )
                if (h, w) != (tile, tile):  # tifffile wants whole tiles
                    full = np.zeros((tile, tile), np.uint16)
                    full[:h, :w] = t
                    t = full
                yield t

    return field, gen()


def write_tiled_tiff(path: Path, shape: tuple[int, int], tile: int, seed: int) -> None:
    """Write a synthetic uint16 image as an uncompressed tiled (Big)TIFF, one tile at a time,
    so the writer never holds more than a tile."""
    import tifffile

    _, tiles = image_tiles(shape, tile, seed)
    tmp = path.with_name(path.name + ".tmp")
    tifffile.imwrite(
        tmp,
        tiles,
        shape=shape,
        dtype=np.uint16,
        tile=(tile, tile),
        bigtiff=True,
        photometric="minisblack",
        compression=None,
        metadata=None,
    )
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------ pyramids


def pyramid_shapes(y: int, x: int, max_top: int = 512) -> list[tuple[int, int]]:
    """(y, x) of each level: halved (floor) until max(y, x) <= max_top — quantscope's rule."""
    shapes = [(y, x)]
    while max(shapes[-1]) > max_top and min(shapes[-1]) >= 2:
        yy, xx = shapes[-1]
        shapes.append((yy // 2, xx // 2))
    return shapes


def downsample2(a: np.ndarray) -> np.ndarray:
    """2x2 mean, rounded half up, of a 2-D unsigned array (what quantscope's writer computes)."""
    y, x = a.shape
    a = a[: y - y % 2, : x - x % 2]
    s = a[0::2, 0::2].astype(np.uint32)
    s += a[1::2, 0::2]
    s += a[0::2, 1::2]
    s += a[1::2, 1::2]
    s += 2
    s >>= 2
    return s.astype(a.dtype)


def zarr_levels(root: Path) -> list[dict[str, Any]]:
    """shape, chunk shape and codecs of each level array of an OME-Zarr image group (v3)."""
    group = json.loads((root / "zarr.json").read_text())
    ms = group["attributes"]["ome"]["multiscales"][0]
    out = []
    for ds in ms["datasets"]:
        meta = json.loads((root / ds["path"] / "zarr.json").read_text())
        codecs = []
        for c in meta["codecs"]:
            conf = dict(c.get("configuration") or {})
            codecs.append({"name": c["name"], **conf})
        out.append(
            {
                "path": ds["path"],
                "shape": meta["shape"],
                "chunks": meta["chunk_grid"]["configuration"]["chunk_shape"],
                "codecs": codecs,
            }
        )
    return out


def tree_bytes(root: Path) -> tuple[int, int]:
    """(bytes, files) under a folder."""
    total = files = 0
    for dirpath, _, filenames in os.walk(root):
        for fn in filenames:
            total += os.path.getsize(os.path.join(dirpath, fn))
            files += 1
    return total, files


# --------------------------------------------------------------------------------------- output


def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[fmt(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        lines.append(
            "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def say(msg: str = "") -> None:
    print(msg, flush=True)
