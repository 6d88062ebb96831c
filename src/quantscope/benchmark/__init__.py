"""Benchmarks: standard segmentation and classification metrics, ground-truth sets, runs,
leaderboards.

Metrics are pure functions on arrays (:func:`score_instances`, :func:`match_instances`,
:func:`score_semantic`, :func:`score_classification`, :func:`bootstrap_ci`); every definition
and its reference is in the docstrings. :func:`score_folders` scores folders of label images;
:func:`add_set` / :func:`add_synthetic_set` register ground-truth sets in a repository,
:func:`run_benchmark` scores a method on a set and stores the run with its provenance
(:func:`run_and_score` runs a pipeline on the set's images first), and
:func:`leaderboard` / :func:`write_leaderboard_html` compare the methods of a set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._classification import ClassificationScores, confusion_matrix, score_classification
from ._files import LABEL_SUFFIXES, pair_folders, read_labels, write_labels
from ._instance import (
    DSB_THRESHOLDS,
    InstanceScores,
    Matching,
    match_instances,
    pool_instance_scores,
    score_instances,
)
from ._leaderboard import (
    RANK_METRICS,
    Leaderboard,
    LeaderboardEntry,
    leaderboard,
    overlay,
    render_leaderboard_html,
    write_leaderboard_html,
)
from ._overlap import Overlap, as_label_image, overlap_table
from ._pipeline import PipelinePredictions, pipeline_predictions, run_and_score
from ._runs import (
    CI_METRICS,
    PER_IMAGE_METRICS,
    BenchResult,
    ItemScore,
    aggregate,
    run_benchmark,
    score_folders,
)
from ._semantic import SemanticScores, label_mask, score_semantic
from ._sets import MASK_MODES, add_set, add_synthetic_set, load_truth
from ._stats import Estimate, bootstrap_ci

if TYPE_CHECKING:
    from ._records import BenchRun, BenchSet

__all__ = [
    "CI_METRICS",
    "DSB_THRESHOLDS",
    "LABEL_SUFFIXES",
    "MASK_MODES",
    "PER_IMAGE_METRICS",
    "RANK_METRICS",
    "BenchResult",
    "BenchRun",
    "BenchSet",
    "ClassificationScores",
    "Estimate",
    "InstanceScores",
    "ItemScore",
    "Leaderboard",
    "LeaderboardEntry",
    "Matching",
    "Overlap",
    "PipelinePredictions",
    "SemanticScores",
    "add_set",
    "add_synthetic_set",
    "aggregate",
    "as_label_image",
    "bootstrap_ci",
    "confusion_matrix",
    "label_mask",
    "leaderboard",
    "load_truth",
    "match_instances",
    "overlap_table",
    "overlay",
    "pair_folders",
    "pipeline_predictions",
    "pool_instance_scores",
    "read_labels",
    "render_leaderboard_html",
    "run_and_score",
    "run_benchmark",
    "score_classification",
    "score_folders",
    "score_instances",
    "score_semantic",
    "write_labels",
    "write_leaderboard_html",
]


def __getattr__(name: str) -> Any:
    """:class:`BenchRun` and :class:`BenchSet` are loaded when asked for: they import the
    catalog (SQLAlchemy), which scoring folders does not need."""
    if name in ("BenchRun", "BenchSet"):
        from . import _records

        value = getattr(_records, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
