"""The catalog (SQLAlchemy Core schema, alembic migrations) and the Repository handle."""

from ._annotations import DATASET_KEY, DatasetInfo
from ._repository import CONFIG_NAME, SCHEMA_HEAD, ImageRegistration, Repository, plate_folder

__all__ = [
    "CONFIG_NAME",
    "DATASET_KEY",
    "SCHEMA_HEAD",
    "DatasetInfo",
    "ImageRegistration",
    "Repository",
    "plate_folder",
]
