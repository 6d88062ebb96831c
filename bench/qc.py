"""Cost of quality control: what ``ingest(..., qc=True)`` adds, and megapixels/s of every metric.

Run from the repository root::

    .venv/bin/python bench/qc.py            # full run (~60 s on 2 cores)
    .venv/bin/python bench/qc.py --quick    # fewer repetitions (~30 s)

What it measures, in one process (see bench/README.md):

1. Ingest overhead of QC. ``quantscope.ingestion.ingest(repo, paths, jobs=J, qc=False)`` and
   ``qc=True`` into fresh repositories (J = 1, 2), on the 40 BBBC039 TIFFs (520x696 uint16)
   and on one generated 8192x8192 uint16 image (bench/_common.py's generator, written once as
   a 512x512-tiled uncompressed TIFF). The runs are interleaved: every repetition runs
   off/on for jobs 1 then 2, the order of off and on alternating between repetitions and
   jobs values, so that a change of machine load affects both sides alike. Two overheads
   are reported:

   * **wall** (the issue's target, <= 30 %): median(on) / median(off) - 1 of the seconds of
     the ingest call, and the median of the per-repetition ratios ("paired");
   * **CPU**: the extra CPU time of the process with QC on (``time.process_time``, all
     threads) over the CPU time of the ingest without QC: median(CPU on) / median(CPU off)
     - 1, paired likewise, and QC's extra CPU in ms per image. On a machine whose cores are
     all busy (other processes, or ``jobs`` writers) QC's extra CPU becomes extra wall time,
     so the CPU overhead is what the wall overhead tends to under load; with an idle core
     the QC thread overlaps the writers and the wall overhead is lower. The load average
     is printed before and after each section.
   With QC on, each image up to 2048 px is measured from the planes the writers have just
   read (no read-back): in the QC measuring process (``quantscope.qc.shared_process``,
   started during the warm-up and awaited ready, as in any Python process that has ingested
   a few hundred images) while the writers go on; larger images are measured on their stored
   2048 px level after the writes. The CPU figures include the measuring process's CPU
   (from /proc). "QC work" is the time spent measuring, summed over the images, plus the QC
   step after the writes (storing metrics, flags against peers, verdicts).
   The BBBC039 overhead is then measured again with the measuring process switched off
   (``QUANTSCOPE_QC_PROCESS=0``: QC on a thread of the ingesting process), and once more with
   one ingest per fresh Python process, as ``quantscope ingest`` runs (the interpreter,
   imports and QC's first calls included; 40 images measure on a thread there, see
   ``quantscope.qc.START_AFTER_IMAGES``): the ingest call's seconds and the whole process's.
2. Megapixels/s of every metric function of ``quantscope.quality`` (and of
   ``channel_metrics`` as a whole), called alone on one BBBC039 plane and on the 8192x8192
   plane, best of N, sorted slowest first.
3. ``quantscope.qc.measure_image`` on one stored BBBC039 image (and on the stored 8192x8192
   one, measured on its 2048x2048 QC level), split into the metrics (``channel_metrics``
   clocked inside it) and the rest (read-back of the plane, OME-XML); and ``run_qc`` re-run
   on the 40-image repository, split into measuring and the rest (storing metrics, flags
   against peers, verdicts).

Figures are printed (no pass/fail), then a table, then one ``BENCH_JSON {...}`` line.
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
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MB, Timing, machine, say, table, write_tiled_tiff

ROOT = Path(__file__).resolve().parent.parent
BBBC = (ROOT / ".." / "shared" / "data" / "bbbc039_nuclei_subset" / "images").resolve()
MID_EDGE = 8192
TARGET_OVERHEAD_PCT = 30.0

#: The metric functions of quantscope.quality timed one by one (each is called as fn(plane);
#: "name(binned)" as fn(plane, binned=True): what channel_metrics computes for planes of
#: 128 px and more per side).
METRIC_FUNCTIONS = (
    "focus_plls",
    "focus_plls(binned)",
    "focus_normvar",
    "focus_local",
    "focus_laplacian_var",
    "focus_laplacian_var(binned)",
    "percent_at_max",
    "percent_at_min",
    "percent_at_dtype_max",
    "intensity_range",
    "dynamic_range_used",
    "background",
    "signal_to_noise",
    "illumination_uniformity",
    "foreground_pct",
    "is_empty",
    "channel_metrics",
)


def rm(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 5) if abs(obj) < 1 else round(obj, 3)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------- ingest


def cpu_now() -> float:
    """CPU seconds of this process (all threads) plus those of its QC measuring process."""
    from quantscope.qc import shared_process

    cpu = time.process_time()
    proc = shared_process()
    child = proc.cpu_seconds() if proc is not None else None
    return cpu + (child or 0.0)


def qs_ingest(paths: list[Path], repo_dir: Path, jobs: int, qc: bool) -> tuple[float, Any, float]:
    """Ingest into a fresh repository; returns (seconds of the ingest call, report, CPU
    seconds during the call: all threads of the process and its QC measuring process)."""
    from quantscope.catalog import Repository
    from quantscope.ingestion import ingest

    repo = Repository.init(repo_dir)
    try:
        t0, c0 = time.perf_counter(), cpu_now()
        report = ingest(repo, [str(p) for p in paths], jobs=jobs, qc=qc)
        dt, cpu = time.perf_counter() - t0, cpu_now() - c0
    finally:
        repo.close()
    if not report.ok:
        raise RuntimeError(f"quantscope ingest failed: {report.failed[:3]}")
    return dt, report, cpu


def overhead(
    label: str,
    paths: list[Path],
    n_images: int,
    work: Path,
    reps: int,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Ingest ``paths`` with QC off and on, jobs 1 and 2, ``reps`` times, alternating which
    goes first; each run into a fresh repository (removed at once, except the first qc=True,
    jobs=1 one, which is moved to ``keep`` when given)."""
    load_start = os.getloadavg()[0]
    times: dict[str, list[float]] = {f"{s}_j{j}": [] for j in (1, 2) for s in ("off", "on")}
    cpus: dict[str, list[float]] = {k: [] for k in times}
    qc_s: dict[str, list[float]] = {"j1": [], "j2": []}
    statuses: Counter[str] = Counter()
    for r in range(reps):
        line = []
        for j in (1, 2):
            order = (False, True) if (r + j) % 2 == 0 else (True, False)
            for qc in order:
                side = "on" if qc else "off"
                repo_dir = work / f"{label}_{side}_j{j}_{r}"
                dt, rep, cpu = qs_ingest(paths, repo_dir, j, qc)
                if len(rep.added) != n_images:
                    raise RuntimeError(f"expected {n_images} images, got {len(rep.added)}")
                if qc and len(rep.qc) != n_images:
                    raise RuntimeError(f"QC statuses for {len(rep.qc)} of {n_images} images")
                if qc and rep.notes:
                    say(f"  note: {rep.notes[0]}")
                times[f"{side}_j{j}"].append(dt)
                cpus[f"{side}_j{j}"].append(cpu)
                if qc:
                    qc_s[f"j{j}"].append(rep.qc_seconds)
                    if r == 0 and j == 1:
                        statuses.update(rep.qc.values())
                if keep is not None and qc and r == 0 and j == 1:
                    rm(keep)
                    repo_dir.rename(keep)
                else:
                    rm(repo_dir)
            line.append(
                f"j{j} off {times[f'off_j{j}'][-1]:.3f} s (CPU {cpus[f'off_j{j}'][-1]:.3f}), "
                f"on {times[f'on_j{j}'][-1]:.3f} s (CPU {cpus[f'on_j{j}'][-1]:.3f})"
            )
        say(f"rep {r + 1}/{reps}: " + "; ".join(line))
    out: dict[str, Any] = {
        "images": n_images,
        "reps": reps,
        "qc_status": dict(statuses),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg()[0],
    }
    for j in (1, 2):
        off, on = Timing(times[f"off_j{j}"]), Timing(times[f"on_j{j}"])
        q = statistics.median(qc_s[f"j{j}"])
        # paired: each repetition's on/off ratio, then the median (less sensitive to drift)
        paired = statistics.median(
            100.0 * (a / b - 1.0) for a, b in zip(on.seconds, off.seconds, strict=True)
        )
        # CPU time of the process (all threads): less sensitive to other processes' load
        c_off, c_on = cpus[f"off_j{j}"], cpus[f"on_j{j}"]
        cpu_off, cpu_on = statistics.median(c_off), statistics.median(c_on)
        cpu_pct = 100.0 * (cpu_on / cpu_off - 1.0)
        cpu_paired = statistics.median(
            100.0 * (a / b - 1.0) for a, b in zip(c_on, c_off, strict=True)
        )
        out[f"j{j}"] = {
            "off": {**off.as_dict(), "ms_per_image": 1e3 * off.median / n_images},
            "on": {**on.as_dict(), "ms_per_image": 1e3 * on.median / n_images},
            "qc_seconds_median": q,
            "qc_ms_per_image": 1e3 * q / n_images,
            "overhead_pct": 100.0 * (on.median / off.median - 1.0),
            "overhead_pct_paired": paired,
            "cpu_off_s": cpu_off,
            "cpu_on_s": cpu_on,
            "cpu_off_runs_s": c_off,
            "cpu_on_runs_s": c_on,
            "cpu_off_ms_per_image": 1e3 * cpu_off / n_images,
            "cpu_extra_ms_per_image": 1e3 * (cpu_on - cpu_off) / n_images,
            "cpu_overhead_pct": cpu_pct,
            "cpu_overhead_pct_paired": cpu_paired,
        }
        o = out[f"j{j}"]
        say(
            f"jobs={j}: wall: QC off {off.median:.3f} s ({o['off']['ms_per_image']:.1f} "
            f"ms/image), on {on.median:.3f} s ({o['on']['ms_per_image']:.1f} ms/image) -> "
            f"overhead {o['overhead_pct']:+.0f}% (paired {paired:+.0f}%; target <= "
            f"{TARGET_OVERHEAD_PCT:.0f}%); CPU: off {cpu_off:.3f} s "
            f"({o['cpu_off_ms_per_image']:.1f} ms/image), on {cpu_on:.3f} s -> QC's extra CPU "
            f"{o['cpu_extra_ms_per_image']:.2f} ms/image = {cpu_pct:+.0f}% of the ingest's "
            f"(paired {cpu_paired:+.0f}%); QC work (wall, summed over threads) "
            f"{1e3 * q / n_images:.1f} ms/image"
        )
    say(
        f"load average {load_start:.2f} at the start of this section, "
        f"{out['loadavg_end']:.2f} at the end"
    )
    if statuses:
        say("QC verdicts (first jobs=1 run): " + ", ".join(f"{k} {v}" for k, v in statuses.items()))
    return out


