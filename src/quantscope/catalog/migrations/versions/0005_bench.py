"""Benchmarks: ground-truth sets, benchmark runs and scores.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bench_sets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("license", sa.Text(), nullable=False),
        sa.Column("provenance_json", sa.Text(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("n_objects", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bench_sets")),
        sa.UniqueConstraint("name", name=op.f("uq_bench_sets_name")),
    )
    op.create_table(
        "bench_items",
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=True),
        sa.Column("image_path", sa.Text(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("labels_path", sa.Text(), nullable=False),
        sa.Column("labels_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_labels_path", sa.Text(), nullable=False),
        sa.Column("shape_json", sa.Text(), nullable=False),
        sa.Column("n_objects", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["bench_sets.id"],
            name=op.f("fk_bench_items_set_id_bench_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_bench_items_image_id_images"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("set_id", "name", name=op.f("pk_bench_items")),
    )
    with op.batch_alter_table("bench_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bench_items_image_id"), ["image_id"])

    op.create_table(
        "bench_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=255), nullable=False),
        sa.Column("tool", sa.String(length=255), nullable=False),
        sa.Column("tool_version", sa.String(length=64), nullable=True),
        sa.Column("parameters_json", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("analysis_run_id", sa.String(length=32), nullable=True),
        sa.Column("thresholds_json", sa.Text(), nullable=False),
        sa.Column("software_json", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["bench_sets.id"],
            name=op.f("fk_bench_runs_set_id_bench_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bench_runs")),
    )
    with op.batch_alter_table("bench_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bench_runs_set_id_method"), ["set_id", "method"])

    op.create_table(
        "bench_results",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=255), nullable=False),
        sa.Column("pred_path", sa.Text(), nullable=False),
        sa.Column("pred_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_pred_path", sa.Text(), nullable=True),
        sa.Column("counts_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["bench_runs.id"],
            name=op.f("fk_bench_results_run_id_bench_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "item", name=op.f("pk_bench_results")),
    )
    op.create_table(
        "bench_scores",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("item", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["bench_runs.id"],
            name=op.f("fk_bench_scores_run_id_bench_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "item", "metric", name=op.f("pk_bench_scores")),
    )
    with op.batch_alter_table("bench_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bench_scores_metric_value"), ["metric", "value"])


def downgrade() -> None:
    op.drop_table("bench_scores")
    op.drop_table("bench_results")
    op.drop_table("bench_runs")
    op.drop_table("bench_items")
    op.drop_table("bench_sets")
