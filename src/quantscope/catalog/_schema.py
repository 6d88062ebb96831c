"""The catalog schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it; a test
checks that the migrations and this module describe the same schema.

The core tables are declared here; those of the analysis, benchmark and access areas live in
``_schema_analysis``, ``_schema_bench`` and ``_schema_access``. All of them are declared on the
one ``metadata`` of ``_schema_base``; this module imports the others so that its ``metadata``
holds every table.
"""

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
    UniqueConstraint,
)

from . import (  # noqa: F401  (their tables join ``metadata``)
    _schema_access,
    _schema_analysis,
    _schema_bench,
)
from ._schema_base import metadata

__all__ = [
    "annotations",
    "channels",
    "illumination_profiles",
    "image_sources",
    "images",
    "metadata",
    "plates",
    "qc_flags",
    "quality_metrics",
    "quality_status",
    "repository_identity",
    "source_files",
    "stored_files",
]

repository_identity = Table(  # one row: the repository this catalog belongs to (0006)
    "repository_identity",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("root", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

plates = Table(
    "plates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("store_path", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("plate_id", Integer, ForeignKey("plates.id", ondelete="RESTRICT"), nullable=True),
    Column("plate_row", Integer, nullable=True),
    Column("plate_column", Integer, nullable=True),
    Column("field", Integer, nullable=True),  # 1-based site number (0-based before 0006)
    Column("well", String(8), nullable=True),
    Column("size_t", Integer, nullable=False),
    Column("size_c", Integer, nullable=False),
    Column("size_z", Integer, nullable=False),
    Column("size_y", Integer, nullable=False),
    Column("size_x", Integer, nullable=False),
    Column("dtype", String(16), nullable=False),
    Column("physical_size_x_um", Float, nullable=True),
    Column("physical_size_y_um", Float, nullable=True),
    Column("physical_size_z_um", Float, nullable=True),
    Column("time_increment_s", Float, nullable=True),
    Column("acquired_at", DateTime(timezone=True), nullable=True),
    Column("instrument_manufacturer", Text, nullable=True),
    Column("instrument_model", Text, nullable=True),
    Column("microscope_type", String(64), nullable=True),
    Column("objective_manufacturer", Text, nullable=True),
    Column("objective_model", Text, nullable=True),
    Column("objective_magnification", Float, nullable=True),
    Column("objective_na", Float, nullable=True),
    Column("objective_immersion", String(64), nullable=True),
    # metadata model of issue 3 (migration 0003); units in the names
    Column("objective_correction", String(32), nullable=True),
    Column("objective_calibrated_magnification", Float, nullable=True),
    Column("objective_working_distance_um", Float, nullable=True),
    Column("objective_medium", String(16), nullable=True),
    Column("objective_refractive_index", Float, nullable=True),
    Column("significant_bits", Integer, nullable=True),
    Column("description", Text, nullable=True),
    Column("stage_x_um", Float, nullable=True),
    Column("stage_y_um", Float, nullable=True),
    Column("stage_z_um", Float, nullable=True),
    Column("stage_label", Text, nullable=True),
    Column("environment_temperature_c", Float, nullable=True),
    Column("environment_air_pressure_mbar", Float, nullable=True),
    Column("environment_humidity_percent", Float, nullable=True),
    Column("environment_co2_percent", Float, nullable=True),
    Column("store_path", Text, nullable=False),
    Column("levels", Integer, nullable=False),
    Column("bytes_stored", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("plate_id", "plate_row", "plate_column", "field"),
    Index(None, "well"),
    Index(None, "acquired_at"),  # date ranges of the query language (migration 0003)
)

channels = Table(
    "channels",
    metadata,
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("color", String(6), nullable=True),
    Column("excitation_wavelength_nm", Float, nullable=True),
    Column("emission_wavelength_nm", Float, nullable=True),
    Column("exposure_time_s", Float, nullable=True),
    Column("fluor", Text, nullable=True),
    # metadata model of issue 3 (migration 0003); units in the names
    Column("illumination_type", String(32), nullable=True),
    Column("contrast_method", String(32), nullable=True),
    Column("acquisition_mode", String(64), nullable=True),
    Column("pinhole_size_um", Float, nullable=True),
    Column("nd_filter", Float, nullable=True),
    Column("light_source_kind", String(32), nullable=True),
    Column("light_source_model", Text, nullable=True),
    Column("light_source_wavelength_nm", Float, nullable=True),
    Column("light_source_power_mw", Float, nullable=True),
    Column("light_source_attenuation", Float, nullable=True),
    Column("detector_type", String(32), nullable=True),
    Column("detector_model", Text, nullable=True),
    Column("detector_gain", Float, nullable=True),
    Column("detector_offset", Float, nullable=True),
    Column("detector_binning", String(8), nullable=True),
    Column("detector_voltage_v", Float, nullable=True),
    Column("detector_read_out_rate_mhz", Float, nullable=True),
    Index(None, "name"),
)

source_files = Table(
    "source_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("format", String(32), nullable=False),
    Column("reader", String(64), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
)

image_sources = Table(
    "image_sources",
    metadata,
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "file_id", Integer, ForeignKey("source_files.id", ondelete="RESTRICT"), primary_key=True
    ),
    Column("scene", Integer, primary_key=True),
    Column("channel_offset", Integer, nullable=False),
    Index(None, "file_id"),
)

stored_files = Table(
    "stored_files",
    metadata,
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
)

quality_metrics = Table(
    "quality_metrics",
    metadata,
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", Integer, primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Float, nullable=True),  # NULL where the metric is undefined (documented NaN)
    Index(None, "name", "value"),
)

quality_status = Table(
    "quality_status",
    metadata,
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(8), nullable=False),
    # JSON list of the sentences rendered from the image's qc_flags when they were stored
    # (quantscope.quality.describe_flag), for `qc.reasons like "..."`; the records are the truth
    Column("reasons", Text, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Index(None, "status"),
)

qc_flags = Table(  # the flag records behind each QC status (0007; quantscope.quality.QCFlag)
    "qc_flags",
    metadata,
    Column("image_id", String(32), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # order within the image: fails first
    Column("rule", String(32), nullable=False),  # quantscope.quality.RULES
    Column("level", String(8), nullable=False),  # "warn" or "fail"
    Column("kind", String(8), nullable=False),  # "limit", "outlier", "error" or "note"
    Column("metric", String(64), nullable=True),
    Column("channel", Integer, nullable=True),  # channel index
    Column("channel_name", Text, nullable=True),  # "DAPI"; "R=G=B" for merged identical channels
    Column("direction", String(8), nullable=True),  # "above" / "below" the limit or the median
    Column("value", Float, nullable=True),
    Column("bound", Float, nullable=True),  # the limit crossed (kind "limit")
    Column("zscore", Float, nullable=True),  # robust z within the group (kind "outlier")
    Column("median", Float, nullable=True),  # the group's median (kind "outlier")
    Column("peers", Integer, nullable=True),  # images in the group with a value (kind "outlier")
    Column("detail", Text, nullable=True),  # the text of an "error" or a "note"
    Index(None, "rule", "level"),
    Index(None, "metric"),
)

illumination_profiles = Table(
    "illumination_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plate_id", Integer, ForeignKey("plates.id", ondelete="CASCADE"), nullable=False),
    Column("channel", Integer, nullable=False),
    Column("channel_name", Text, nullable=False),
    Column("store_path", Text, nullable=False),
    Column("n_images", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("plate_id", "channel"),
)

annotations = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # what is annotated: "image" (images.id), "plate" (plates.name) or "dataset" (a dataset name)
    Column("target_kind", String(16), nullable=False),
    Column("target_id", String(255), nullable=False),
    Column("key", String(255), nullable=False),  # "tag" for tags; dotted REMBI/NBO paths otherwise
    Column("value", Text, nullable=True),  # the value as text (the label for ontology terms)
    Column("num_value", Float, nullable=True),  # the value as a number where it is one
    Column("unit", String(32), nullable=True),
    Column("curie", String(128), nullable=True),  # ontology term, e.g. NCBITaxon:9606
    Column("source", String(64), nullable=False),  # "user", "sidecar:<file>", ...
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("target_kind", "target_id", "key", "value"),
    Index(None, "key", "value"),
    Index(None, "key", "num_value"),
    Index(None, "target_id"),
)
