"""Leaderboards: methods of one ground-truth set ranked with confidence intervals, and a
self-contained HTML page that shows *why* a method loses.

Ranking. Methods are ordered by the mean over images of the chosen metric (default mean AP,
the DSB 2018 score). Because every method is scored on the same images, the comparison with the
leader uses the **paired** per-image differences: their mean and BCa bootstrap 95 % CI
(:func:`bootstrap_ci`). A method whose difference interval contains 0 is not distinguishable
from the leader on this set and shares rank 1 (shown as ``=1``).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._text import plural
from ..errors import InvalidInput
from ._files import read_labels
from ._instance import InstanceScores, match_instances
from ._sets import load_truth
from ._stats import Estimate, bootstrap_ci

if TYPE_CHECKING:
    from ..catalog import Repository

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
    run: dict[str, Any]
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
        return str(self.run["method"])

    def to_dict(self, metric: str) -> dict[str, Any]:
        """JSON-ready entry (NaN as None)."""
        means = self.run["summary"].get("mean", {})
        return {
            "rank": self.rank,
            "rank_label": self.rank_label,
            "method": self.method,
            "run_id": self.run["id"],
            "tool": self.run["tool"],
            "tool_version": self.run["tool_version"],
            "parameters": self.run["parameters"],
            "source_kind": self.run["source_kind"],
            "source": self.run["source"],
            "created_at": str(self.run["created_at"]),
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

    set: dict[str, Any]
    metric: str
    entries: list[LeaderboardEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready leaderboard."""
        s = {k: v for k, v in self.set.items() if k not in ("items",)}
        s["created_at"] = str(s.get("created_at"))
        s.get("provenance", {}).pop("source_text", None)
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
        latest: dict[str, dict[str, Any]] = {}
        for r in runs:  # oldest first: later runs of a method replace earlier ones
            latest[r["method"]] = r
        runs = list(latest.values())
    board = Leaderboard(set=bset, metric=metric)
    if not runs:
        return board
    scores = repo.bench.scores([r["id"] for r in runs])
    items = [i["name"] for i in bset["items"]]

    def values(run_id: str) -> npt.NDArray[np.float64]:
        per = scores[run_id]
        return np.array([per.get(i, {}).get(metric, np.nan) for i in items], dtype=np.float64)

    rows = []
    for r in runs:
        v = values(r["id"])
        est = bootstrap_ci(v, n_resamples=n_resamples)
        pooled = InstanceScores.from_dict(_pooled_counts(repo, r["id"]))
        rows.append((r, v, est, pooled))
    rows.sort(key=lambda x: (-np.nan_to_num(x[2].value, nan=-np.inf), x[0]["method"]))
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
                per_image=scores[r["id"]],
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
    return pool_instance_scores(InstanceScores.from_dict(x["counts"]) for x in res).to_dict()


# ------------------------------------------------------------------------------ HTML


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _b(v: object) -> str:
    """Escaped text with line-break opportunities after ``_ - . / , =`` and inside camelCase
    (long method names, paths and parameters wrap there rather than anywhere)."""
    return re.sub(r"([_\-./,=]|[a-z](?=[A-Z]))", r"\1<wbr>", _e(v))


def _f(v: float | None, nd: int = 3) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:.{nd}f}"


def _png_uri(rgb: npt.NDArray[np.uint8]) -> str:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colour(t: float) -> str:
    """Red (0) to green (1) through yellow, for score cells."""
    if not math.isfinite(t):
        return "#eee"
    t = min(max(t, 0.0), 1.0)
    r = int(230 if t < 0.5 else 230 - (t - 0.5) * 2 * 140)
    g = int(90 + t * 2 * 110 if t < 0.5 else 200)
    return f"#{r:02x}{g:02x}78"


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


