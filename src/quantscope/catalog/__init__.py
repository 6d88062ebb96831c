"""The catalog (SQLAlchemy Core schema, alembic migrations) and the Repository handle.

A :class:`Repository` creates, opens, migrates and locks a repository; what it reads and writes
is grouped in its parts: ``repo.images``, ``repo.quality``, ``repo.annotations``, ``repo.query``
(``find``, ``find_ids``, ``fields``), ``repo.runs`` and ``repo.bench``. Plates come back as
:class:`PlateInfo` records.

:func:`set_metadata` corrects pixel sizes, channel names and wavelengths after ingest (catalog,
stored OME-Zarr metadata and checksums together, with an audit annotation per change).
"""

from ._annotations import DATASET_KEY, DatasetInfo
from ._edit import EditReport, FieldChange, set_metadata
from ._images import ImageRegistration, PlateField, PlateInfo, plate_folder
from ._repository import CONFIG_NAME, SCHEMA_HEAD, Repository

__all__ = [
    "CONFIG_NAME",
    "DATASET_KEY",
    "SCHEMA_HEAD",
    "DatasetInfo",
    "EditReport",
    "FieldChange",
    "ImageRegistration",
    "PlateField",
    "PlateInfo",
    "Repository",
    "plate_folder",
    "set_metadata",
]
