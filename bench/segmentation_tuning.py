"""Nuclei segmentation on BBBC039: accuracy of the defaults, a textbook peer, speed, tuning.

Usage (from the repository root)::

    .venv/bin/python bench/segmentation_tuning.py            # report (about 30 s)
    .venv/bin/python bench/segmentation_tuning.py --grid     # the tuning search, first 10 only
    .venv/bin/python bench/segmentation_tuning.py --methods  # li / otsu / local thresholds

The report prints, for quantscope's default :class:`NucleiParams` and for a textbook pipeline
(Gaussian, Otsu, distance transform, peak_local_max markers, watershed, small-object removal;
its free parameters tuned on the same 10 images) measured in the same run:

* F1 at IoU 0.5 and mean AP over IoU 0.5:0.05:0.95 (TP / (TP + FP + FN) per threshold,
  averaged), one-to-one matching, TP/FP/FN pooled over images, on the tuning images (the
  first 10 sorted by name), the 30 held-out images and all 40;
* merges (all, and of two or more nuclei >= 100 px), splits and edge fragments (see
  :func:`error_kinds`);
* the number of objects predicted on the empty field (``IXMtest_F13_s7``, 0 reference nuclei);
* milliseconds per 520 x 696 image on one core (median of the 40 images, 2 repetitions) and
  the ratio to the textbook pipeline.

``--methods`` prints the same figures for each ``threshold_method`` (other parameters at their
defaults). ``--grid`` varies one parameter at a time around the defaults and prints F1 / mean
AP on the first 10 images only; the held-out figures are never used to choose parameters.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = (ROOT / ".." / "shared" / "data" / "bbbc039_nuclei_subset").resolve()
THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
N_TUNE = 10
EMPTY = "IXMtest_F13_s7"


def load() -> list[tuple[str, np.ndarray, np.ndarray]]:
    import tifffile

    names = sorted(p.name for p in (DATA / "images").glob("*.tif"))
    if not names:
        raise SystemExit(f"no BBBC039 images under {DATA / 'images'}")
    return [
        (
            n,
            tifffile.imread(DATA / "images" / n),
            tifffile.imread(DATA / "labels" / n).astype(np.int32),
        )
        for n in names
    ]


def counts(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(TP, FP, FN) per IoU threshold; matches with IoU > 0.5 are unique, so no assignment."""
    nt, npred = int(truth.max()), int(pred.max())
    at = np.bincount(truth.ravel(), minlength=nt + 1)
    ap = np.bincount(pred.ravel(), minlength=npred + 1)
    n_true, n_pred = int((at[1:] > 0).sum()), int((ap[1:] > 0).sum())
    out = np.zeros((len(THRESHOLDS), 3), np.int64)
    if nt == 0 or npred == 0:
        out[:, 1], out[:, 2] = n_pred, n_true
        return out
    both = (truth > 0) & (pred > 0)
    key = truth[both].astype(np.int64) * (npred + 1) + pred[both]
    pairs, inter = np.unique(key, return_counts=True)
    t, p = pairs // (npred + 1), pairs % (npred + 1)
    iou = inter / (at[t] + ap[p] - inter)
    for i, thr in enumerate(THRESHOLDS):
        tp = int((iou >= thr).sum())
        out[i] = (tp, n_pred - tp, n_true - tp)
    return out


def score(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, tuple[int, ...]]:
    total = sum((counts(t, p) for t, p in pairs), np.zeros((len(THRESHOLDS), 3), np.int64))
    tp, fp, fn = total[:, 0], total[:, 1], total[:, 2]
    f1 = 2 * tp[0] / max(2 * tp[0] + fp[0] + fn[0], 1)
    ap = float(np.mean(tp / np.maximum(tp + fp + fn, 1)))
    return float(f1), ap, (int(tp[0]), int(fp[0]), int(fn[0]))


def textbook(image: np.ndarray, sigma: float = 1.0, min_distance: int = 7, min_area: int = 30):
    """The textbook pipeline of the issue: Otsu, distance transform, peak markers, watershed."""
    from scipy import ndimage as ndi
    from skimage import feature, filters, segmentation

    smooth = ndi.gaussian_filter(image.astype(np.float32), sigma)
    mask = smooth > filters.threshold_otsu(smooth)
    dist = ndi.distance_transform_edt(mask)
    blobs, _ = ndi.label(mask)
    peaks = feature.peak_local_max(dist, min_distance=min_distance, labels=blobs)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = segmentation.watershed(-dist, markers, mask=mask)
    area = np.bincount(labels.ravel())
    small = area < min_area
    small[0] = True
    labels[small[labels]] = 0
    return labels