def _clip(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= n else text[: n - 1] + "…"


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
            f"<title>{_e(e.method)}</title>{_e(_clip(e.method, _LABEL_CHARS))}</text>"
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


def _background(repo: Repository, item: dict[str, Any], truth: npt.NDArray[Any]) -> npt.NDArray:
    """Grey background in [0, 1]: the image (first channel, mid z) when available."""
    plane = None
    try:
        if item.get("image_id"):
            from ..io import OmeZarrPlanes

            img = repo.images.get(item["image_id"])
            planes = OmeZarrPlanes(repo.root / img.store_path)
            z = planes.shapes[0][2] // 2
            plane = np.asarray(planes.plane(0, 0, z), dtype=np.float64)
        elif item.get("image_path") and Path(item["image_path"]).is_file():
            import tifffile

            plane = np.asarray(tifffile.imread(item["image_path"]), dtype=np.float64)
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


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1,h2,h3,p,figcaption{overflow-wrap:anywhere}
table{border-collapse:collapse;margin:8px 0 20px}
th,td{border:1px solid #ccc;padding:4px 6px;font-size:13px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.l,th.l{text-align:left;white-space:normal;overflow-wrap:anywhere}
th.m{white-space:normal;overflow-wrap:anywhere;max-width:8em;font-size:12px;vertical-align:bottom}
td.method{min-width:12em;max-width:24em}td.id{text-align:left}td.name{max-width:18em}
.small{font-size:12px;color:#555}.sub{display:block;font-size:11px;color:#555;font-weight:normal}
figure{display:inline-block;margin:6px;vertical-align:top;max-width:100%}
figure img{max-width:100%;height:auto}
figcaption{font-size:12px;max-width:420px}.key span{padding:1px 6px;margin-right:6px}
.wrap{max-width:100%;overflow-x:auto}
.scroll{max-height:520px;max-width:100%;overflow:auto;display:inline-block}
.scroll th{position:sticky;top:0}
"""


def render_leaderboard_html(
    repo: Repository, board: Leaderboard, *, worst: int = 3, max_edge: int = 720
) -> str:
    """The leaderboard as one self-contained HTML page (inline CSS, SVG and PNG)."""
    metric = board.metric
    s = board.set
    items = [i["name"] for i in s["items"]]
    item_rec = {i["name"]: i for i in s["items"]}
    prov = s.get("provenance", {})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>quantscope leaderboard: {_e(s['name'])}</title><style>{_CSS}</style></head>",
        f"<body><h1>Leaderboard: {_e(s['name'])}</h1>",
        f"<p>{_e(s.get('description') or '')}</p>",
        f"<p class='small'>{plural(s['n_items'], 'image')}, "
        f"{plural(s['n_objects'], 'ground-truth object')}. "
        f"License: {_e(s['license'])}. Source: {_e(prov.get('labels_dir') or 'synthetic')}."
        f" Ranked by <b>{_e(metric)}</b>: {_e(_DESCRIPTIONS.get(metric, metric))}; mean over "
        "images with BCa bootstrap 95% CI. Δ vs best: mean paired per-image difference with its "
        "95% CI; '=1' marks methods not distinguishable from the best on this set.</p>",
    ]
    if not board.entries:
        parts.append("<p>No runs yet: score a method with <code>quantscope bench run</code>.</p>")
        parts.append("</body></html>")
        return "".join(parts)

    # ranking table: tool, version and parameters under the method's name, the intervals under
    # their estimates, so that the table fits a 1280 px wide window (long names wrap)
    parts.append(
        "<h2>Ranking</h2><div class='wrap'><table><tr><th>rank</th>"
        "<th class='l'>method<span class='sub'>tool version; parameters</span></th>"
        f"<th>{_e(metric)}<span class='sub'>[95% CI]</span></th><th></th>"
        "<th>Δ vs best<span class='sub'>[95% CI]</span></th>"
        "<th>F1@0.5</th><th>PQ</th><th>SEG</th><th>Dice</th><th>FP</th><th>misses</th>"
        "<th>splits</th><th>merges</th><th class='l'>run</th></tr>"
    )
    for e in board.entries:
        p = e.pooled.summary()
        params = ", ".join(f"{k}={v}" for k, v in e.run["parameters"].items())
        tool = " ".join(str(x) for x in (e.run["tool"], e.run["tool_version"]) if x)
        short = params if len(params) <= 90 else params[:87] + "..."
        parts.append(
            f"<tr><td>{_e(e.rank_label)}</td><td class='l method'><b>{_b(e.method)}</b>"
            + (f"<span class='sub'>{_b(tool)}</span>" if tool else "")
            + (f"<span class='sub' title='{_e(params)}'>{_b(short)}</span>" if params else "")
            + f"</td><td>{_f(e.estimate.value)}<span class='sub'>[{_f(e.estimate.low)}, "
            f"{_f(e.estimate.high)}]</span></td>"
            f"<td>{_ci_svg(e.estimate)}</td>"
            f"<td>{_f(e.diff_vs_best.value)}<span class='sub'>[{_f(e.diff_vs_best.low)}, "
            f"{_f(e.diff_vs_best.high)}]</span></td>"
            f"<td>{_f(p['f1'])}</td><td>{_f(p['pq'])}</td><td>{_f(p['seg'])}</td>"
            f"<td>{_f(p['dice'])}</td><td>{p['fp']}</td><td>{p['fn']}</td>"
            f"<td>{p['splits']}</td><td>{p['merges']}</td>"
            f"<td class='small id'>{_e(e.run['id'][:8])}</td></tr>"
        )
    parts.append(
        "</table></div><p class='small'>F1, PQ, SEG, Dice, FP, misses, splits, merges: pooled over "
        "all objects of the set (IoU 0.5).</p>"
    )

    # distributions
    parts.append(f"<h2>Distribution of per-image {_e(metric)}</h2>")
    parts.append(_distribution_svg(board.entries, items, metric))
    parts.append("<p class='small'>Box: quartiles and median; dots: images.</p>")

    # per-image comparison, images where methods disagree most first
    table = np.array(
        [[e.per_image.get(i, {}).get(metric, np.nan) for e in board.entries] for i in items]
    )
    with np.errstate(all="ignore"):
        spread = np.nan_to_num(np.nanmax(table, axis=1) - np.nanmin(table, axis=1), nan=0)
        best = np.nanmax(table, axis=1)
    wins = [int(np.sum(np.isclose(table[:, k], best))) for k in range(len(board.entries))]
    parts.append(
        f"<h2>Per-image comparison ({_e(metric)})</h2><p class='small'>Images ordered by the "
        "spread between methods (largest first). Best on an image: "
        + ", ".join(f"{_e(e.method)} {w}" for e, w in zip(board.entries, wins, strict=True))
        + ".</p><div class='scroll'><table><tr><th class='l'>image</th><th>objects</th>"
        + "".join(
            f"<th class='m' title='{_e(e.method)}'>{_b(e.method)}</th>" for e in board.entries
        )
        + "<th>spread</th></tr>"
    )
    for k in np.argsort(-spread, kind="stable"):
        i = items[k]
        parts.append(
            f"<tr><td class='l name'>{_b(i)}</td><td>{item_rec[i]['n_objects']}</td>"
            + "".join(
                f"<td style='background:{_colour(v)}'>{_f(v)}</td>" for v in table[k].tolist()
            )
            + f"<td>{_f(float(spread[k]))}</td></tr>"
        )
    parts.append("</table></div>")

    # worst images of each method
    parts.append(
        "<h2>Worst images of each method</h2><p class='key small'>"
        "<span style='background:#2e3'>matched</span>"
        "<span style='background:#f33'>false positive</span>"
        "<span style='background:#fd0'>missed</span>"
        "<span style='background:#f0f'>merge</span>"
        "<span style='background:#0ef'>split truth object</span>"
        "(IoU threshold 0.5)</p>"
    )
    truth_cache: dict[str, npt.NDArray[Any]] = {}
    bg_cache: dict[str, npt.NDArray[Any]] = {}
    for e in board.entries:
        results = {r["item"]: r for r in repo.bench.results(e.run["id"])}
        vals = [(e.per_image.get(i, {}).get(metric, np.nan), i) for i in items]
        vals = sorted((v, i) for v, i in vals if math.isfinite(v))[:worst]
        parts.append(f"<h3>{_e(e.method)}</h3>")
        for v, i in vals:
            res = results.get(i)
            if res is None:
                continue
            if i not in truth_cache:
                truth_cache[i] = load_truth(repo, item_rec[i])
                bg_cache[i] = _background(repo, item_rec[i], truth_cache[i])
            truth = truth_cache[i]
            try:
                pred = read_labels(repo.root / res["pred_path"])
            except Exception as exc:
                parts.append(f"<p class='small'>{_e(i)}: prediction not readable ({_e(exc)})</p>")
                continue
            if truth.ndim != 2:  # 3-D: the middle plane
                z = truth.shape[0] // 2
                truth2, pred2 = truth[z], pred[z]
                bg = bg_cache[i] if bg_cache[i].ndim == 2 else np.where(truth2 > 0, 0.35, 0.1)
            else:
                truth2, pred2, bg = truth, pred, bg_cache[i]
            rgb = _downsample(overlay(bg, truth2, pred2), max_edge)
            c = InstanceScores.from_dict(res["counts"]).summary()
            parts.append(
                f"<figure><img src='{_png_uri(rgb)}' alt='overlay of {_e(i)}' "
                f"width='{min(rgb.shape[1], 420)}'><figcaption><b>{_e(i)}</b>: {_e(metric)} "
                f"{_f(v)}; {c['tp']} matched, {plural(c['fp'], 'false positive')}, "
                f"{c['fn']} missed, {c['splits']} split, {plural(c['merges'], 'merge')}"
                "</figcaption></figure>"
            )
    parts.append(
        "<h2>Provenance</h2><div class='wrap'><table><tr><th class='l'>run</th>"
        "<th class='l'>method</th>"
        "<th class='l'>source</th><th class='l'>software</th><th class='l'>when, where</th></tr>"
    )
    for e in board.entries:
        r = e.run
        sw = ", ".join(f"{k} {v}" for k, v in r["software"].items())
        parts.append(
            f"<tr><td class='l small'>{_e(r['id'])}</td><td class='l'>{_b(e.method)}</td>"
            f"<td class='l small'>{_e(r['source_kind'])}: {_b(r['source'])}</td>"
            f"<td class='l small'>{_b(sw)}</td><td class='l small'>{_e(r['created_at'])}, "
            f"{_e(r['user'])}@{_e(r['host'])}</td></tr>"
        )
    parts.append("</table></div><p class='small'>Generated by quantscope.</p></body></html>")
    return "".join(parts)


def write_leaderboard_html(
    repo: Repository, board: Leaderboard, path: str | os.PathLike[str], *, worst: int = 3
) -> Path:
    """Write :func:`render_leaderboard_html` to ``path`` atomically; returns the path."""
    out = Path(path)
    text = render_leaderboard_html(repo, board, worst=worst)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
