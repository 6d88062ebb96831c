"""Per-object measurements: quantscope's vectorized features vs cp_measure, objects/s.

Run from the repository root::

    .venv/bin/python bench/features.py            # 40 BBBC039 images, 4,484 nuclei (~1-2 min)
    .venv/bin/python bench/features.py --quick    # 10 images, 2 repetitions

What it measures, in one process, on the same inputs (the 40 BBBC039 images, uint16, and their
reference labels from ``../shared/data/bbbc039_nuclei_subset``; cp_measure gets the images as
float / 65535, its documented convention):

1. Full default measurement set. quantscope: ``measure_objects(labels, {"DNA": image})`` (all
   six families: shape with moments, Feret and Zernike; intensity; texture; granularity; radial
   distribution; neighbours). cp_measure 0.3.0: ``featurize`` with its full default
   configuration for one channel (271 features; cp_measure has no neighbours, quantscope no
   PerimeterCrofton).
2. Per family: quantscope ``measure_objects(..., families=[f])`` (each call builds the shared
   object index again, so the index cost is counted in every family) against cp_measure's
   matching bulk functions (shape = sizeshape + zernike + feret; radial = radial_distribution +
   radial_zernikes).

Both sides run with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` unless already set: idle BLAS
threads spin and inflate CPU time on a shared machine). Times are wall-clock and CPU time
(``time.process_time``: this process, all threads) over all images; quantscope is repeated
``--repeat`` times, cp_measure (slow) about half as often, the two alternating; medians are
reported. The machine is shared: compare the ratios, and prefer the CPU ratio
when the machine is loaded (wall-clock then mostly measures waiting for a core).
Figures are printed, then one ``BENCH_JSON {...}`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One BLAS thread for both sides, set before numpy loads BLAS: on a shared 2-core machine idle
# BLAS threads spin and inflate CPU time (cp_measure and quantscope alike); OPENBLAS_NUM_THREADS
# (set it in the environment to override).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, say, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data" / "bbbc039_nuclei_subset").resolve()

FAMILIES = {
    # quantscope family: cp_measure bulk functions that measure the same thing
    "shape": ("sizeshape", "zernike", "feret"),
    "intensity": ("intensity",),
    "texture": ("texture",),
    "granularity": ("granularity",),
    "radial": ("radial_distribution", "radial_zernikes"),
    "neighbors": (),
}


def load(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    import tifffile

    images = sorted((DATA / "images").glob("*.tif"))[:n]
    labels = sorted((DATA / "labels").glob("*.tif"))[:n]
    if not images or len(images) != len(labels):
        raise SystemExit(f"BBBC039 images/labels not found under {DATA}")
    return [
        (tifffile.imread(i), tifffile.imread(lb).astype(np.int32))
        for i, lb in zip(images, labels, strict=True)
    ]


def timed_all(fn: Callable[[np.ndarray, np.ndarray], Any], pairs: list) -> tuple[float, float]:
    """Wall-clock and CPU (this process, all threads) seconds for all images."""
    t0, c0 = time.perf_counter(), time.process_time()
    for img, lab in pairs:
        fn(img, lab)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 images, 2 repetitions")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of the fast side")
    args = ap.parse_args()
    n_images = 10 if args.quick else args.images
    repeat = 2 if args.quick else args.repeat

    from cp_measure.bulk import get_core_measurements
    from cp_measure.featurizer import featurize, make_featurizer_config

    from quantscope.analysis._features import measure_objects

    warnings.filterwarnings("ignore")
    pairs = load(n_images)
    n_obj = sum(int(np.unique(lab).size - 1) for _, lab in pairs)
    floats = [(img.astype(np.float64) / 65535, lab) for img, lab in pairs]
    core = get_core_measurements()
    config = make_featurizer_config(["DNA"])

    def qs_full(img: np.ndarray, lab: np.ndarray) -> Any:
        return measure_objects(lab, {"DNA": img})

    def cp_full(img: np.ndarray, lab: np.ndarray) -> Any:
        if not lab.any():  # featurize refuses an image without objects (one BBBC039 field)
            return None
        return featurize(img[None, None], lab[None, None], config)

    say(f"machine: {machine()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    say(f"inputs: {len(pairs)} BBBC039 images, {n_obj} objects")
    # warm-up (imports, caches) on one image, both sides
    qs_full(*pairs[0])
    cp_full(*floats[0])
    n_feat_qs = qs_full(*pairs[0]).shape[1] - 3
    n_feat_cp = len(cp_full(*floats[0])[1])

    results: dict[str, Any] = {"objects": n_obj, "images": len(pairs)}
    rows: list[list[Any]] = []

    def record(
        name: str, qs: list[tuple[float, float]], cp: list[tuple[float, float]] | None
    ) -> None:
        qw = statistics.median(t[0] for t in qs)
        qc = statistics.median(t[1] for t in qs)
        if cp:
            cw = statistics.median(t[0] for t in cp)
            cc = statistics.median(t[1] for t in cp)
            rows.append([name, n_obj / qw, n_obj / cw, cw / qw, n_obj / qc, n_obj / cc, cc / qc])
            results[name] = {"quantscope": qs, "cp_measure": cp, "ratio_wall": cw / qw,
                             "ratio_cpu": cc / qc}  # fmt: skip
        else:
            rows.append([name, n_obj / qw, None, None, n_obj / qc, None, None])
            results[name] = {"quantscope": qs, "cp_measure": None}
        say(f"{name}: done")

    # the two sides alternate, so a change of machine load hits both
    qs_t, cp_t = [], []
    for r in range(repeat):
        qs_t.append(timed_all(qs_full, pairs))
        if r < max(1, repeat // 2):
            cp_t.append(timed_all(cp_full, floats))
    record(f"full ({n_feat_qs} vs {n_feat_cp} features)", qs_t, cp_t)

    for fam, peers in FAMILIES.items():

        def qs_fam(img: np.ndarray, lab: np.ndarray, f: str = fam) -> Any:
            return measure_objects(lab, {"DNA": img}, families=[f])

        def cp_fam(img: np.ndarray, lab: np.ndarray, peers: tuple = peers) -> None:
            if not lab.any():
                return
            for p in peers:
                core[p](lab, img)

        ts = [timed_all(qs_fam, pairs) for _ in range(repeat)]
        record(fam, ts, [timed_all(cp_fam, floats)] if peers else None)

    say()
    say("objects/s, wall-clock and CPU time (process_time: less sensitive to a shared machine)")
    say(
        table(
            ["measurement", "qs wall", "cp wall", "ratio", "qs CPU", "cp CPU", "ratio CPU"],
            rows,
        )
    )
    say("BENCH_JSON " + json.dumps(results, default=float))


if __name__ == "__main__":
    main()
