"""Leaderboards: methods of one ground-truth set ranked with confidence intervals, and a
self-contained HTML page that shows *why* a method loses.

Ranking. Methods are ordered by the mean over images of the chosen metric (default mean AP,
the DSB 2018 score). Because every method is scored on the same images, the comparison with the
leader uses the **paired** per-image differences: their mean and BCa bootstrap 95 % CI
(:func:`bootstrap_ci`). A method whose difference interval contains 0 is not distinguishable
from the leader on this set and shares rank 1 (shown as ``=1``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._files import atomic_write
from .._html import Markup, clip, escape, png_data_uri, render
from ..errors import InvalidInput
from ._files import read_labels
from ._instance import InstanceScores, match_instances
from ._sets import load_truth
from ._stats import Estimate, bootstrap_ci

if TYPE_CHECKING:
    from ..catalog import BenchItemRecord, BenchRunRecord, BenchSetRecord, Repository

__all__ = [
    "RANK_METRICS",
    "Leaderboard",
    "LeaderboardEntry",
    "leaderboard",
    "write_leaderboard_html",
]

#: Metrics a leaderboard can rank by (higher is better).
RANK_METRICS: tuple[str, ...] = (
    "mean_ap",
    "ap50",
    "ap75",
    "f1",
    "precision",
    "recall",
    "pq",
    "seg",
    "dice",
)
_DESCRIPTIONS = {
    "mean_ap": "mean over IoU 0.5:0.05:0.95 of TP/(TP+FP+FN) (DSB 2018)",
    "ap50": "TP/(TP+FP+FN) at IoU 0.5",
    "ap75": "TP/(TP+FP+FN) at IoU 0.75",
    "f1": "F1 of object matching at IoU 0.5",
    "precision": "precision at IoU 0.5",
    "recall": "recall at IoU 0.5",
    "pq": "panoptic quality at IoU 0.5",
    "seg": "Cell Tracking Challenge SEG",
    "dice": "Dice of the foreground",
}


@dataclass
class LeaderboardEntry:
    """One method on the leaderboard."""

    rank: int
    tied_with_best: bool
    run: BenchRunRecord
    estimate: Estimate
    diff_vs_best: Estimate
    per_image: dict[str, dict[str, float]]
    pooled: InstanceScores

    position: int = 0

    @property
    def rank_label(self) -> str:
        """``"1"`` for the leader, ``"=1"`` for methods tied with it, else the rank."""
        if self.position == 0:
            return "1"
        return "=1" if self.tied_with_best else str(self.rank)

    @property
    def method(self) -> str:
        """The method's name."""
        return self.run.method

    def to_dict(self, metric: str) -> dict[str, Any]:
        """JSON-ready entry (NaN as None)."""
        means = self.run.summary.get("mean", {})
        return {
            "rank": self.rank,
            "rank_label": self.rank_label,
            "method": self.method,
            "run_id": self.run.id,
            "tool": self.run.tool,
            "tool_version": self.run.tool_version,
            "parameters": self.run.parameters,
            "source_kind": self.run.source_kind,
            "source": self.run.source,
            "created_at": str(self.run.created_at),
            "metric": metric,
            "estimate": self.estimate.to_dict(),
            "diff_vs_best": self.diff_vs_best.to_dict(),
            "tied_with_best": self.tied_with_best,
            "means": means,
            "pooled": self.pooled.to_dict()["summary"],
        }