def error_kinds(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(merges, nuclei merges, splits, edge fragments) of one image.

    A truth object belongs to the predicted object holding more than half of its pixels; a
    predicted object to which two or more truth objects belong is a merge, and symmetrically
    a truth object with two or more predicted objects a split (Coelho et al. 2009,
    doi:10.1109/ISBI.2009.5193098). A *nuclei merge* is a merge of at least two truth nuclei of
    >= 100 px (BBBC039 also annotates micronuclei and blebs of a few px, which a merge with
    their nucleus costs one FN). An *edge fragment* is an unmatched (IoU < 0.5) predicted
    object smaller than 200 px (a third of the median nucleus) touching the image border.
    """
    nt, npred = int(truth.max()), int(pred.max())
    out = np.zeros(4, np.int64)
    if npred == 0:
        return out
    at = np.bincount(truth.ravel(), minlength=nt + 1)
    ap = np.bincount(pred.ravel(), minlength=npred + 1)
    both = (truth > 0) & (pred > 0)
    key = truth[both].astype(np.int64) * (npred + 1) + pred[both]
    pairs, inter = np.unique(key, return_counts=True)
    t, p = pairs // (npred + 1), pairs % (npred + 1)
    owned_t = inter > 0.5 * at[t]  # truth t belongs to pred p
    owned_p = inter > 0.5 * ap[p]  # pred p belongs to truth t
    out[0] = int((np.bincount(p[owned_t], minlength=npred + 1) >= 2).sum())
    big = owned_t & (at[t] >= 100)
    out[1] = int((np.bincount(p[big], minlength=npred + 1) >= 2).sum())
    out[2] = int((np.bincount(t[owned_p], minlength=nt + 1) >= 2).sum())
    matched = np.zeros(npred + 1, bool)
    matched[p[inter / (at[t] + ap[p] - inter) >= 0.5]] = True
    border = np.zeros(npred + 1, bool)
    for edge in (pred[0], pred[-1], pred[:, 0], pred[:, -1]):
        border[edge] = True
    out[3] = int((border & ~matched & (ap < 200))[1:].sum())
    return out


def run(seg: Any, data: list, reps: int = 1) -> tuple[list[np.ndarray], float]:
    preds: list[np.ndarray] = []
    times: list[float] = []
    for _name, image, _truth in data:
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            out = seg(image)
            best = min(best, time.perf_counter() - t0)
        preds.append(out)
        times.append(best)
    return preds, 1000 * statistics.median(times)


def report_line(label: str, data: list, preds: list[np.ndarray]) -> None:
    sets = {
        f"tune (first {N_TUNE})": range(N_TUNE),
        f"held-out ({len(data) - N_TUNE})": range(N_TUNE, len(data)),
        f"all ({len(data)})": range(len(data)),
    }
    for what, idx in sets.items():
        f1, ap, (tp, fp, fn) = score([(data[i][2], preds[i]) for i in idx])
        kinds = sum(error_kinds(data[i][2], preds[i]) for i in idx)
        print(
            f"{label:<11} {what:<16} F1@0.5 {f1:.3f}  mean AP {ap:.3f}  TP {tp} FP {fp} FN {fn}"
            f"  merges {kinds[0]} (nuclei {kinds[1]}) splits {kinds[2]} edge-fragments {kinds[3]}"
        )
    empty = [p for (n, _, _), p in zip(data, preds, strict=True) if n.startswith(EMPTY)]
    if empty:
        print(f"{label:<11} empty field      {int(empty[0].max())} objects predicted (0 true)")


def main() -> None:
    from quantscope.analysis._segment import NucleiParams, segment_nuclei

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", action="store_true", help="tune on the first 10 images")
    parser.add_argument(
        "--methods", action="store_true", help="F1 / mean AP of each threshold_method"
    )
    args = parser.parse_args()
    data = load()
    tune = data[:N_TUNE]
    print(f"BBBC039 subset: {len(data)} images, tuning on the first {N_TUNE} sorted by name:")
    print("  " + ", ".join(n.split("_w")[0] for n, _, _ in tune))

    if args.grid:
        # one parameter at a time around the defaults (a coordinate search)
        variations: dict[str, list[Any]] = {
            "threshold_method": ["otsu"],
            "threshold_correction": [0.6, 0.7, 0.9, 1.0],
            "smoothing_sigma_um": [0.33, 1.0],
            "intensity_weight": [0.0, 0.3, 0.4, 0.6, 0.7],
            "marker_smoothing_um": [0.65, 2.0],
            "h_um": [0.2, 0.5, 0.65],
            "refine_fraction": [0.0, 0.2, 0.25, 0.35, 0.4],
            "min_contrast_snr": [3.0, 10.0],
            "min_diameter_um": [2.5, 4.5],
            "border_min_diameter_um": [3.0, 6.0],
        }
        trials: list[dict[str, Any]] = [{}]
        trials += [{k: v} for k, values in variations.items() for v in values]
        for kw in trials:
            params = NucleiParams(**kw)
            preds, _ = run(lambda im, p=params: segment_nuclei(im, p), tune)
            f1, ap, (tp, fp, fn) = score([(t, p) for (_, _, t), p in zip(tune, preds, strict=True)])
            print(f"F1 {f1:.4f}  AP {ap:.4f}  TP {tp} FP {fp} FN {fn}  {kw or 'defaults'}")
        return

    if args.methods:
        for method in ("li", "otsu", "local"):
            params = NucleiParams(threshold_method=method)
            preds, ms = run(lambda im, p=params: segment_nuclei(im, p), data)
            report_line(method, data, preds)
            print(f"{method:<11} {ms:.0f} ms/image")
        return

    # textbook peer: its free parameters tuned on the same 10 images
    best = None
    for sigma, md, ma in itertools.product((1.0, 2.0), (5, 7, 9), (30, 60)):
        preds, _ = run(lambda im, s=sigma, d=md, a=ma: textbook(im, s, d, a), tune)
        f1 = score([(t, p) for (_, _, t), p in zip(tune, preds, strict=True)])[0]
        if best is None or f1 > best[0]:
            best = (f1, sigma, md, ma)
    assert best is not None
    _, sigma, md, ma = best
    print(f"textbook tuned on the first {N_TUNE}: sigma {sigma}, min_distance {md}, min_area {ma}")
    ours, ms_ours = run(segment_nuclei, data, reps=2)
    peer, ms_peer = run(lambda im: textbook(im, sigma, md, ma), data, reps=2)
    report_line("quantscope", data, ours)
    report_line("textbook", data, peer)
    print(
        f"speed (one core, median over {len(data)} images of 520x696): quantscope "
        f"{ms_ours:.0f} ms/image, textbook {ms_peer:.0f} ms/image, ratio {ms_ours / ms_peer:.2f}x"
    )
    cells_vs_cellprofiler()


def cells_vs_cellprofiler() -> None:
    """Propagation on ExampleHuman: quantscope vs CellProfiler's centrosome.propagate."""
    import tifffile

    from quantscope.analysis._segment import CellParams, NucleiParams, segment_cells
    from quantscope.analysis._segment import segment_nuclei as seg

    try:
        from centrosome.propagate import propagate
    except ImportError:
        print("cells: centrosome (CellProfiler's propagate) is not installed; skipped")
        return
    folder = DATA.parent / "cellprofiler_examples" / "ExampleHuman" / "images"
    stem = "AS_09125_050116030001_D03f00"
    dna = tifffile.imread(folder / f"{stem}d0.tif")
    body = tifffile.imread(folder / f"{stem}d2.tif")
    nuclei = seg(dna, NucleiParams(min_diameter_um=8, max_diameter_um=80, exclude_border=True), 1.0)
    params = CellParams(fill_holes=False)
    times_q, times_cp = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        cells = segment_cells(nuclei, body, params, pixel_size_um=1.0)
        times_q.append(time.perf_counter() - t0)
        mask = cells > 0
        t0 = time.perf_counter()
        reference, _ = propagate(body.astype(np.float64) / 255.0, nuclei, mask, 0.05)
        times_cp.append(time.perf_counter() - t0)
    agree = float((reference[mask] == cells[mask]).mean())
    q, cp = 1000 * min(times_q), 1000 * min(times_cp)
    print(
        f"cells (ExampleHuman 512x512, {int(nuclei.max())} nuclei): quantscope segment_cells "
        f"{q:.0f} ms (threshold + propagation), CellProfiler propagate alone {cp:.0f} ms, "
        f"ratio {q / cp:.2f}x; {100 * agree:.2f} % of the cell pixels get the same label"
    )


if __name__ == "__main__":
    main()
