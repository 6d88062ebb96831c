"""Benchmarks: standard segmentation and classification metrics, ground-truth sets, runs,
leaderboards.

Metrics are pure functions on arrays (:func:`score_instances`, :func:`match_instances`,
:func:`score_semantic`, :func:`score_classification`, :func:`bootstrap_ci`); every definition
and its reference is in the docstrings.
"""

from __future__ import annotations

from ._classification import ClassificationScores, confusion_matrix, score_classification
from ._instance import (
    DSB_THRESHOLDS,
    InstanceScores,
    Matching,
    match_instances,
    pool_instance_scores,
    score_instances,
)
from ._overlap import Overlap, as_label_image, overlap_table
from ._semantic import SemanticScores, label_mask, score_semantic
from ._stats import Estimate, bootstrap_ci

__all__ = [
    "DSB_THRESHOLDS",
    "ClassificationScores",
    "Estimate",
    "InstanceScores",
    "Matching",
    "Overlap",
    "SemanticScores",
    "as_label_image",
    "bootstrap_ci",
    "confusion_matrix",
    "label_mask",
    "match_instances",
    "overlap_table",
    "pool_instance_scores",
    "score_classification",
    "score_instances",
    "score_semantic",
]
