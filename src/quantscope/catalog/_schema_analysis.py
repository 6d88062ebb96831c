"""Catalog tables for analysis runs, artifacts and provenance (migration 0004);
declared on the shared ``metadata`` of ``_schema_base``.

- ``analysis_runs``: one row per ``quantscope run`` (the PROV activity): pipeline spec and its
  hash, start/end, host, user, software versions, counts.
- ``analysis_artifacts``: every registered output (label image or per-image table), keyed by a
  digest of its inputs' checksums, the tool's name and version and the parameters' hash; the
  file's own SHA-256; the run that generated it (PROV ``wasGeneratedBy``).
- ``analysis_artifact_inputs``: what each artifact was made from (PROV ``used``): an image
  channel (with the checksum of its sources), another artifact or an illumination profile.
- ``analysis_steps``: what each run did for each image and step: computed, reused (an artifact
  with the same key existed), failed (with the error and its reason) or skipped.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

__all__ = ["analysis_artifact_inputs", "analysis_artifacts", "analysis_runs", "analysis_steps"]

analysis_runs = Table(
    "analysis_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline_name", String(255), nullable=False),
    Column("spec_json", Text, nullable=False),  # the normalized pipeline spec (JSON)
    Column("spec_hash", String(64), nullable=False),
    Column("spec_path", Text, nullable=True),
    Column("selection", Text, nullable=True),  # the --where query, if any
    Column("status", String(16), nullable=False),  # running, completed, failed, interrupted
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("host", String(255), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("scheduler", String(255), nullable=False),
    Column("software_json", Text, nullable=False),  # {package: version}
    Column("n_images", Integer, nullable=False),
    Column("n_computed", Integer, nullable=False),
    Column("n_reused", Integer, nullable=False),
    Column("n_failed", Integer, nullable=False),
    Index(None, "spec_hash"),
)

analysis_artifacts = Table(
    "analysis_artifacts",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # labels, table
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(64), nullable=False),
    Column("step_key", String(64), nullable=False),  # the key of the step that made it
    Column("output", String(64), nullable=False),
    Column("tool", String(64), nullable=False),
    Column("tool_version", String(32), nullable=False),
    Column("params_json", Text, nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("path", Text, nullable=False),  # relative to the repository root
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("n_objects", Integer, nullable=True),
    Column(
        "run_id", String(32), ForeignKey("analysis_runs.id", ondelete="RESTRICT"), nullable=False
    ),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Index(None, "image_id"),
    Index(None, "run_id"),
    Index(None, "path"),
    Index(None, "step_key"),
)

analysis_artifact_inputs = Table(
    "analysis_artifact_inputs",
    metadata,
    Column(
        "artifact_key",
        String(64),
        ForeignKey("analysis_artifacts.key", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role", String(64), primary_key=True),  # the tool's input name (+ "[i]" for lists)
    Column("kind", String(16), nullable=False),  # channel, artifact, profile
    Column("ref", Text, nullable=False),  # image_id:channel, artifact key, profile path
    Column("sha256", String(64), nullable=False),  # checksum of what was used
)

analysis_steps = Table(
    "analysis_steps",
    metadata,
    Column(
        "run_id", String(32), ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("step", String(64), primary_key=True),
    Column("tool", String(64), nullable=False),
    Column("tool_version", String(32), nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # computed, reused, failed, skipped
    Column("error_type", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("seconds", Float, nullable=True),
    Index(None, "status"),
    Index(None, "key"),
)