@dataclass
class Leaderboard:
    """Ranked methods of a set."""

    set: BenchSetRecord
    metric: str
    entries: list[LeaderboardEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready leaderboard."""
        s = {k: v for k, v in self.set.to_dict().items() if k != "items"}
        s["created_at"] = str(self.set.created_at)
        s["provenance"] = {k: v for k, v in self.set.provenance.items() if k != "source_text"}
        return {
            "set": s,
            "metric": self.metric,
            "metric_definition": _DESCRIPTIONS.get(self.metric, self.metric),
            "entries": [e.to_dict(self.metric) for e in self.entries],
        }


def leaderboard(
    repo: Repository,
    set_name: str,
    *,
    metric: str = "mean_ap",
    all_runs: bool = False,
    n_resamples: int = 2000,
) -> Leaderboard:
    """Rank the methods scored on a set.

    Parameters
    ----------
    repo : Repository
        The repository.
    set_name : str
        The ground-truth set.
    metric : str
        One of :data:`RANK_METRICS`.
    all_runs : bool
        Show every run; default the latest run of each method.
    n_resamples : int
        Bootstrap resamples.

    Raises
    ------
    InvalidInput
        Unknown metric.
    NotFound
        No such set.
    """
    if metric not in RANK_METRICS:
        raise InvalidInput(f"metric {metric!r}: rank by one of {', '.join(RANK_METRICS)}")
    bset = repo.bench.get_set(set_name)
    runs = repo.bench.runs(set_name)
    if not all_runs:
        latest: dict[str, BenchRunRecord] = {}
        for r in runs:  # oldest first: later runs of a method replace earlier ones
            latest[r.method] = r
        runs = list(latest.values())
    board = Leaderboard(set=bset, metric=metric)
    if not runs:
        return board
    scores = repo.bench.scores([r.id for r in runs])
    items = [i.name for i in bset.items]

    def values(run_id: str) -> npt.NDArray[np.float64]:
        per = scores[run_id]
        return np.array([per.get(i, {}).get(metric, np.nan) for i in items], dtype=np.float64)

    rows = []
    for r in runs:
        v = values(r.id)
        est = bootstrap_ci(v, n_resamples=n_resamples)
        pooled = InstanceScores.from_dict(_pooled_counts(repo, r.id))
        rows.append((r, v, est, pooled))
    rows.sort(key=lambda x: (-np.nan_to_num(x[2].value, nan=-np.inf), x[0].method))
    best_v = rows[0][1]
    for k, (r, v, est, pooled) in enumerate(rows):
        diff = bootstrap_ci(v - best_v, n_resamples=n_resamples)
        tied = k == 0 or (math.isfinite(diff.low) and diff.low <= 0.0 <= diff.high and diff.n > 1)
        board.entries.append(
            LeaderboardEntry(
                rank=1 if tied else k + 1,
                tied_with_best=tied,
                run=r,
                estimate=est,
                diff_vs_best=diff,
                per_image=scores[r.id],
                pooled=pooled,
                position=k,
            )
        )
    return board


def _pooled_counts(repo: Repository, run_id: str) -> dict[str, Any]:
    from ._instance import pool_instance_scores

    res = repo.bench.results(run_id)
    if not res:
        raise InvalidInput(f"benchmark run {run_id} has no results")
    return pool_instance_scores(InstanceScores.from_dict(x.counts) for x in res).to_dict()


# ------------------------------------------------------------------------------ HTML
# The page is the template leaderboard*.html.j2 of the HTML toolkit (quantscope._html); this
# part gathers what it shows and draws the plots (SVG) and the overlays (PNG).


def _ci_svg(est: Estimate, width: int = 120) -> str:
    if not math.isfinite(est.value):
        return ""

    def x(v: float) -> float:
        return 4 + max(0.0, min(1.0, v)) * (width - 8)

    return (
        f"<svg width='{width}' height='14' role='img' aria-label='CI'>"
        f"<line x1='4' y1='7' x2='{width - 4}' y2='7' stroke='#ddd'/>"
        f"<line x1='{x(est.low):.1f}' y1='7' x2='{x(est.high):.1f}' y2='7' stroke='#357' "
        f"stroke-width='3'/><circle cx='{x(est.value):.1f}' cy='7' r='3.5' fill='#c33'/></svg>"
    )


#: Characters of a method's name beside its row of the distribution plot: at 12 px a
#: character is at most about 8 px wide (``W``, ``m``), so this many fit the 242 px left of it.
_LABEL_CHARS = 30


def _distribution_svg(entries: list[LeaderboardEntry], items: list[str], metric: str) -> str:
    """Strip plot with box (quartiles) of the per-image values of each method."""
    row_h, left, width = 34, 250, 560
    h = row_h * len(entries) + 30
    out = [f"<svg width='{left + width + 20}' height='{h}' class='dist' role='img'>"]
    for k in range(0, 11, 2):
        xx = left + k / 10 * width
        out.append(
            f"<line x1='{xx}' y1='0' x2='{xx}' y2='{h - 20}' stroke='#eee'/>"
            f"<text x='{xx}' y='{h - 6}' font-size='10' text-anchor='middle'>{k / 10:.1f}</text>"
        )
    rng = np.random.default_rng(0)
    for r, e in enumerate(entries):
        y0 = r * row_h + row_h / 2
        vals = np.array([e.per_image.get(i, {}).get(metric, np.nan) for i in items])
        vals = vals[np.isfinite(vals)]
        out.append(
            f"<text x='{left - 8}' y='{y0 + 4}' font-size='12' text-anchor='end'>"
            f"<title>{escape(e.method)}</title>{escape(clip(e.method, _LABEL_CHARS))}</text>"
        )
        if vals.size:
            q1, med, q3 = np.quantile(vals, [0.25, 0.5, 0.75])
            out.append(
                f"<rect x='{left + q1 * width:.1f}' y='{y0 - 9}' width='{(q3 - q1) * width:.1f}' "
                f"height='18' fill='#cde' stroke='#579'/>"
                f"<line x1='{left + med * width:.1f}' y1='{y0 - 9}' x2='{left + med * width:.1f}'"
                f" y2='{y0 + 9}' stroke='#135' stroke-width='2'/>"
            )
            jitter = rng.uniform(-7, 7, vals.size)
            for v, j in zip(vals, jitter, strict=True):
                out.append(
                    f"<circle cx='{left + min(max(v, 0), 1) * width:.1f}' cy='{y0 + j:.1f}' r='2.2'"
                    f" fill='#c33' fill-opacity='0.55'/>"
                )
    out.append("</svg>")
    return "".join(out)


def _background(repo: Repository, item: BenchItemRecord, truth: npt.NDArray[Any]) -> npt.NDArray:
    """Grey background in [0, 1]: the image (first channel, mid z) when available."""
    plane = None
    try:
        if item.image_id:
            from ..io import OmeZarrPlanes

            img = repo.images.get(item.image_id)
            planes = OmeZarrPlanes(repo.root / img.store_path)
            z = planes.shapes[0][2] // 2
            plane = np.asarray(planes.plane(0, 0, z), dtype=np.float64)
        elif item.image_path and Path(item.image_path).is_file():
            import tifffile

            plane = np.asarray(tifffile.imread(item.image_path), dtype=np.float64)
            while plane.ndim > 2:
                plane = plane[plane.shape[0] // 2]
    except Exception:
        plane = None
    if plane is None or plane.shape != truth.shape[-2:]:
        return np.where(truth > 0, 0.35, 0.1)
    lo, hi = np.percentile(plane, [0.5, 99.8])
    return np.clip((plane - lo) / max(hi - lo, 1e-9), 0, 1)


def overlay(
    background: npt.NDArray[np.floating],
    truth: npt.NDArray[np.integer],
    pred: npt.NDArray[np.integer],
    threshold: float = 0.5,
) -> npt.NDArray[np.uint8]:
    """RGB overlay of a prediction on its image and ground truth.

    Colours: outlines of matched predictions green; false-positive predictions red (filled);
    missed truth objects yellow (filled); predictions that merge truth objects magenta
    (filled); truth objects that are split cyan (filled).
    """
    from skimage.segmentation import find_boundaries

    m = match_instances(truth, pred, threshold)
    g = np.clip(background, 0, 1) * 0.85
    rgb = np.stack([g, g, g], axis=-1)

    def fill(mask: npt.NDArray[np.bool_], colour: tuple[float, float, float], a: float) -> None:
        rgb[mask] = rgb[mask] * (1 - a) + np.array(colour) * a

    def edge(labels: npt.NDArray[Any], ids: npt.NDArray[Any], colour: tuple[float, ...]) -> None:
        if ids.size:
            sel = np.isin(labels, ids) & (labels > 0)
            rgb[find_boundaries(np.where(sel, labels, 0), mode="inner")] = colour

    split = np.isin(truth, m.split_truth) & (truth > 0)
    merged = np.isin(pred, m.merged_pred) & (pred > 0)
    missed = np.isin(truth, m.missed) & (truth > 0)
    fps = np.isin(pred, m.false_positives) & (pred > 0)
    # misses and false positives filled; those explained by a split or a merge in their colour
    fill(missed & ~split, (1.0, 0.85, 0.0), 0.45)
    fill(fps & ~merged, (1.0, 0.1, 0.1), 0.45)
    fill(merged, (1.0, 0.0, 1.0), 0.35)
    fill(split, (0.0, 0.9, 1.0), 0.35)
    edge(pred, m.pred, (0.1, 0.9, 0.2))
    edge(pred, m.false_positives, (1.0, 0.1, 0.1))
    edge(truth, m.missed, (1.0, 0.85, 0.0))
    edge(truth, m.split_truth, (0.0, 0.9, 1.0))
    edge(pred, m.merged_pred, (1.0, 0.0, 1.0))
    return np.asarray(np.rint(rgb * 255), dtype=np.uint8)


def _downsample(a: npt.NDArray[Any], edge: int) -> npt.NDArray[Any]:
    step = max(1, math.ceil(max(a.shape[:2]) / edge))
    return a[::step, ::step]


def render_leaderboard_html(
    repo: Repository, board: Leaderboard, *, worst: int = 3, max_edge: int = 720
) -> str:
    """The leaderboard as one self-contained HTML page (inline CSS, SVG and PNG).

    Parameters
    ----------
    repo : Repository
        The repository of the set (for the images and the predictions of the overlays).
    board : Leaderboard
        From :func:`leaderboard`.
    worst : int
        How many of each method's worst images are shown with overlays.
    max_edge : int
        The longest edge of an overlay in pixels (larger images are subsampled).
    """
    metric = board.metric
    bset = board.set
    context: dict[str, Any] = {
        "title": f"quantscope leaderboard: {bset.name}",
        "bset": bset,
        "metric": metric,
        "definition": _DESCRIPTIONS.get(metric, metric),
        "source": bset.provenance.get("labels_dir") or "synthetic",
        "entries": board.entries,
        "ranking": _ranking_rows(board),
    }
    if board.entries:
        items = [i.name for i in bset.items]
        comparison, best_counts = _comparison(board, items)
        context.update(
            distribution=Markup(_distribution_svg(board.entries, items, metric)),
            comparison=comparison,
            best_counts=best_counts,
            worst=_worst_figures(repo, board, items, worst=worst, max_edge=max_edge),
            provenance=[
                (e, ", ".join(f"{k} {v}" for k, v in e.run.software.items())) for e in board.entries
            ],
        )
    return render("leaderboard.html.j2", **context)


def _ranking_rows(board: Leaderboard) -> list[dict[str, Any]]:
    """Per method: its pooled scores, tool and version, parameters (in full and cut to 90
    characters) and the SVG of its confidence interval."""
    rows = []
    for e in board.entries:
        params = ", ".join(f"{k}={v}" for k, v in e.run.parameters.items())
        rows.append(
            {
                "entry": e,
                "pooled": e.pooled.summary(),
                "tool": " ".join(str(x) for x in (e.run.tool, e.run.tool_version) if x),
                "parameters": params,
                "short": params if len(params) <= 90 else params[:87] + "...",
                "ci": Markup(_ci_svg(e.estimate)),
            }
        )
    return rows


def _comparison(
    board: Leaderboard, items: list[str]
) -> tuple[list[dict[str, Any]], list[tuple[LeaderboardEntry, int]]]:
    """The per-image scores of the methods, images where they disagree most first, and how
    many images each method is best on."""
    n_objects = {i.name: i.n_objects for i in board.set.items}
    table = np.array(
        [[e.per_image.get(i, {}).get(board.metric, np.nan) for e in board.entries] for i in items]
    )
    with np.errstate(all="ignore"):
        spread = np.nan_to_num(np.nanmax(table, axis=1) - np.nanmin(table, axis=1), nan=0)
        best = np.nanmax(table, axis=1)
    wins = [int(np.sum(np.isclose(table[:, k], best))) for k in range(len(board.entries))]
    rows = [
        {
            "name": items[k],
            "objects": n_objects[items[k]],
            "scores": table[k].tolist(),
            "spread": float(spread[k]),
        }
        for k in np.argsort(-spread, kind="stable")
    ]
    return rows, list(zip(board.entries, wins, strict=True))


def _worst_figures(
    repo: Repository, board: Leaderboard, items: list[str], *, worst: int, max_edge: int
) -> list[tuple[LeaderboardEntry, list[dict[str, Any]]]]:
    """Per method, its ``worst`` images with the lowest score: the overlay of the prediction on
    the image and the truth (a PNG data URI) and the counts of the matching, or why the
    prediction could not be read."""
    item_rec = {i.name: i for i in board.set.items}
    truth_cache: dict[str, npt.NDArray[Any]] = {}
    bg_cache: dict[str, npt.NDArray[Any]] = {}
    out = []
    for e in board.entries:
        results = {r.item: r for r in repo.bench.results(e.run.id)}
        vals = [(e.per_image.get(i, {}).get(board.metric, np.nan), i) for i in items]
        vals = sorted((v, i) for v, i in vals if math.isfinite(v))[:worst]
        figures: list[dict[str, Any]] = []
        for v, i in vals:
            res = results.get(i)
            if res is None:
                continue
            if i not in truth_cache:
                truth_cache[i] = load_truth(repo, item_rec[i])
                bg_cache[i] = _background(repo, item_rec[i], truth_cache[i])
            truth = truth_cache[i]
            try:
                pred = read_labels(repo.root / res.pred_path)
            except Exception as exc:
                figures.append({"item": i, "error": str(exc)})
                continue
            if truth.ndim != 2:  # 3-D: the middle plane
                z = truth.shape[0] // 2
                truth2, pred2 = truth[z], pred[z]
                bg = bg_cache[i] if bg_cache[i].ndim == 2 else np.where(truth2 > 0, 0.35, 0.1)
            else:
                truth2, pred2, bg = truth, pred, bg_cache[i]
            rgb = _downsample(overlay(bg, truth2, pred2), max_edge)
            figures.append(
                {
                    "item": i,
                    "error": "",
                    "value": v,
                    "uri": png_data_uri(rgb),
                    "width": min(rgb.shape[1], 420),
                    "counts": InstanceScores.from_dict(res.counts).summary(),
                }
            )
        out.append((e, figures))
    return out


def write_leaderboard_html(
    repo: Repository, board: Leaderboard, path: str | os.PathLike[str], *, worst: int = 3
) -> Path:
    """Write :func:`render_leaderboard_html` to ``path`` atomically; returns the path."""
    out = Path(path)
    text = render_leaderboard_html(repo, board, worst=worst)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, text)
    return out
