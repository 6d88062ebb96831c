"""Scoring many images: folders without a repository, and benchmark runs stored with provenance.

Aggregation. Every image gets the instance metrics of :func:`score_instances`; the headline
value of a metric for a method is the **mean over images** (for mean AP this is the Data
Science Bowl 2018 score), with a BCa bootstrap 95 % confidence interval over images
(:func:`bootstrap_ci`). Pooled (micro-averaged) values, which weigh every object equally, are
reported beside them.

Missing counterparts. A truth image without a prediction is an error that names the expected
file, unless ``missing="empty"``: then it is scored as an empty prediction (every object
missed). Predictions without a truth image are listed in ``extra`` and not scored.
"""

from __future__ import annotations

import getpass
import os
import platform
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._text import noun, plural
from ..errors import InvalidInput
from ._files import file_sha256, index_label_files, match_name, read_labels, write_labels
from ._instance import DSB_THRESHOLDS, InstanceScores, pool_instance_scores, score_instances
from ._sets import BENCH_DIR, load_truth
from ._stats import Estimate, bootstrap_ci

if TYPE_CHECKING:
    from ..catalog import BenchItemRecord, BenchResultRecord, Repository
    from ._records import BenchRun

__all__ = [
    "CI_METRICS",
    "PER_IMAGE_METRICS",
    "BenchResult",
    "ItemScore",
    "aggregate",
    "run_benchmark",
    "score_folders",
]

#: Metrics stored per image (keys of :meth:`InstanceScores.summary`).
PER_IMAGE_METRICS: tuple[str, ...] = (
    "mean_ap",
    "ap50",
    "ap75",
    "f1",
    "precision",
    "recall",
    "pq",
    "sq",
    "seg",
    "dice",
    "foreground_iou",
    "n_truth",
    "n_pred",
    "count_error",
    "tp",
    "fp",
    "fn",
    "splits",
    "merges",
)
#: Metrics aggregated as a mean over images with a bootstrap confidence interval.
CI_METRICS: tuple[str, ...] = (
    "mean_ap",
    "ap50",
    "ap75",
    "f1",
    "precision",
    "recall",
    "pq",
    "seg",
    "dice",
    "count_error",
)
_MISSING = ("error", "empty")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ItemScore:
    """Scores of one image."""

    item: str
    scores: InstanceScores
    truth_path: str | None = None
    pred_path: str | None = None
    missing_prediction: bool = False


