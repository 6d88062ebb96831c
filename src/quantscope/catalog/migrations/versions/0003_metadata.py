"""Metadata standards: annotations (key-value pairs, tags, ontology terms) and the columns of
the full metadata model on images and channels (objective, environment, stage, channel
acquisition settings).

Revision ID: 0003
Revises: 0002
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


_IMAGE_COLUMNS: list[tuple[str, Any]] = [
    ("objective_correction", sa.String(length=32)),
    ("objective_calibrated_magnification", sa.Float()),
    ("objective_working_distance_um", sa.Float()),
    ("objective_medium", sa.String(length=16)),
    ("objective_refractive_index", sa.Float()),
    ("significant_bits", sa.Integer()),
    ("description", sa.Text()),
    ("stage_x_um", sa.Float()),
    ("stage_y_um", sa.Float()),
    ("stage_z_um", sa.Float()),
    ("stage_label", sa.Text()),
    ("environment_temperature_c", sa.Float()),
    ("environment_air_pressure_mbar", sa.Float()),
    ("environment_humidity_percent", sa.Float()),
    ("environment_co2_percent", sa.Float()),
]
_CHANNEL_COLUMNS: list[tuple[str, Any]] = [
    ("illumination_type", sa.String(length=32)),
    ("contrast_method", sa.String(length=32)),
    ("acquisition_mode", sa.String(length=64)),
    ("pinhole_size_um", sa.Float()),
    ("nd_filter", sa.Float()),
    ("light_source_kind", sa.String(length=32)),
    ("light_source_model", sa.Text()),
    ("light_source_wavelength_nm", sa.Float()),
    ("light_source_power_mw", sa.Float()),
    ("light_source_attenuation", sa.Float()),
    ("detector_type", sa.String(length=32)),
    ("detector_model", sa.Text()),
    ("detector_gain", sa.Float()),
    ("detector_offset", sa.Float()),
    ("detector_binning", sa.String(length=8)),
    ("detector_voltage_v", sa.Float()),
    ("detector_read_out_rate_mhz", sa.Float()),
]


def upgrade() -> None:
    # nullable columns added in place (no table copy: existing rows keep NULL)
    for name, type_ in _IMAGE_COLUMNS:
        op.add_column("images", sa.Column(name, type_, nullable=True))
    for name, type_ in _CHANNEL_COLUMNS:
        op.add_column("channels", sa.Column(name, type_, nullable=True))
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("num_value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("curie", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotations")),
        sa.UniqueConstraint(
            "target_kind",
            "target_id",
            "key",
            "value",
            name=op.f("uq_annotations_target_kind_target_id_key_value"),
        ),
    )
    with op.batch_alter_table("annotations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_annotations_key_value"), ["key", "value"])
        batch_op.create_index(batch_op.f("ix_annotations_key_num_value"), ["key", "num_value"])
        batch_op.create_index(batch_op.f("ix_annotations_target_id"), ["target_id"])
    # the query language: acquisition-date ranges through an index
    op.create_index(op.f("ix_images_acquired_at"), "images", ["acquired_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_images_acquired_at"), table_name="images")
    op.drop_table("annotations")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        for name, _ in reversed(_CHANNEL_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("images", schema=None) as batch_op:
        for name, _ in reversed(_IMAGE_COLUMNS):
            batch_op.drop_column(name)
