"""Analysis runs, artifacts and provenance.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline_name", sa.String(length=255), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("spec_path", sa.Text(), nullable=True),
        sa.Column("selection", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("scheduler", sa.String(length=255), nullable=False),
        sa.Column("software_json", sa.Text(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("n_computed", sa.Integer(), nullable=False),
        sa.Column("n_reused", sa.Integer(), nullable=False),
        sa.Column("n_failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_runs")),
    )
    with op.batch_alter_table("analysis_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analysis_runs_spec_hash"), ["spec_hash"], unique=False)

    op.create_table(
        "analysis_artifacts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=False),
        sa.Column("output", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("tool_version", sa.String(length=32), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("n_objects", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_analysis_artifacts_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analysis_runs.id"],
            name=op.f("fk_analysis_artifacts_run_id_analysis_runs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_analysis_artifacts")),
    )
    with op.batch_alter_table("analysis_artifacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analysis_artifacts_image_id"), ["image_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_analysis_artifacts_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_analysis_artifacts_path"), ["path"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_analysis_artifacts_step_key"), ["step_key"], unique=False
        )

    op.create_table(
        "analysis_artifact_inputs",
        sa.Column("artifact_key", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_key"],
            ["analysis_artifacts.key"],
            name=op.f("fk_analysis_artifact_inputs_artifact_key_analysis_artifacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("artifact_key", "role", name=op.f("pk_analysis_artifact_inputs")),
    )

    op.create_table(
        "analysis_steps",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("tool_version", sa.String(length=32), nullable=False),
        sa.Column("params_hash", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_analysis_steps_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analysis_runs.id"],
            name=op.f("fk_analysis_steps_run_id_analysis_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "image_id", "step", name=op.f("pk_analysis_steps")),
    )
    with op.batch_alter_table("analysis_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_analysis_steps_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_analysis_steps_key"), ["key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("analysis_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_steps_key"))
        batch_op.drop_index(batch_op.f("ix_analysis_steps_status"))
    op.drop_table("analysis_steps")
    op.drop_table("analysis_artifact_inputs")
    with op.batch_alter_table("analysis_artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_artifacts_step_key"))
        batch_op.drop_index(batch_op.f("ix_analysis_artifacts_path"))
        batch_op.drop_index(batch_op.f("ix_analysis_artifacts_run_id"))
        batch_op.drop_index(batch_op.f("ix_analysis_artifacts_image_id"))
    op.drop_table("analysis_artifacts")
    with op.batch_alter_table("analysis_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analysis_runs_spec_hash"))
    op.drop_table("analysis_runs")
