"""Quality control: per-channel metric values, per-image status, illumination profiles.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "illumination_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plate_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("channel_name", sa.Text(), nullable=False),
        sa.Column("store_path", sa.Text(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plate_id"],
            ["plates.id"],
            name=op.f("fk_illumination_profiles_plate_id_plates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_illumination_profiles")),
        sa.UniqueConstraint(
            "plate_id", "channel", name=op.f("uq_illumination_profiles_plate_id_channel")
        ),
    )
    op.create_table(
        "quality_metrics",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_quality_metrics_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "channel", "name", name=op.f("pk_quality_metrics")),
    )
    with op.batch_alter_table("quality_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quality_metrics_name_value"), ["name", "value"], unique=False
        )

    op.create_table(
        "quality_status",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_quality_status_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_quality_status")),
    )
    with op.batch_alter_table("quality_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quality_status_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quality_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quality_status_status"))

    op.drop_table("quality_status")
    with op.batch_alter_table("quality_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quality_metrics_name_value"))

    op.drop_table("quality_metrics")
    op.drop_table("illumination_profiles")