def bench_bbbc_ingest(work: Path, reps: int) -> dict[str, Any]:
    files = sorted(p for p in BBBC.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not files:
        raise SystemExit(f"no TIFFs in {BBBC}")
    say(f"\n== ingest with QC off / on: BBBC039, {len(files)} files in {BBBC}")
    # warm-up: lazy imports (scipy, zarr ...) and first calls of both paths, untimed
    t_warm = time.perf_counter()
    for qc in (False, True):
        qs_ingest(files[:4], work / f"warm_{qc}", 1, qc)
        rm(work / f"warm_{qc}")
    say(
        f"warm-up (4 files, QC off then on, first calls in the process): "
        f"{time.perf_counter() - t_warm:.2f} s; {process_state()}"
    )
    out = overhead("bbbc", [BBBC], len(files), work, reps, keep=work / "bbbc_repo")
    out["files"] = len(files)
    out["measured_in"] = measured_in()
    return out


def process_state() -> str:
    """Whether QC measures in the measuring process (waiting until it is ready)."""
    from quantscope.qc import shared_process

    proc = shared_process()
    if proc is None:
        return "QC measures on a thread (no measuring process: switched off or not Linux)"
    if proc.wait_ready(30):
        return "QC measures in the measuring process (ready)"
    return f"QC measures on a thread (measuring process gone: {proc.dead})"


def measured_in() -> str:
    from quantscope.qc import shared_process

    proc = shared_process()
    return "process" if proc is not None and proc.ready else "thread"


def bench_thread_qc(work: Path, reps: int) -> dict[str, Any]:
    """The same BBBC039 overhead with the measuring process switched off
    (QUANTSCOPE_QC_PROCESS=0): QC on a thread of the ingesting process, for comparison."""
    say("\n== the same with QC on a thread (QUANTSCOPE_QC_PROCESS=0), for comparison")
    saved = os.environ.get("QUANTSCOPE_QC_PROCESS")
    os.environ["QUANTSCOPE_QC_PROCESS"] = "0"
    try:
        out = overhead("bbbc_thread", [BBBC], 40, work, reps)
    finally:
        if saved is None:
            os.environ.pop("QUANTSCOPE_QC_PROCESS", None)
        else:
            os.environ["QUANTSCOPE_QC_PROCESS"] = saved
    out["measured_in"] = "thread"
    return out


_COLD = """
import sys, time
from quantscope.catalog import Repository
from quantscope.ingestion import ingest
repo = Repository.init(sys.argv[1])
t0 = time.perf_counter()
report = ingest(repo, [sys.argv[2]], jobs=int(sys.argv[3]), qc=sys.argv[4] == "on")
dt = time.perf_counter() - t0
assert len(report.added) == 40 and (sys.argv[4] == "off" or len(report.qc) == 40)
print(dt)
"""


def bench_big_repo(work: Path, n_existing: int, reps: int) -> dict[str, Any]:
    """The same BBBC039 ingest, QC off / on, into a repository that already holds
    ``n_existing`` images with QC metrics and statuses (catalog rows only, built with
    bench/query.py's generator: 3 channels, every metric of quantscope.quality.METRICS): the
    QC step re-flags the plate the new images are on, not the whole repository."""
    from quantscope.catalog import Repository
    from quantscope.ingestion import ingest
    from quantscope.quality import METRICS
    from query import registrations

    say(
        f"\n== ingest into a repository of {n_existing:,} images (QC metrics and statuses "
        "stored): BBBC039, jobs=2, QC off / on alternating"
    )
    base = work / "big_base"
    t0 = time.perf_counter()
    repo = Repository.init(base)
    try:
        for b in range(0, n_existing, 2000):
            ks = range(b, min(n_existing, b + 2000))
            repo.images.register_many(registrations(b, ks.stop))
            repo.quality.set_metrics(
                (
                    f"{k:032x}",
                    {
                        c: {m: float((k + c + i) % 97) for i, m in enumerate(METRICS)}
                        for c in range(3)
                    },
                )
                for k in ks
            )
            repo.quality.set_status({f"{k:032x}": ("pass", []) for k in ks})
    finally:
        repo.close()
    say(f"built in {time.perf_counter() - t0:.1f} s")
    runs: dict[str, list[float]] = {"off": [], "on": []}
    qc_step: list[float] = []
    for r in range(reps):
        for qc in (False, True) if r % 2 == 0 else (True, False):
            dst = work / "big_copy"
            rm(dst)
            shutil.copytree(base, dst)
            repo = Repository.open(dst)
            try:
                t1 = time.perf_counter()
                report = ingest(repo, [str(BBBC)], jobs=2, qc=qc)
                runs["on" if qc else "off"].append(time.perf_counter() - t1)
            finally:
                repo.close()
            if len(report.added) != 40 or (qc and len(report.qc) != 40):
                raise RuntimeError("expected 40 images added and checked")
            if qc:
                qc_step.append(report.qc_seconds)
    rm(work / "big_copy")
    rm(base)
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    out = {
        "existing_images": n_existing,
        "reps": reps,
        "off_s": off,
        "on_s": on,
        "overhead_pct": 100.0 * (on / off - 1.0),
        "qc_seconds_median": statistics.median(qc_step),
        "runs": runs,
    }
    say(
        f"QC off {off:.3f} s, on {on:.3f} s -> overhead {out['overhead_pct']:+.0f}% "
        f"(QC work {out['qc_seconds_median']:.3f} s; median of {reps})"
    )
    return out


def bench_cold(work: Path, reps: int) -> dict[str, Any]:
    """One ingest per Python process, as ``quantscope ingest`` runs: the measuring process
    starts with the ingest and takes over once ready; seconds of the ingest call and of the
    whole process (interpreter, imports, exit), QC off / on alternating, jobs 1 and 2."""
    import subprocess

    say("\n== one ingest per process (as the CLI runs it): BBBC039, QC off / on alternating")
    runs: dict[str, list[tuple[float, float]]] = {
        f"{s}_j{j}": [] for j in (1, 2) for s in ("off", "on")
    }
    for r in range(reps):
        for j in (1, 2):
            for qc in ("off", "on") if (r + j) % 2 == 0 else ("on", "off"):
                repo_dir = work / f"cold_{qc}_{j}_{r}"
                t0 = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-c", _COLD, str(repo_dir), str(BBBC), str(j), qc],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                total = time.perf_counter() - t0
                runs[f"{qc}_j{j}"].append((float(done.stdout.split()[-1]), total))
                rm(repo_dir)
    out: dict[str, Any] = {"reps": reps}
    for j in (1, 2):
        off = [a for a, _ in runs[f"off_j{j}"]]
        on = [a for a, _ in runs[f"on_j{j}"]]
        off_t = [b for _, b in runs[f"off_j{j}"]]
        on_t = [b for _, b in runs[f"on_j{j}"]]
        o = {
            "off_s": statistics.median(off),
            "on_s": statistics.median(on),
            "overhead_pct": 100.0 * (statistics.median(on) / statistics.median(off) - 1.0),
            "process_off_s": statistics.median(off_t),
            "process_on_s": statistics.median(on_t),
            "process_overhead_pct": 100.0
            * (statistics.median(on_t) / statistics.median(off_t) - 1.0),
            "runs": runs,
        }
        out[f"j{j}"] = o
        say(
            f"jobs={j}: ingest call QC off {o['off_s']:.3f} s, on {o['on_s']:.3f} s -> "
            f"{o['overhead_pct']:+.0f}%; whole process {o['process_off_s']:.2f} s vs "
            f"{o['process_on_s']:.2f} s -> {o['process_overhead_pct']:+.0f}% (median of {reps})"
        )
    return out


def bench_8k_ingest(work: Path, tif: Path, reps: int) -> dict[str, Any]:
    say(f"\n== ingest with QC off / on: one {MID_EDGE}x{MID_EDGE} uint16 image ({tif.name})")
    return overhead("k8", [tif], 1, work, reps, keep=work / "k8_repo")


# ------------------------------------------------------------------------------------ metrics


def best_of(fn: Callable[[], Any], n: int, budget_s: float) -> list[float]:
    """Wall times of up to ``n`` calls of ``fn``; stops early once ``budget_s`` is spent and at
    least two calls (the first may pay one-off costs such as caches keyed by shape) are done."""
    runs: list[float] = []
    start = time.perf_counter()
    while len(runs) < n:
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
        if len(runs) >= 2 and time.perf_counter() - start > budget_s:
            break
    return runs


def metric_rates(
    plane: np.ndarray, label: str, n: int, budget_s: float
) -> dict[str, dict[str, Any]]:
    """Best-of-``n`` seconds and megapixels/s of each metric function on ``plane``."""
    import quantscope.quality as quality

    mpx = plane.size / 1e6
    res: dict[str, dict[str, Any]] = {}
    for name in METRIC_FUNCTIONS:
        binned = name.endswith("(binned)")
        fn = getattr(quality, name.removesuffix("(binned)"), None)
        if fn is None:
            res[name] = {"error": "not in quantscope.quality"}
            continue
        kwargs = {"binned": True} if binned else {}
        try:
            runs = best_of(lambda fn=fn, kw=kwargs: fn(plane, **kw), n, budget_s)
        except Exception as e:  # the module is being worked on: report and go on
            res[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        best = min(runs)
        res[name] = {
            "best_s": best,
            "mp_s": mpx / best if best > 0 else float("inf"),
            "runs_s": runs,
        }
    ok = sorted((k for k in res if "error" not in res[k]), key=lambda k: -res[k]["best_s"])
    cm = res.get("channel_metrics", {}).get("best_s")
    rows = [
        [
            k,
            res[k]["best_s"] * 1e3,
            res[k]["mp_s"],
            f"{100 * res[k]['best_s'] / cm:.0f}%" if cm and k != "channel_metrics" else "",
            len(res[k]["runs_s"]),
        ]
        for k in ok
    ]
    rows += [[k, None, None, res[k]["error"], 0] for k in res if "error" in res[k]]
    say(
        f"\n== metric functions on {label} ({plane.shape[0]}x{plane.shape[1]} {plane.dtype}, "
        f"{mpx:.2f} MP), alone, one thread, best of up to {n}, slowest first"
    )
    say(table(["function", "ms", "MP/s", "of channel_metrics", "runs"], rows))
    return res


# -------------------------------------------------------------------------- measure_image / run_qc


def read_qc_plane(store: Path) -> np.ndarray:
    """The plane ``measure_image`` measures (t=0, c=0, z=0 of the QC level), read with plain
    zarr-python: a reference for quantscope's own read-back, which may take a faster path."""
    import zarr

    from quantscope.qc import qc_level

    group = zarr.open_group(str(store), mode="r")
    attrs: Any = group.attrs.asdict()
    paths = [d["path"] for d in attrs["ome"]["multiscales"][0]["datasets"]]
    shapes = [tuple(group[p].shape) for p in paths]  # type: ignore[union-attr]
    level = qc_level(shapes)
    return np.asarray(group[paths[level]][0, 0, 0])  # type: ignore[index]


@contextlib.contextmanager
def metrics_clock() -> Iterator[list[float]]:
    """Sums the time spent in ``quantscope.quality.channel_metrics`` / ``stack_metrics`` while
    active: yields ``[seconds, calls]``. ``measure_image`` imports them from the package when
    it runs, so replacing the package attributes catches its calls."""
    import quantscope.quality as quality

    acc = [0.0, 0.0]
    saved = {name: getattr(quality, name) for name in ("channel_metrics", "stack_metrics")}

    def clocked(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[0] += time.perf_counter() - t0
                acc[1] += 1

        return wrapper

    try:
        for name, fn in saved.items():
            setattr(quality, name, clocked(fn))
        yield acc
    finally:
        for name, fn in saved.items():
            setattr(quality, name, fn)


def bench_measure(repo_dir: Path, label: str, n: int, budget_s: float) -> dict[str, Any]:
    """``measure_image`` on the first image of a repository, split into the metrics
    (``channel_metrics`` called inside it, clocked) and the rest (opening the store, reading
    the plane back, OME-XML); plus a plain zarr-python read of the same plane for reference."""
    from quantscope.catalog import Repository
    from quantscope.qc import measure_image
    from quantscope.quality import channel_metrics

    with Repository.open(repo_dir) as repo:
        img = repo.images.all()[0]
        store = repo.root / img.store_path
        total: list[float] = []
        inside: list[float] = []
        calls = 0.0
        start = time.perf_counter()
        with metrics_clock() as acc:
            while len(total) < n:
                acc[0] = 0.0
                t0 = time.perf_counter()
                measure_image(store, img)
                total.append(time.perf_counter() - t0)
                inside.append(acc[0])
                calls = acc[1]
                if len(total) >= 2 and time.perf_counter() - start > budget_s:
                    break
        zarr_read = best_of(lambda: read_qc_plane(store), n, budget_s)
        plane = read_qc_plane(store)
        if calls == 0:  # measure_image no longer calls the package function: time it alone
            split = "channel_metrics timed alone on the plane"
            inside = best_of(lambda: channel_metrics(plane), n, budget_s)
            rest = [min(total) - min(inside)]
        else:
            split = "channel_metrics clocked inside measure_image"
            rest = [t - c for t, c in zip(total, inside, strict=True)]
    t, c, r = min(total), min(inside), min(rest)
    out = {
        "image": img.name,
        "qc_plane_shape": list(plane.shape),
        "split": split,
        "measure_image": Timing(total).as_dict(),
        "metrics": Timing(inside).as_dict(),
        "read_and_other_s": r,
        "zarr_python_read": Timing(zarr_read).as_dict(),
        "mp_s": plane.size / 1e6 / t,
    }
    say(
        f"measure_image on {label} ({img.name}, QC plane {plane.shape[0]}x{plane.shape[1]}): "
        f"{1e3 * t:.1f} ms = metrics {1e3 * c:.1f} ms + read-back and the rest {1e3 * r:.1f} ms "
        f"(best of {len(total)}, {split}; {plane.size / 1e6 / t:.1f} MP/s of QC plane); "
        f"plain zarr-python read of that plane for reference: {1e3 * min(zarr_read):.1f} ms"
    )
    return out


def bench_run_qc(repo_dir: Path, n_images: int, reps: int) -> dict[str, Any]:
    """``run_qc`` re-measuring every image of a repository: measuring vs the rest."""
    from quantscope.catalog import Repository
    from quantscope.qc import run_qc

    out: dict[str, Any] = {}
    with Repository.open(repo_dir) as repo:
        for j in (1, 2):
            tot, meas = [], []
            for _ in range(reps):
                rep = run_qc(repo, jobs=j)
                tot.append(rep.seconds)
                meas.append(rep.measure_seconds)
            t, m = statistics.median(tot), statistics.median(meas)
            out[f"j{j}"] = {
                "seconds": t,
                "measure_seconds": m,
                "rest_seconds": t - m,
                "ms_per_image": 1e3 * t / n_images,
                "measure_ms_per_image": 1e3 * m / n_images,
                "runs_s": tot,
            }
            say(
                f"run_qc(repo, jobs={j}) on the {n_images} images: {t:.3f} s "
                f"({1e3 * t / n_images:.1f} ms/image) = measuring {m:.3f} s "
                f"({1e3 * m / n_images:.1f} ms/image) + storing, flags, verdicts "
                f"{t - m:.3f} s (median of {reps})"
            )
    return out


# -------------------------------------------------------------------------------------- output


def summary_table(res: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    target = f"<= {TARGET_OVERHEAD_PCT:.0f}%"
    for key, label in (
        ("bbbc", "BBBC039 40x520x696"),
        ("bbbc_thread", "BBBC039, QC on a thread"),
        ("k8", f"{MID_EDGE}² x1"),
    ):
        d = res.get(key)
        if not d:
            continue
        for j in (1, 2):
            o = d[f"j{j}"]
            rows.append(
                [
                    f"ingest {label}, jobs={j}: s (ms/image)",
                    f"{o['off']['median_s']:.3f} ({o['off']['ms_per_image']:.1f})",
                    f"{o['on']['median_s']:.3f} ({o['on']['ms_per_image']:.1f})",
                    f"wall {o['overhead_pct']:+.0f}% (paired {o['overhead_pct_paired']:+.0f}%), "
                    f"CPU {o['cpu_overhead_pct']:+.0f}% (+{o['cpu_extra_ms_per_image']:.1f} "
                    f"ms/image)",
                    target,
                ]
            )
    big = res.get("big")
    if big:
        rows.append(
            [
                f"ingest BBBC039 into {big['existing_images']:,} images, jobs=2: s",
                f"{big['off_s']:.3f}",
                f"{big['on_s']:.3f}",
                f"wall {big['overhead_pct']:+.0f}%",
                target,
            ]
        )
    cold = res.get("cold")
    if cold:
        for j in (1, 2):
            o = cold[f"j{j}"]
            rows.append(
                [
                    f"ingest BBBC039, one per process, jobs={j}: s (process s)",
                    f"{o['off_s']:.3f} ({o['process_off_s']:.2f})",
                    f"{o['on_s']:.3f} ({o['process_on_s']:.2f})",
                    f"wall {o['overhead_pct']:+.0f}% (process {o['process_overhead_pct']:+.0f}%)",
                    target,
                ]
            )
    m = res.get("measure", {})
    for key, label in (("bbbc", "BBBC039"), ("k8", f"{MID_EDGE}² (QC level)")):
        d = m.get(key)
        if d:
            rows.append(
                [
                    f"measure_image {label} ms: total | metrics + read/rest",
                    f"{1e3 * d['measure_image']['best_s']:.1f}",
                    f"{1e3 * d['metrics']['best_s']:.1f} + {1e3 * d['read_and_other_s']:.1f}",
                    "",
                    "",
                ]
            )
    rq = m.get("run_qc")
    if rq:
        for j in (1, 2):
            d = rq[f"j{j}"]
            rows.append(
                [
                    f"run_qc 40 BBBC039, jobs={j}, ms/image: total | measuring",
                    f"{d['ms_per_image']:.1f}",
                    f"{d['measure_ms_per_image']:.1f}",
                    "",
                    "",
                ]
            )
    mt = res.get("metrics", {})
    for key, label in (("bbbc", "BBBC039 plane"), ("k8", f"{MID_EDGE}² plane")):
        d = mt.get(key)
        if not d:
            continue
        ok = {k: v for k, v in d.items() if "error" not in v}
        slow = sorted((k for k in ok if k != "channel_metrics"), key=lambda k: ok[k]["mp_s"])
        for k in ["channel_metrics", *slow[:3]] if "channel_metrics" in ok else slow[:3]:
            rows.append(
                [
                    f"{k} on {label}: ms | MP/s",
                    f"{1e3 * ok[k]['best_s']:.1f}",
                    f"{ok[k]['mp_s']:.1f}",
                    "",
                    "",
                ]
            )
    return table(["measurement", "QC off | figure", "QC on | figure", "overhead", "target"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (~30 s)")
    ap.add_argument("--out", type=Path, help="work folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument(
        "--reps",
        type=int,
        help="ingest repetitions per setting (default 9 on BBBC039 / 5 on 8192², quick 4 / 2)",
    )
    ap.add_argument(
        "--existing",
        type=int,
        default=20000,
        help="images already in the repository of the large-repository section (default 20000)",
    )
    args = ap.parse_args(argv)

    parent = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        parent = args.out
    work = Path(tempfile.mkdtemp(prefix="quantscope-bench-qc-", dir=parent))
    try:
        t_start = time.perf_counter()
        reps_bbbc = args.reps or (4 if args.quick else 9)
        reps_8k = args.reps or (2 if args.quick else 5)
        n_small, n_big = (5, 2) if args.quick else (10, 3)
        budget_small, budget_big = (1.0, 6.0) if args.quick else (2.0, 15.0)
        res: dict[str, Any] = {
            "machine": machine(),
            "quick": args.quick,
            "work": str(work),
            "loadavg_start": os.getloadavg()[0],
            "target_overhead_pct": TARGET_OVERHEAD_PCT,
        }
        say(f"quantscope QC benchmark: {res['machine']}; work folder {work}")
        if res["loadavg_start"] > 0.5:
            say(
                f"note: load average {res['loadavg_start']:.2f} at start: other processes share "
                "the CPUs, figures will be noisy"
            )
        res["bbbc"] = bench_bbbc_ingest(work, reps_bbbc)
        res["bbbc_thread"] = bench_thread_qc(work, max(2, reps_bbbc // 2))
        res["cold"] = bench_cold(work, 2 if args.quick else 3)
        res["big"] = bench_big_repo(work, args.existing, 2 if args.quick else 3)

        tif = work / f"synthetic_{MID_EDGE}.tif"
        t0 = time.perf_counter()
        write_tiled_tiff(tif, (MID_EDGE, MID_EDGE), 512, seed=1)
        res["k8_generate_s"] = time.perf_counter() - t0
        say(
            f"\n{MID_EDGE}x{MID_EDGE} uint16 ({MID_EDGE * MID_EDGE * 2 / MB:.0f} MB) written as "
            f"a 512x512-tiled uncompressed TIFF in {res['k8_generate_s']:.1f} s"
        )
        res["k8"] = bench_8k_ingest(work, tif, reps_8k)

        import tifffile

        files = sorted(p for p in BBBC.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        res["metrics"] = {
            "bbbc_file": files[0].name,
            "bbbc": metric_rates(
                tifffile.imread(files[0]), f"BBBC039 {files[0].name}", n_small, budget_small
            ),
        }
        big = tifffile.imread(tif)
        res["metrics"]["k8"] = metric_rates(big, f"the {MID_EDGE}² image", n_big, budget_big)
        del big
        tif.unlink()

        say("\n== measure_image (read-back of the QC plane + metrics) and run_qc")
        res["measure"] = {
            "bbbc": bench_measure(work / "bbbc_repo", "a stored BBBC039 image", 20, budget_small),
            "k8": bench_measure(work / "k8_repo", f"the stored {MID_EDGE}² image", 5, budget_big),
            "run_qc": bench_run_qc(
                work / "bbbc_repo", res["bbbc"]["files"], 1 if args.quick else 3
            ),
        }
        res["total_s"] = time.perf_counter() - t_start
        res["loadavg_end"] = os.getloadavg()[0]
        say(
            f"\n== summary (ingest: median of {reps_bbbc} (BBBC039) / {reps_8k} ({MID_EDGE}²) "
            f"runs per setting, QC on/off alternating; metrics: best of N; "
            f"{res['total_s']:.0f} s in all)"
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
