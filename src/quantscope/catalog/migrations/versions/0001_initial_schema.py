"""Initial schema: plates, images, channels, source files and the stored-file manifest.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("store_path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plates")),
        sa.UniqueConstraint("name", name=op.f("uq_plates_name")),
    )
    op.create_table(
        "source_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("reader", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_source_files_sha256")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("plate_id", sa.Integer(), nullable=True),
        sa.Column("plate_row", sa.Integer(), nullable=True),
        sa.Column("plate_column", sa.Integer(), nullable=True),
        sa.Column("field", sa.Integer(), nullable=True),
        sa.Column("well", sa.String(length=8), nullable=True),
        sa.Column("size_t", sa.Integer(), nullable=False),
        sa.Column("size_c", sa.Integer(), nullable=False),
        sa.Column("size_z", sa.Integer(), nullable=False),
        sa.Column("size_y", sa.Integer(), nullable=False),
        sa.Column("size_x", sa.Integer(), nullable=False),
        sa.Column("dtype", sa.String(length=16), nullable=False),
        sa.Column("physical_size_x_um", sa.Float(), nullable=True),
        sa.Column("physical_size_y_um", sa.Float(), nullable=True),
        sa.Column("physical_size_z_um", sa.Float(), nullable=True),
        sa.Column("time_increment_s", sa.Float(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("instrument_manufacturer", sa.Text(), nullable=True),
        sa.Column("instrument_model", sa.Text(), nullable=True),
        sa.Column("microscope_type", sa.String(length=64), nullable=True),
        sa.Column("objective_manufacturer", sa.Text(), nullable=True),
        sa.Column("objective_model", sa.Text(), nullable=True),
        sa.Column("objective_magnification", sa.Float(), nullable=True),
        sa.Column("objective_na", sa.Float(), nullable=True),
        sa.Column("objective_immersion", sa.String(length=64), nullable=True),
        sa.Column("store_path", sa.Text(), nullable=False),
        sa.Column("levels", sa.Integer(), nullable=False),
        sa.Column("bytes_stored", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plate_id"], ["plates.id"], name=op.f("fk_images_plate_id_plates"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint(
            "plate_id",
            "plate_row",
            "plate_column",
            "field",
            name=op.f("uq_images_plate_id_plate_row_plate_column_field"),
        ),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_well"), ["well"], unique=False)

    op.create_table(
        "channels",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("color", sa.String(length=6), nullable=True),
        sa.Column("excitation_wavelength_nm", sa.Float(), nullable=True),
        sa.Column("emission_wavelength_nm", sa.Float(), nullable=True),
        sa.Column("exposure_time_s", sa.Float(), nullable=True),
        sa.Column("fluor", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_channels_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "idx", name=op.f("pk_channels")),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channels_name"), ["name"], unique=False)

    op.create_table(
        "image_sources",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("scene", sa.Integer(), nullable=False),
        sa.Column("channel_offset", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["source_files.id"],
            name=op.f("fk_image_sources_file_id_source_files"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_sources_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "file_id", "scene", name=op.f("pk_image_sources")),
    )
    with op.batch_alter_table("image_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_sources_file_id"), ["file_id"], unique=False)

    op.create_table(
        "stored_files",
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_stored_files_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "path", name=op.f("pk_stored_files")),
    )


def downgrade() -> None:
    op.drop_table("stored_files")
    with op.batch_alter_table("image_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_sources_file_id"))

    op.drop_table("image_sources")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channels_name"))

    op.drop_table("channels")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_well"))

    op.drop_table("images")
    op.drop_table("source_files")
    op.drop_table("plates")
