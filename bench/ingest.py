"""Ingest throughput, memory and start-up of quantscope, against bioio + bioio-ome-zarr.

Run from the repository root::

    .venv/bin/python bench/ingest.py            # full run (~3 min on 2 cores)
    .venv/bin/python bench/ingest.py --quick    # no 2 GiB image, fewer repetitions (~1 min)
    .venv/bin/python bench/ingest.py --profile bbbc   # cProfile of quantscope ingest, jobs=1

What it measures, in one run on the same files (see bench/README.md):

1. BBBC039: the 40 ImageXpress TIFFs (520x696 uint16) of ``../shared/data/bbbc039_nuclei_subset``.
   quantscope: ``Repository.init`` then ``quantscope.ingestion.ingest(repo, [folder], jobs=J,
   qc=False)`` (quality control off: the peer measures no image quality)
   (J = 1, 2), wall time of the ingest call only. Peer: for each file ``bioio.BioImage(path,
   reader=bioio_tifffile.Reader).get_image_data("TCZYX")`` then
   ``bioio_ome_zarr.writers.OMEZarrWriter(...).write_full_volume(data)`` with the same level
   shapes, the same chunk shapes and the same codec (Blosc zstd clevel 1 byte-shuffle). Also
   the whole ``quantscope ingest`` process.
2. A generated 8192x8192 uint16 image (blobs + Poisson-like noise, tiled uncompressed TIFF):
   the same two, plus a "limit": tifffile read + 2x2-mean pyramid + Blosc-zstd encoding of every
   chunk of every level + one file per chunk, in plain numpy/numcodecs.
3. (full run only) A generated 32768x32768 uint16 image (2 GiB, tiled TIFF written tile by
   tile): ``quantscope ingest`` in a subprocess, its peak RSS (``ru_maxrss``) / image bytes.
4. Start-up: ``quantscope --help``, ``quantscope ls REPO`` (40 images) and ``import
   quantscope.cli``, each the median of 5 processes.

MB/s is decimal megabytes of uncompressed pixels per second of wall time. Figures and ratios
are printed (no pass/fail), then a table, then one ``BENCH_JSON {...}`` line with everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    GIB,
    MB,
    Timing,
    downsample2,
    fmt,
    free_bytes,
    imported_heavy_modules,
    machine,
    pyramid_shapes,
    run_cmd,
    run_with_peak_rss,
    say,
    table,
    tree_bytes,
    venv_bin,
    write_tiled_tiff,
    zarr_levels,
)

ROOT = Path(__file__).resolve().parent.parent
BBBC = (ROOT / ".." / "shared" / "data" / "bbbc039_nuclei_subset" / "images").resolve()
CHUNK = 1024  # quantscope's chunk edge; the peer and the limit use the same
BIG_EDGE = 32768  # 32768^2 uint16 = 2 GiB
MID_EDGE = 8192

TARGETS = {
    "bbbc_ratio": 5.0,
    "k8_ratio": 1.5,
    "rss_fraction": 0.25,
    "startup_s": 1.0,
}


# ------------------------------------------------------------------------------ quantscope side


def qs_ingest(paths: list[Path], repo_dir: Path, jobs: int) -> tuple[float, Any]:
    """Ingest into a fresh repository; returns (seconds of the ingest call, report)."""
    from quantscope.catalog import Repository
    from quantscope.ingestion import ingest

    repo = Repository.init(repo_dir)
    try:
        t0 = time.perf_counter()
        # QC off: the peer only converts, so the comparison stays apples to apples
        report = ingest(repo, [str(p) for p in paths], jobs=jobs, qc=False)
        dt = time.perf_counter() - t0
    finally:
        repo.close()
    if not report.ok:
        raise RuntimeError(f"quantscope ingest failed: {report.failed[:3]}")
    return dt, report


def qs_cli_ingest(paths: list[Path], repo_dir: Path, jobs: int) -> dict[str, Any]:
    """``quantscope init`` (not timed) then ``quantscope ingest --json`` as a process: wall
    time, peak RSS and the seconds the ingest itself reported."""
    run_cmd([venv_bin("quantscope"), "init", str(repo_dir)])
    res = run_with_peak_rss(
        [
            venv_bin("quantscope"),
            "ingest",
            str(repo_dir),
            *map(str, paths),
            "--json",
            "--no-qc",
            "-j",
            str(jobs),
        ]
    )
    if res["rc"] != 0:
        raise RuntimeError(f"quantscope ingest exited {res['rc']}: {res['stderr'][-1500:]}")
    try:
        doc = json.loads(res["stdout"][res["stdout"].index("{") :])
        res["ingest_seconds"] = float(doc["seconds"])
        res["added"] = len(doc["added"])
    except (ValueError, KeyError):  # --json output longer than the captured tail
        res["ingest_seconds"] = None
        res["added"] = None
    return res


class InlineExecutor(Executor):
    """Runs submitted work at once in the calling thread (for profiling: cProfile sees only
    the thread it runs in, and quantscope's ingest works in a thread pool even with jobs=1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:
            fut.set_exception(e)
        return fut


# ------------------------------------------------------------------------------------ peer side


def peer_compressor(itemsize: int) -> Any:
    """The codec quantscope writes, as zarr-python's v3 codec: Blosc zstd clevel 1 shuffle."""
    from zarr.codecs import BloscCodec, BloscShuffle

    return BloscCodec(
        cname="zstd",
        clevel=1,
        shuffle=BloscShuffle.shuffle if itemsize > 1 else BloscShuffle.noshuffle,
        typesize=itemsize,
        blocksize=0,
    )


def peer_write(path: Path, out: Path) -> int:
    """bioio read + bioio-ome-zarr OMEZarrWriter with quantscope's pyramid, chunks and codec.

    Returns the uncompressed bytes of level 0.
    """
    import bioio
    import bioio_tifffile
    from bioio_ome_zarr.writers import OMEZarrWriter

    img = bioio.BioImage(path, reader=bioio_tifffile.Reader)
    data = img.get_image_data("TCZYX")
    t, c, z, y, x = data.shape
    shapes = [(t, c, z, yy, xx) for yy, xx in pyramid_shapes(y, x)]
    chunks = [(1, 1, 1, min(CHUNK, s[3]), min(CHUNK, s[4])) for s in shapes]
    writer = OMEZarrWriter(
        str(out),
        level_shapes=shapes,
        dtype=data.dtype,
        chunk_shape=chunks,
        compressor=peer_compressor(data.dtype.itemsize),
        zarr_format=3,
        image_name=path.stem,
        axes_names=["t", "c", "z", "y", "x"],
    )
    writer.write_full_volume(data)
    return int(data.nbytes)


_PEER_PROCESS = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from ingest import peer_folder
src = Path(sys.argv[1])
peer_folder(sorted(p for p in src.iterdir() if p.suffix.lower() in (".tif", ".tiff")),
            Path(sys.argv[2]))
"""


def peer_folder(files: list[Path], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        peer_write(f, out / f"{i:03d}_{f.stem}.ome.zarr")
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------- the limit


def limit_write(tif: Path, out: Path, threads: int) -> dict[str, float]:
    """Read the TIFF, build the 2x2-mean pyramid, Blosc-zstd every 1024^2 chunk of every level,
    write one file per chunk. ``threads`` > 1 encodes and writes the chunks in a thread pool.

    Returns the total seconds and, for threads == 1, the seconds of each phase.
    """
    import numcodecs
    import tifffile
    from numcodecs import blosc

    codec = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
    # numcodecs runs Blosc's own threads only when called from the main thread (use_threads
    # None); the 1-thread limit turns them off so it really uses one core.
    saved_use_threads = blosc.use_threads
    blosc.use_threads = False if threads == 1 else saved_use_threads
    phase = {"read": 0.0, "downsample": 0.0, "encode": 0.0, "write": 0.0}
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    level = tifffile.imread(tif)
    phase["read"] = time.perf_counter() - t0
    shapes = pyramid_shapes(*level.shape)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    made: set[Path] = set()

    def put(li: int, yi: int, xi: int, block: np.ndarray) -> tuple[float, float]:
        t1 = time.perf_counter()
        data = codec.encode(np.ascontiguousarray(block))
        t2 = time.perf_counter()
        d = out / str(li) / "c" / "0" / "0" / "0" / str(yi)
        if d not in made:
            d.mkdir(parents=True, exist_ok=True)
            made.add(d)
        with open(d / str(xi), "wb") as fh:
            fh.write(data)
        return t2 - t1, time.perf_counter() - t2

    try:
        for li, (yy, xx) in enumerate(shapes):
            if li:
                t0 = time.perf_counter()
                level = downsample2(level)[:yy, :xx]
                phase["downsample"] += time.perf_counter() - t0
            (out / str(li)).mkdir(parents=True, exist_ok=True)
            (out / str(li) / "zarr.json").write_text(json.dumps({"shape": [1, 1, 1, yy, xx]}))
            cy, cx = min(CHUNK, yy), min(CHUNK, xx)
            jobs = []
            for yi in range(-(-yy // cy)):
                for xi in range(-(-xx // cx)):
                    block = level[yi * cy : (yi + 1) * cy, xi * cx : (xi + 1) * cx]
                    if block.shape != (cy, cx):
                        full = np.zeros((cy, cx), level.dtype)
                        full[: block.shape[0], : block.shape[1]] = block
                        block = full
                    jobs.append((li, yi, xi, block))
            results = pool.map(lambda j: put(*j), jobs) if pool else (put(*j) for j in jobs)
            for enc, wr in results:
                phase["encode"] += enc
                phase["write"] += wr
    finally:
        blosc.use_threads = saved_use_threads
        if pool:
            pool.shutdown()
    phase["total"] = time.perf_counter() - t_all
    if threads > 1:  # per-phase sums overlap across threads: only the total is meaningful
        phase = {"total": phase["total"], "read": phase["read"], "downsample": phase["downsample"]}
    return phase


def extra_work(tif: Path, out: Path) -> dict[str, float]:
    """Work quantscope does beyond the limit, timed alone: SHA-256 of the source file, and
    SHA-256 of every chunk file written (its manifest)."""
    import hashlib

    t0 = time.perf_counter()
    with open(tif, "rb") as fh:
        hashlib.file_digest(fh, "sha256")
    src = time.perf_counter() - t0
    t0 = time.perf_counter()
    for dirpath, _, files in os.walk(out):
        for fn in files:
            with open(os.path.join(dirpath, fn), "rb") as fh:
                hashlib.sha256(fh.read()).hexdigest()
    return {"sha256_source_s": src, "sha256_chunks_s": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------- checks


def same_layout(a: Path, b: Path) -> tuple[bool, str]:
    """Compare level shapes, chunk shapes and codecs of two OME-Zarr images."""
    la, lb = zarr_levels(a), zarr_levels(b)
    if len(la) != len(lb):
        return False, f"{len(la)} vs {len(lb)} levels"
    for x, y in zip(la, lb, strict=True):
        for key in ("shape", "chunks", "codecs"):
            if x[key] != y[key]:
                return False, f"level {x['path']} {key}: {x[key]} vs {y[key]}"
    codec = la[0]["codecs"][-1]
    return True, (
        f"{len(la)} levels {[lv['shape'][3:] for lv in la]}, chunks {la[0]['chunks'][3:]}, "
        f"{codec['name']} {codec.get('cname')} clevel {codec.get('clevel')} {codec.get('shuffle')}"
    )


def level0_equals(image_root: Path, expected: np.ndarray) -> bool:
    import zarr

    arr = zarr.open_array(str(image_root / "0"), mode="r")
    return bool(np.array_equal(np.asarray(arr[0, 0, 0]), expected))


def rm(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------- benchmarks


def bench_bbbc(work: Path, reps: int) -> dict[str, Any]:
    import tifffile

    files = sorted(p for p in BBBC.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not files:
        raise SystemExit(f"no TIFFs in {BBBC}")
    pixel_bytes = 0
    for f in files:
        with tifffile.TiffFile(f) as tf:
            s = tf.series[0]
            pixel_bytes += int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize
    n = len(files)
    say(
        f"\n== BBBC039: {n} files in {BBBC} ({pixel_bytes / MB:.1f} MB of pixels, "
        f"{files[0].stat().st_size / 1e3:.0f} kB each)"
    )

    # warm-up: lazy imports and first-call costs of both sides, untimed for the comparison
    t_qs_cold, _ = qs_ingest(files[:4], work / "warm_qs", 1)
    t_peer_cold = peer_folder(files[:4], work / "warm_peer")
    say(
        f"warm-up (4 files, first call in process, lazy imports included): quantscope "
        f"{t_qs_cold:.2f} s, peer {t_peer_cold:.2f} s"
    )
    rm(work / "warm_qs")
    rm(work / "warm_peer")

    times: dict[str, list[float]] = {"qs_j1": [], "qs_j2": [], "peer": []}
    for r in range(reps):  # interleaved so drift hits every side alike
        for j in (1, 2):
            dt, rep = qs_ingest([BBBC], work / f"qs_j{j}_{r}", j)
            assert len(rep.added) == n, f"expected {n} images, got {len(rep.added)}"
            times[f"qs_j{j}"].append(dt)
        times["peer"].append(peer_folder(files, work / f"peer_{r}"))
        say(
            f"rep {r + 1}/{reps}: quantscope j1 {times['qs_j1'][-1]:.3f} s, "
            f"j2 {times['qs_j2'][-1]:.3f} s, peer {times['peer'][-1]:.3f} s"
        )

    # sanity: same pixels, same layout, on one image; stored sizes of the whole set
    from quantscope.catalog import Repository

    with Repository.open(work / "qs_j1_0") as repo:
        img = next(i for i in repo.images.all() if Path(i.sources[0].path).name == files[0].name)
        qs_root = repo.root / img.store_path
        expected = tifffile.imread(files[0])
        peer_root = work / "peer_0" / f"000_{files[0].stem}.ome.zarr"
        layout_ok, layout = same_layout(qs_root, peer_root)
        qs_ok = level0_equals(qs_root, expected)
        peer_ok = level0_equals(peer_root, expected)
        qs_stored, qs_files = tree_bytes(repo.root / "plates")
    peer_stored, peer_files = tree_bytes(work / "peer_0")
    say(
        f"check {files[0].name}: quantscope level 0 == TIFF: {qs_ok}; peer level 0 == TIFF: "
        f"{peer_ok}; same layout: {layout_ok} ({layout})"
    )
    say(
        f"stored: quantscope {qs_stored / MB:.1f} MB in {qs_files} files (plate + catalog "
        f"manifest), peer {peer_stored / MB:.1f} MB in {peer_files} files"
    )
    for r in range(reps):
        for name in (f"qs_j1_{r}", f"qs_j2_{r}", f"peer_{r}"):
            rm(work / name)

    # the whole process, cold: start-up + imports + ingest
    cli = {}
    for j in (1, 2):
        res = qs_cli_ingest([BBBC], work / f"cli_j{j}", j)
        cli[f"j{j}"] = {
            "wall_s": res["wall_s"],
            "ingest_s": res["ingest_seconds"],
            "mb_s": pixel_bytes / MB / res["wall_s"],
            "peak_rss_mb": res["peak_rss_bytes"] / MB,
            "cpu_s": res["user_s"] + res["sys_s"],
        }
        say(
            f"`quantscope ingest -j {j}` process: {res['wall_s']:.2f} s wall "
            f"({pixel_bytes / MB / res['wall_s']:.1f} MB/s), ingest itself "
            f"{fmt(res['ingest_seconds'], 2)} s, peak RSS {res['peak_rss_bytes'] / MB:.0f} MB"
        )
    rm(work / "cli_j1")  # cli_j2 (40 images) stays for the `quantscope ls` start-up figure
    # the peer as a whole process too (imports included), for the like-for-like CLI ratio
    res = run_with_peak_rss(
        [sys.executable, "-c", _PEER_PROCESS, str(BBBC), str(work / "peer_cli")]
    )
    if res["rc"] != 0:
        raise RuntimeError(f"peer process exited {res['rc']}: {res['stderr'][-1500:]}")
    rm(work / "peer_cli")
    cli["peer"] = {
        "wall_s": res["wall_s"],
        "mb_s": pixel_bytes / MB / res["wall_s"],
        "peak_rss_mb": res["peak_rss_bytes"] / MB,
        "cpu_s": res["user_s"] + res["sys_s"],
    }
    say(
        f"peer as a process (python -c: imports + the 40 files): {res['wall_s']:.2f} s wall "
        f"({cli['peer']['mb_s']:.1f} MB/s), peak RSS {cli['peer']['peak_rss_mb']:.0f} MB"
    )

    t = {k: Timing(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "files": n,
        "pixel_bytes": pixel_bytes,
        "quantscope_j1": {
            **t["qs_j1"].as_dict(),
            "mb_s": pixel_bytes / MB / t["qs_j1"].median,
            "ms_per_image": 1e3 * t["qs_j1"].median / n,
        },
        "quantscope_j2": {
            **t["qs_j2"].as_dict(),
            "mb_s": pixel_bytes / MB / t["qs_j2"].median,
            "ms_per_image": 1e3 * t["qs_j2"].median / n,
        },
        "peer": {
            **t["peer"].as_dict(),
            "mb_s": pixel_bytes / MB / t["peer"].median,
            "ms_per_image": 1e3 * t["peer"].median / n,
        },
        "warmup_4_files_s": {"quantscope": t_qs_cold, "peer": t_peer_cold},
        "cli": cli,
        "check": {
            "quantscope_pixels_equal": qs_ok,
            "peer_pixels_equal": peer_ok,
            "same_layout": layout_ok,
            "layout": layout,
        },
        "stored_bytes": {"quantscope": qs_stored, "peer": peer_stored},
    }
    out["ratio_j1"] = out["quantscope_j1"]["mb_s"] / out["peer"]["mb_s"]
    out["ratio_j2"] = out["quantscope_j2"]["mb_s"] / out["peer"]["mb_s"]
    say(
        f"BBBC039 MB/s: quantscope j1 {out['quantscope_j1']['mb_s']:.1f} "
        f"({out['quantscope_j1']['ms_per_image']:.1f} ms/image), j2 "
        f"{out['quantscope_j2']['mb_s']:.1f} "
        f"({out['quantscope_j2']['ms_per_image']:.1f} ms/image), "
        f"peer {out['peer']['mb_s']:.1f} ({out['peer']['ms_per_image']:.1f} ms/image)"
    )
    say(
        f"ratio quantscope/peer: j1 {out['ratio_j1']:.2f}x, j2 {out['ratio_j2']:.2f}x "
        f"(target >= {TARGETS['bbbc_ratio']}x)"
    )
    out["repo_for_ls"] = str(work / "cli_j2")
    return out


def bench_8k(work: Path, reps: int) -> dict[str, Any]:
    import tifffile

    tif = work / f"synthetic_{MID_EDGE}.tif"
    dt_gen, _ = _timed(lambda: write_tiled_tiff(tif, (MID_EDGE, MID_EDGE), 512, seed=1))
    nbytes = MID_EDGE * MID_EDGE * 2
    say(
        f"\n== {MID_EDGE}x{MID_EDGE} uint16 ({nbytes / MB:.0f} MB), tiled 512x512 uncompressed "
        f"TIFF written in {dt_gen:.1f} s"
    )

    times: dict[str, list[float]] = {
        "qs_j1": [],
        "qs_j2": [],
        "peer": [],
        "limit_1": [],
        "limit_2": [],
    }
    phases: list[dict[str, float]] = []
    extra: dict[str, float] = {}
    checks: dict[str, Any] = {}
    for r in range(reps):
        for j in (1, 2):
            dt, rep = qs_ingest([tif], work / f"k8_qs_j{j}", j)
            times[f"qs_j{j}"].append(dt)
            if r == 0 and j == 1:
                qs_root = work / "k8_qs_j1" / rep.added[0].store_path
                qs_stored = tree_bytes(qs_root)[0]
                checks["quantscope_levels"] = rep.added[0].levels
            if not (r == 0 and j == 1):
                rm(work / f"k8_qs_j{j}")
        peer_out = work / f"k8_peer_{r}.ome.zarr"
        dt, _ = _timed(lambda out=peer_out: peer_write(tif, out))
        times["peer"].append(dt)
        for th in (1, 2):
            lim_out = work / f"k8_limit_{th}"
            ph = limit_write(tif, lim_out, th)
            times[f"limit_{th}"].append(ph["total"])
            if th == 1:
                phases.append(ph)
                if r == 0:
                    extra = extra_work(tif, lim_out)
            rm(lim_out)
        say(
            f"rep {r + 1}/{reps}: quantscope j1 {times['qs_j1'][-1]:.2f} s, j2 "
            f"{times['qs_j2'][-1]:.2f} s, peer {times['peer'][-1]:.2f} s, limit 1 thread "
            f"{times['limit_1'][-1]:.2f} s, 2 threads {times['limit_2'][-1]:.2f} s"
        )
        if r == 0:
            expected = tifffile.imread(tif)
            checks["quantscope_pixels_equal"] = level0_equals(qs_root, expected)
            checks["peer_pixels_equal"] = level0_equals(peer_out, expected)
            ok, layout = same_layout(qs_root, peer_out)
            checks["same_layout"], checks["layout"] = ok, layout
            checks["stored_bytes"] = {"quantscope": qs_stored, "peer": tree_bytes(peer_out)[0]}
            del expected
            say(
                f"check: quantscope level 0 == TIFF: {checks['quantscope_pixels_equal']}; peer: "
                f"{checks['peer_pixels_equal']}; same layout: {ok} ({layout}); stored "
                f"quantscope {qs_stored / MB:.1f} MB, "
                f"peer {checks['stored_bytes']['peer'] / MB:.1f} MB"
            )
            rm(work / "k8_qs_j1")
        rm(peer_out)
    rm(tif)

    t = {k: Timing(v) for k, v in times.items()}
    mbs = {k: nbytes / MB / v.median for k, v in t.items()}
    phase_med = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    out: dict[str, Any] = {
        "pixel_bytes": nbytes,
        "generate_s": dt_gen,
        **{k: {**t[k].as_dict(), "mb_s": mbs[k]} for k in t},
        "limit_phases_1_thread_s": phase_med,
        "extra_work_s": extra,
        "check": checks,
        "ratio_j1": mbs["qs_j1"] / mbs["peer"],
        "ratio_j2": mbs["qs_j2"] / mbs["peer"],
        "peer_mb_s": mbs["peer"],
        "limit_mb_s": max(mbs["limit_1"], mbs["limit_2"]),
    }
    out["vs_limit_j1"] = mbs["qs_j1"] / mbs["limit_1"]
    out["vs_limit_j2"] = mbs["qs_j2"] / mbs["limit_2"]
    say(
        f"{MID_EDGE}² MB/s: quantscope j1 {mbs['qs_j1']:.0f}, j2 {mbs['qs_j2']:.0f}; peer "
        f"{mbs['peer']:.0f}; limit 1 thread {mbs['limit_1']:.0f}, 2 threads {mbs['limit_2']:.0f}"
    )
    say(
        "limit phases, 1 thread (s): "
        + ", ".join(f"{k} {v:.3f}" for k, v in phase_med.items())
        + "; not in the limit but done by quantscope: "
        + ", ".join(f"{k} {v:.3f}" for k, v in extra.items())
    )
    say(
        f"ratio quantscope/peer: j1 {out['ratio_j1']:.2f}x, j2 {out['ratio_j2']:.2f}x (target >= "
        f"{TARGETS['k8_ratio']}x); quantscope/limit: j1 {out['vs_limit_j1']:.2f}, "
        f"j2 {out['vs_limit_j2']:.2f}"
    )
    return out


def bench_big(work: Path, jobs: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    import tifffile
    import zarr

    nbytes = BIG_EDGE * BIG_EDGE * 2
    need = nbytes + nbytes + GIB  # TIFF + OME-Zarr (compressed, < 1x) + margin
    free = free_bytes(work)
    if free < need:
        say(f"\n== {BIG_EDGE}² skipped: {free / GIB:.1f} GiB free in {work}, need {need / GIB:.1f}")
        return {"skipped": f"{free / GIB:.1f} GiB free, need {need / GIB:.1f}"}
    tif = work / f"synthetic_{BIG_EDGE}.tif"
    say(
        f"\n== {BIG_EDGE}x{BIG_EDGE} uint16 ({nbytes / GIB:.1f} GiB): writing a 1024x1024-tiled "
        f"uncompressed BigTIFF tile by tile ({free / GIB:.0f} GiB free)"
    )
    dt_gen, _ = _timed(lambda: write_tiled_tiff(tif, (BIG_EDGE, BIG_EDGE), 1024, seed=2))
    say(f"written in {dt_gen:.1f} s")
    out: dict[str, Any] = {"pixel_bytes": nbytes, "generate_s": dt_gen}
    try:
        for j in jobs:
            repo = work / f"big_repo_j{j}"
            res = qs_cli_ingest([tif], repo, j)
            frac = res["peak_rss_bytes"] / nbytes
            say(
                f"`quantscope ingest -j {j}` (subprocess): {res['wall_s']:.1f} s wall "
                f"({nbytes / MB / res['wall_s']:.0f} MB/s), ingest itself "
                f"{fmt(res['ingest_seconds'], 1)} s; peak RSS {res['peak_rss_bytes'] / MB:.0f} MB "
                f"(psutil sampled every 50 ms: {res['sampled_peak_rss_bytes'] / MB:.0f} MB) = "
                f"{100 * frac:.1f}% of the image (target < {100 * TARGETS['rss_fraction']:.0f}%)"
            )
            # sanity: two chunks of level 0 and the level count
            img_dir = next((repo / "images").glob("*.ome.zarr"))
            arr = zarr.open_array(str(img_dir / "0"), mode="r")
            src = zarr.open_array(tifffile.imread(tif, aszarr=True), mode="r")
            ok = all(
                np.array_equal(
                    np.asarray(arr[0, 0, 0, y : y + CHUNK, x : x + CHUNK]),
                    np.asarray(src[y : y + CHUNK, x : x + CHUNK]),
                )
                for y, x in ((0, 0), (BIG_EDGE - CHUNK, BIG_EDGE // 2))
            )
            levels = len(zarr_levels(img_dir))
            stored = tree_bytes(img_dir)[0]
            say(
                f"check: two level-0 chunks == TIFF: {ok}; {levels} levels; stored "
                f"{stored / MB:.0f} MB"
            )
            rm(repo)
            out[f"j{j}"] = {
                "wall_s": res["wall_s"],
                "ingest_s": res["ingest_seconds"],
                "mb_s_wall": nbytes / MB / res["wall_s"],
                "peak_rss_bytes": res["peak_rss_bytes"],
                "sampled_peak_rss_bytes": res["sampled_peak_rss_bytes"],
                "rss_fraction": frac,
                "cpu_s": res["user_s"] + res["sys_s"],
                "check_pixels_equal": ok,
                "levels": levels,
                "stored_bytes": stored,
            }
    finally:
        for j in jobs:
            rm(work / f"big_repo_j{j}")
        with contextlib.suppress(FileNotFoundError):
            tif.unlink()
    out["rss_fraction"] = max(out[f"j{j}"]["rss_fraction"] for j in jobs)
    return out


def bench_startup(repo: Path, n: int = 5) -> dict[str, Any]:
    qs = venv_bin("quantscope")
    say(f"\n== start-up (median of {n} processes)")

    def median_wall(cmd: list[str]) -> float:
        return statistics.median(run_cmd(cmd)[0] for _ in range(n))

    imp = []
    for _ in range(n):
        _, p = run_cmd(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); "
                "import quantscope.cli; print(time.perf_counter() - t)",
            ]
        )
        imp.append(float(p.stdout.strip()))
    out = {
        "python_bare_s": median_wall([sys.executable, "-c", "pass"]),
        "import_cli_s": statistics.median(imp),
        "help_s": median_wall([qs, "--help"]),
        "ls_s": median_wall([qs, "ls", str(repo)]),
        "ls_json_s": median_wall([qs, "ls", str(repo), "--json"]),
        "help_imports": imported_heavy_modules(["--help"]),
        "ls_imports": imported_heavy_modules(["ls", str(repo)]),
    }
    say(
        f"python -c pass {out['python_bare_s']:.3f} s; import quantscope.cli "
        f"{out['import_cli_s']:.3f} s (in-process); `quantscope --help` {out['help_s']:.3f} s; "
        f"`quantscope ls` (40 images) {out['ls_s']:.3f} s; `ls --json` {out['ls_json_s']:.3f} s "
        f"(target well under {TARGETS['startup_s']:.0f} s)"
    )
    say(f"heavy modules imported by --help: {', '.join(out['help_imports']) or 'none'}")
    say(f"heavy modules imported by ls: {', '.join(out['ls_imports']) or 'none'}")
    return out


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


# ------------------------------------------------------------------------------------ profile


def _accounting_targets() -> list[tuple[Any, str, str]]:
    """(owner, attribute, label) of the quantscope functions whose inclusive time is summed."""
    import quantscope.catalog._images as images_mod
    import quantscope.ingestion._ingest as ing
    import quantscope.ingestion._plan as plan
    import quantscope.ingestion._write as write
    import quantscope.io._sources as src
    import quantscope.io._zarr_writer as zw

    # each function is wrapped where it is called from (the module whose globals name it)
    return [
        (ing, "collect_files", "ingest.collect_files"),
        (ing, "clean_leftovers", "ingest.clean_leftovers"),
        (plan, "_scan", "ingest._scan (hash + open + metadata)"),
        (plan, "_sha256", "  ingest._sha256 (source file)"),
        (src, "_open_tiff", "  io._open_tiff (scan and write: opened twice)"),
        (plan, "from_ome", "  metadata.from_ome"),
        (ing, "_skip_known", "ingest._skip_known (catalog lookups)"),
        (write, "_write_job", "ingest._write_job"),
        (write, "image_to_ome_xml", "  metadata.image_to_ome_xml (ome-types)"),
        (write, "write_image", "  io.write_image"),
        (src._TiffPlaneReader, "__call__", "    read pixels (tifffile)"),
        (zw, "_downsample", "    _downsample (2x2 mean)"),
        (zw._Writer, "_encode", "    _Writer._encode (blosc)"),
        (zw._Writer, "put_file", "    _Writer.put_file (mkdir + write + sha256)"),
        (images_mod.ImageRecords, "register", "repo.images.register (one transaction)"),
        (ing, "update_plates", "ingest.update_plates (plate zarr.json)"),
    ]


def time_accounting(
    fn: Any, *args: Any, **kwargs: Any
) -> tuple[float, list[tuple[str, int, float]]]:
    """Run ``fn`` with selected quantscope functions wrapped to sum their wall time (inclusive,
    calls nested under others are indented); far less overhead than cProfile."""
    stats: dict[str, list[float]] = {}
    patched: list[tuple[Any, str, Any]] = []
    for owner, name, label in _accounting_targets():
        orig = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if orig is None:
            continue
        rec = stats.setdefault(label, [0, 0.0])

        def wrapper(*a: Any, _orig: Any = orig, _rec: list[float] = rec, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                _rec[0] += 1
                _rec[1] += time.perf_counter() - t0

        setattr(owner, name, wrapper)
        patched.append((owner, name, orig))
    try:
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        total = time.perf_counter() - t0
    finally:
        for owner, name, orig in reversed(patched):
            setattr(owner, name, orig)
    return total, [(label, int(n), s) for label, (n, s) in stats.items()]


def profile(which: str, work: Path, top: int) -> None:
    """cProfile of one ingest (warm: after an untimed warm-up), thread pools run inline."""
    import cProfile
    import pstats

    import quantscope.ingestion._plan as plan_mod
    import quantscope.ingestion._write as write_mod

    plan_mod.ThreadPoolExecutor = InlineExecutor  # type: ignore[misc,assignment]
    write_mod.ThreadPoolExecutor = InlineExecutor  # type: ignore[misc,assignment]
    if which == "8k":
        tif = work / "profile_8k.tif"
        write_tiled_tiff(tif, (MID_EDGE, MID_EDGE), 512, seed=1)
        paths = [tif]
    else:
        paths = [BBBC]
    if which == "peer":
        files = sorted(p for p in BBBC.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        peer_folder(files[:4], work / "warm_peer")
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(peer_folder, files, work / "peer")
    else:
        from quantscope.catalog import Repository
        from quantscope.ingestion import ingest

        qs_ingest(paths, work / "warm", 1)
        rm(work / "warm")
        repo = Repository.init(work / "repo")  # not profiled: only the ingest call is
        total, acc = time_accounting(ingest, repo, [str(p) for p in paths], jobs=1)
        repo.close()
        say(
            f"== time accounting (no profiler): quantscope ingest jobs=1, thread pools inline, "
            f"{total:.3f} s in all"
        )
        say(
            table(
                [
                    "function (inclusive; indented = inside the one above)",
                    "calls",
                    "total s",
                    "ms/call",
                    "% of ingest",
                ],
                [
                    [label, n, f"{s:.3f}", f"{1e3 * s / max(n, 1):.2f}", f"{100 * s / total:.0f}%"]
                    for label, n, s in acc
                ],
            )
        )
        say()
        repo = Repository.init(work / "repo2")
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(ingest, repo, [str(p) for p in paths], jobs=1)
        repo.close()
    dt = time.perf_counter() - t0
    say(
        f"== cProfile: {'peer' if which == 'peer' else 'quantscope ingest jobs=1'} on "
        f"{'BBBC039 (40 files)' if which != '8k' else f'{MID_EDGE}² TIFF'}: {dt:.3f} s under the "
        f"profiler (thread pools run inline so worker code is visible)"
    )
    for key in ("tottime", "cumulative"):
        say(f"\n-- top {top} by {key}")
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.strip_dirs().sort_stats(key).print_stats(top)


# --------------------------------------------------------------------------------------- main


def summary_table(res: dict[str, Any]) -> str:
    b, k, g, s = res.get("bbbc"), res.get("k8"), res.get("big"), res.get("startup")
    rows: list[list[Any]] = []
    if b:
        for j in (1, 2):
            q = b[f"quantscope_j{j}"]
            rows.append(
                [
                    f"BBBC039 40x520x696 MB/s, jobs={j}",
                    q["mb_s"],
                    b["peer"]["mb_s"],
                    f"{b[f'ratio_j{j}']:.2f}x",
                    f">= {TARGETS['bbbc_ratio']}x",
                ]
            )
        rows.append(
            [
                "BBBC039 ms/image, jobs=1",
                b["quantscope_j1"]["ms_per_image"],
                b["peer"]["ms_per_image"],
                "",
                "",
            ]
        )
        rows.append(
            [
                "BBBC039 whole process MB/s (CLI -j2 vs peer script)",
                b["cli"]["j2"]["mb_s"],
                b["cli"]["peer"]["mb_s"],
                f"{b['cli']['j2']['mb_s'] / b['cli']['peer']['mb_s']:.2f}x",
                "",
            ]
        )
    if k:
        for j in (1, 2):
            rows.append(
                [
                    f"8192² uint16 MB/s, jobs={j}",
                    k[f"qs_j{j}"]["mb_s"],
                    k["peer"]["mb_s"],
                    f"{k[f'ratio_j{j}']:.2f}x",
                    f">= {TARGETS['k8_ratio']}x",
                ]
            )
        for j in (1, 2):
            rows.append(
                [
                    f"8192² quantscope / limit ({j} thread{'s' if j > 1 else ''})",
                    k[f"qs_j{j}"]["mb_s"],
                    k[f"limit_{j}"]["mb_s"],
                    f"{k[f'vs_limit_j{j}']:.2f}",
                    "-> 1",
                ]
            )
    if g and "skipped" not in g:
        for key in sorted(k for k in g if k.startswith("j")):
            r = g[key]
            rows.append(
                [
                    f"32768² (2 GiB) peak RSS MB / image MB, -{key}",
                    r["peak_rss_bytes"] / MB,
                    g["pixel_bytes"] / MB,
                    f"{100 * r['rss_fraction']:.1f}%",
                    f"< {100 * TARGETS['rss_fraction']:.0f}%",
                ]
            )
            rows.append(
                [f"32768² `quantscope ingest -{key}` process MB/s", r["mb_s_wall"], None, "", ""]
            )
    elif g:
        rows.append(["32768² (2 GiB)", "skipped", None, "", g["skipped"]])
    if s:
        for label, key, target in (
            ("`quantscope --help` s", "help_s", "< 1 s"),
            ("`quantscope ls` (40 images) s", "ls_s", "< 1 s"),
            ("import quantscope.cli s", "import_cli_s", ""),
            ("python -c pass s (baseline)", "python_bare_s", ""),
        ):
            rows.append([label, f"{s[key]:.3f}", None, "", target])
    return table(["measurement", "quantscope", "peer / limit", "ratio", "target"], rows)


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="skip the 2 GiB image, fewer repetitions (~1 min)"
    )
    ap.add_argument("--out", type=Path, help="work folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--reps", type=int, help="repetitions of each timing (default 3, quick 2/1)")
    ap.add_argument(
        "--profile",
        choices=["bbbc", "8k", "peer"],
        help="only print a cProfile of one ingest (jobs=1; 'peer' = bioio writer)",
    )
    ap.add_argument("--top", type=int, default=15, help="rows of the profile")
    args = ap.parse_args(argv)

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="quantscope-bench-", dir=args.out))
    else:
        work = Path(tempfile.mkdtemp(prefix="quantscope-bench-"))
    try:
        if args.profile:
            profile(args.profile, work, args.top)
            return 0
        t_start = time.perf_counter()
        reps_small = args.reps or (2 if args.quick else 3)
        reps_mid = args.reps or (1 if args.quick else 3)
        res: dict[str, Any] = {
            "machine": machine(),
            "quick": args.quick,
            "work": str(work),
            "loadavg_start": os.getloadavg()[0],
        }
        say(f"quantscope ingest benchmark: {res['machine']}; work folder {work}")
        if res["loadavg_start"] > 0.5:
            say(
                f"note: load average {res['loadavg_start']:.2f} at start: other processes share "
                "the CPUs, figures will be noisy"
            )
        res["bbbc"] = bench_bbbc(work, reps_small)
        res["k8"] = bench_8k(work, reps_mid)
        if not args.quick:
            res["big"] = bench_big(work)
        res["startup"] = bench_startup(Path(res["bbbc"].pop("repo_for_ls")))
        res["total_s"] = time.perf_counter() - t_start
        res["loadavg_end"] = os.getloadavg()[0]
        say(
            f"\n== summary (MB/s = MB of uncompressed pixels per s of wall time; median of "
            f"{reps_small} (BBBC039) / {reps_mid} (8192²) runs; {res['total_s']:.0f} s in all)"
        )
        say(summary_table(res))
        say("BENCH_JSON " + json.dumps(_round(res), separators=(",", ":")))
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            rm(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
