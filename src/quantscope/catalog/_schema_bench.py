"""Catalog tables for benchmark ground-truth sets, runs and scores (migration 0005);
declared on the shared ``metadata`` of ``_schema_base``.

- ``bench_sets``: a named ground-truth set with its provenance (where the images and labels
  came from, how they were matched and labelled, synthetic options) and license.
- ``bench_items``: one annotated image of a set: the repository image it was ingested as (or
  the source path and SHA-256 of the image when the set holds references only), and the
  ground-truth label image copied into the repository (``benchmarks/<set>/truth/``) with its
  SHA-256, shape and object count.
- ``bench_runs``: one scoring of a method on a set: tool, version, parameters, where the
  predictions came from, thresholds, software versions, the aggregated scores with bootstrap
  confidence intervals.
- ``bench_results``: per run and item, the stored copy of the prediction (with SHA-256) and the
  counts every instance metric follows from (JSON), so that runs can be pooled and re-read.
- ``bench_scores``: per run, item and metric one value (long format, NULL when undefined), for
  SQL queries and the leaderboard's per-image comparisons.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from ._schema_base import metadata

__all__ = ["bench_items", "bench_results", "bench_runs", "bench_scores", "bench_sets"]

bench_sets = Table(
    "bench_sets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # instance
    Column("description", Text, nullable=True),
    Column("license", Text, nullable=False),
    Column("provenance_json", Text, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("n_objects", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

bench_items = Table(
    "bench_items",
    metadata,
    Column("set_id", Integer, ForeignKey("bench_sets.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("image_id", String(32), ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
    Column("image_path", Text, nullable=True),  # the source image file
    Column("image_sha256", String(64), nullable=True),
    Column("labels_path", Text, nullable=False),  # relative to the repository root
    Column("labels_sha256", String(64), nullable=False),
    Column("source_labels_path", Text, nullable=False),
    Column("shape_json", Text, nullable=False),
    Column("n_objects", Integer, nullable=False),
    Index(None, "image_id"),
)

bench_runs = Table(
    "bench_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("set_id", Integer, ForeignKey("bench_sets.id", ondelete="CASCADE"), nullable=False),
    Column("method", String(255), nullable=False),
    Column("tool", String(255), nullable=False),
    Column("tool_version", String(64), nullable=True),
    Column("parameters_json", Text, nullable=False),
    Column("source_kind", String(16), nullable=False),  # predictions, pipeline
    Column("source", Text, nullable=False),  # predictions folder or pipeline file
    Column("analysis_run_id", String(32), nullable=True),
    Column("thresholds_json", Text, nullable=False),
    Column("software_json", Text, nullable=False),
    Column("host", String(255), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("n_images", Integer, nullable=False),
    Column("summary_json", Text, nullable=False),
    Index(None, "set_id", "method"),
)

bench_results = Table(
    "bench_results",
    metadata,
    Column("run_id", String(32), ForeignKey("bench_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("item", String(255), primary_key=True),
    Column("pred_path", Text, nullable=False),  # relative to the repository root
    Column("pred_sha256", String(64), nullable=False),
    Column("source_pred_path", Text, nullable=True),
    Column("counts_json", Text, nullable=False),
)

bench_scores = Table(
    "bench_scores",
    metadata,
    Column("run_id", String(32), ForeignKey("bench_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("item", String(255), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("value", Float, nullable=True),
    Index(None, "metric", "value"),
)