@dataclass
class BenchResult:
    """Scores of a method on a set of images.

    Attributes
    ----------
    items : list of ItemScore
        Per image, in item order.
    aggregate : dict of str to Estimate
        Mean over images and bootstrap CI of each metric in :data:`CI_METRICS`.
    pooled : InstanceScores
        Counts summed over images (micro-average).
    extra : list of str
        Prediction files without a truth image (not scored).
    """

    items: list[ItemScore]
    aggregate: dict[str, Estimate]
    pooled: InstanceScores
    extra: list[str] = field(default_factory=list)

    @property
    def per_image(self) -> dict[str, dict[str, float]]:
        """{item: {metric: value}} of :data:`PER_IMAGE_METRICS`."""
        return {
            it.item: {m: it.scores.summary().get(m, float("nan")) for m in PER_IMAGE_METRICS}
            for it in self.items
        }

    def summary(self) -> dict[str, Any]:
        """JSON-ready aggregate: estimates with CIs, pooled values, counts."""
        pooled = self.pooled.to_dict()["summary"]
        return {
            "n_images": len(self.items),
            "n_missing_predictions": sum(it.missing_prediction for it in self.items),
            "thresholds": list(self.pooled.thresholds),
            "mean": {k: v.to_dict() for k, v in self.aggregate.items()},
            "pooled": pooled,
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary plus per-image values (NaN as None) and the extra files."""
        per = {
            k: {m: (None if not np.isfinite(v) else v) for m, v in vals.items()}
            for k, vals in self.per_image.items()
        }
        return {**self.summary(), "per_image": per, "extra_predictions": self.extra}


def aggregate(
    items: Sequence[ItemScore], *, n_resamples: int = 2000, seed: int = 0
) -> tuple[dict[str, Estimate], InstanceScores]:
    """Mean over images with BCa bootstrap 95 % CIs for :data:`CI_METRICS`, and pooled counts.

    Raises
    ------
    InvalidInput
        No items.
    """
    if not items:
        raise InvalidInput("no images were scored")
    summaries = [it.scores.summary() for it in items]
    est = {
        m: bootstrap_ci(
            [s.get(m, float("nan")) for s in summaries], n_resamples=n_resamples, seed=seed
        )
        for m in CI_METRICS
    }
    return est, pool_instance_scores(it.scores for it in items)


def _empty_like(truth: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    return np.zeros(truth.shape, dtype=np.uint8)


def _pred_files(
    pred_dir: Path, names: Sequence[str], match: str, missing: str
) -> tuple[dict[str, Path | None], list[str]]:
    if missing not in _MISSING:
        raise InvalidInput(f"missing: {missing!r} is not one of {', '.join(_MISSING)}")
    index = index_label_files(pred_dir, "predictions")
    found: dict[str, Path | None] = {}
    absent = []
    for n in names:
        key = match_name(match, n)
        if key in index:
            found[n] = index.pop(key)
        else:
            absent.append(f"{key} (for {n})")
            found[n] = None
    if absent and missing == "error":
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise InvalidInput(
            f"predictions folder {pred_dir}: no prediction for {len(absent)} of {len(names)} "
            f"ground-truth {noun(len(names), 'image')}: {shown}; add them, fix --match, or "
            "score them as empty predictions (--missing empty)"
        )
    return found, sorted(p.name for p in index.values())


def score_folders(
    truth_dir: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    *,
    match: str = "{name}",
    thresholds: Sequence[float] = DSB_THRESHOLDS,
    missing: str = "error",
    n_resamples: int = 2000,
    jobs: int = 1,
    progress: Progress | None = None,
) -> BenchResult:
    """Score every label image of ``pred_dir`` against its counterpart in ``truth_dir``.

    Parameters
    ----------
    truth_dir, pred_dir : path
        Folders of instance label images (TIFF, PNG, ``.npy``).
    match : str
        Stem of the prediction of truth image ``{name}``, e.g. ``"{name}_cp_masks"``.
    thresholds : sequence of float
        IoU thresholds.
    missing : {"error", "empty"}
        What a truth image without prediction means (see module notes).
    n_resamples : int
        Bootstrap resamples of the confidence intervals.
    jobs : int
        Threads reading and scoring images.
    progress : callable, optional
        ``progress("score", done, total)``.

    Returns
    -------
    BenchResult

    Raises
    ------
    InvalidInput
        Unpaired files, mismatched shapes or non-integer labels, each naming the file.
    NotFound
        A folder does not exist.
    """
    truth = index_label_files(Path(truth_dir), "truth")
    preds, extra = _pred_files(Path(pred_dir), list(truth), match, missing)

    def one(pair: tuple[str, Path]) -> ItemScore:
        name, tpath = pair
        t = read_labels(tpath)
        ppath = preds[name]
        p = read_labels(ppath) if ppath is not None else _empty_like(t)
        s = score_instances(
            t, p, thresholds, names=(str(tpath), str(ppath) if ppath else f"<no file for {name}>")
        )
        return ItemScore(name, s, str(tpath), str(ppath) if ppath else None, ppath is None)

    items: list[ItemScore] = []
    if jobs > 1:  # reading and scoring release the GIL for most of their time
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(jobs) as pool:
            for it in pool.map(one, truth.items()):
                items.append(it)
                if progress:
                    progress("score", len(items), len(truth))
    else:
        for pair in truth.items():
            items.append(one(pair))
            if progress:
                progress("score", len(items), len(truth))
    est, pooled = aggregate(items, n_resamples=n_resamples)
    return BenchResult(items, est, pooled, extra)


def _software() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("quantscope", "numpy", "scipy", "scikit-image"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "unknown"
    out["python"] = platform.python_version()
    return out


def run_benchmark(
    repo: Repository,
    set_name: str,
    predictions: str | os.PathLike[str] | Mapping[str, npt.NDArray[Any]],
    *,
    method: str | None = None,
    tool: str | None = None,
    tool_version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    match: str = "{name}",
    missing: str = "error",
    thresholds: Sequence[float] = DSB_THRESHOLDS,
    source_kind: str = "predictions",
    source: str | None = None,
    analysis_run_id: str | None = None,
    n_resamples: int = 2000,
    progress: Progress | None = None,
) -> BenchRun:
    """Score a method's predictions on every image of a set and store the run.

    Parameters
    ----------
    repo : Repository
        The repository holding the set.
    set_name : str
        The ground-truth set.
    predictions : path or mapping
        A folder of label images (matched to items by ``match``), or {item: label array}
        (from a pipeline run).
    method : str, optional
        Name on the leaderboard; default ``tool`` plus its parameters, or the folder name.
    tool, tool_version : str, optional
        What produced the predictions (e.g. ``"cellpose"``, ``"3.0.10"``).
    parameters : mapping, optional
        The tool's parameters, stored as provenance.
    match, missing, thresholds, n_resamples
        As for :func:`score_folders`.
    source_kind, source, analysis_run_id
        Where predictions came from (``"predictions"`` + folder, or ``"pipeline"`` + spec
        file and the analysis run id).

    Returns
    -------
    BenchRun
        The stored run (:meth:`Repository.bench.get_run`), with ``extra`` prediction files and
        the :class:`BenchResult` as ``result``.

    Raises
    ------
    InvalidInput
        Missing predictions (named) unless ``missing="empty"``, mismatched shapes or
        non-integer labels (named).
    NotFound
        No such set.
    IntegrityError
        A stored ground-truth file changed since registration.
    """
    items = repo.bench.get_set(set_name).items
    names = [i.name for i in items]
    given, pred_paths, extra, src = _predictions(predictions, names, set_name, match, missing)
    src = source or src
    run_id = uuid.uuid4().hex
    thr = tuple(float(t) for t in thresholds)
    rel_dir = Path(BENCH_DIR) / set_name / "runs" / run_id
    staging = repo.root / BENCH_DIR / set_name / "runs" / f".{run_id}.tmp"
    final = repo.root / rel_dir
    try:
        scored, results = _score_items(
            repo, items, given, pred_paths, thr, staging, rel_dir, progress
        )
        est, pooled = aggregate(scored, n_resamples=n_resamples)
        result = BenchResult(scored, est, pooled, extra)
        params = dict(parameters or {})
        label = _method_label(method, tool, params, src)
        run = {
            "id": run_id,
            "set": set_name,
            "method": label,
            "tool": tool or label,
            "tool_version": tool_version,
            "parameters": params,
            "source_kind": source_kind,
            "source": src,
            "analysis_run_id": analysis_run_id,
            "thresholds": list(thr),
            "software": _software(),
            "host": platform.node(),
            "user": getpass.getuser(),
            "created_at": datetime.now(UTC),
            "summary": result.summary(),
        }
        with repo.write_lock():
            staging.rename(final)
            try:
                repo.bench.add_run(run, results, result.per_image)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    from ._records import BenchRun

    return BenchRun.of(repo.bench.get_run(run_id), extra=extra, result=result)


def _predictions(
    predictions: str | os.PathLike[str] | Mapping[str, npt.NDArray[Any]],
    names: Sequence[str],
    set_name: str,
    match: str,
    missing: str,
) -> tuple[dict[str, Any], dict[str, Path | None], list[str], str]:
    """(arrays given, prediction file per item, extra predictions, source) of ``predictions``:
    a mapping of arrays or a folder of label images."""
    if isinstance(predictions, Mapping):
        if missing not in _MISSING:
            raise InvalidInput(f"missing: {missing!r} is not one of {', '.join(_MISSING)}")
        given = dict(predictions)
        absent = [n for n in names if n not in given]
        if absent and missing == "error":
            raise InvalidInput(
                f"predictions: none for {plural(len(absent), 'item')} of set {set_name!r}: "
                + ", ".join(absent[:5])
            )
        return given, dict.fromkeys(names), sorted(set(given) - set(names)), "<arrays>"
    if not isinstance(predictions, str | os.PathLike):
        raise InvalidInput(
            "predictions: expected a folder of label images or a mapping of item name to "
            f"label array, got {type(predictions).__name__}"
        )
    pred_dir = Path(predictions).resolve()
    pred_paths, extra = _pred_files(pred_dir, names, match, missing)
    return {}, pred_paths, extra, str(pred_dir)


def _score_items(
    repo: Repository,
    items: Sequence[BenchItemRecord],
    given: Mapping[str, Any],
    pred_paths: Mapping[str, Path | None],
    thr: tuple[float, ...],
    staging: Path,
    rel_dir: Path,
    progress: Progress | None,
) -> tuple[list[ItemScore], list[dict[str, Any]]]:
    """Score every item against its prediction and copy the prediction into ``staging``:
    the scores and the rows to store per item."""
    scored: list[ItemScore] = []
    results = []
    for k, it in enumerate(items):
        n = it.name
        truth = load_truth(repo, it)
        ppath = pred_paths.get(n)
        if n in given:
            pred = np.asarray(given[n])
            pname = f"prediction for {n}"
        elif ppath is not None:
            pred = read_labels(ppath)
            pname = str(ppath)
        else:
            pred = _empty_like(truth)
            pname = f"<no prediction for {n}>"
        s = score_instances(truth, pred, thr, names=(f"ground truth of {n}", pname))
        sha = write_labels(staging / f"{n}.tif", np.asarray(pred))
        scored.append(ItemScore(n, s, it.labels_path, pname, pname.startswith("<no")))
        results.append(
            {
                "item": n,
                "pred_path": (rel_dir / f"{n}.tif").as_posix(),
                "pred_sha256": sha,
                "source_pred_path": str(ppath) if ppath is not None else None,
                "counts": s.to_dict(),
            }
        )
        if progress:
            progress("score", k + 1, len(items))
    return scored, results


def _method_label(method: str | None, tool: str | None, params: Mapping[str, Any], src: str) -> str:
    """The leaderboard name: ``method``, else the tool with its parameters, else the source."""
    if method:
        return method
    if tool and params:
        return f"{tool}(" + ", ".join(f"{a}={b}" for a, b in params.items()) + ")"
    return tool or Path(src).name or "predictions"


def verify_prediction(repo: Repository, result: BenchResultRecord) -> bool:
    """Whether a run's stored prediction copy still has its recorded SHA-256."""
    path = repo.root / result.pred_path
    return path.is_file() and file_sha256(path) == result.pred_sha256
