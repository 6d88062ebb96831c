"""The catalog (SQLAlchemy Core schema, alembic migrations) and the Repository handle.

A :class:`Repository` creates, opens, migrates and locks a repository; what it reads and writes
is grouped in its parts: ``repo.images``, ``repo.quality``, ``repo.annotations``, ``repo.query``
(``find``, ``find_ids``, ``fields``), ``repo.runs``, ``repo.bench`` and ``repo.access`` (users,
tokens, sessions, dataset access: :class:`AccessRecords`, records :class:`UserRecord` and
:class:`TokenRecord`; the policy is :func:`may_read`, :func:`may_write`,
:func:`may_see_image`). Records come back typed:
plates as :class:`PlateInfo`; illumination profiles as :class:`IlluminationProfileRecord`;
analysis runs, their steps, artifacts and the artifacts' inputs as :class:`RunRecord`,
:class:`StepRecord`, :class:`ArtifactRecord` and :class:`ArtifactInput`; benchmark sets, runs
and results as :class:`BenchSetInfo`, :class:`BenchSetRecord` (with its
:class:`BenchItemRecord` items), :class:`BenchRunRecord` and :class:`BenchResultRecord`.

:func:`select_images` resolves a selection (image ids, plates, datasets, a query; a
:class:`Selection`) into image ids, the same way for every command; :func:`edit_annotations`
tags and annotates images, plates and datasets; :func:`check_metadata` scores the metadata
completeness of images.

:func:`set_metadata` corrects pixel sizes, channel names and wavelengths after ingest (catalog,
stored OME-Zarr metadata and checksums together, with an audit annotation per change).
"""

from ._access import (
    VISIBILITIES,
    DatasetAccess,
    Principal,
    Visibility,
    may_read,
    may_see_image,
    may_write,
)
from ._access_records import (
    PASSWORD_MIN,
    AccessRecords,
    TokenRecord,
    UserRecord,
    check_user_name,
)
from ._annotations import DATASET_KEY, DatasetInfo
from ._bench_records import (
    BenchItemRecord,
    BenchResultRecord,
    BenchRunRecord,
    BenchSetInfo,
    BenchSetRecord,
)
from ._edit import EditReport, FieldChange, set_metadata
from ._images import ImageRegistration, PlateField, PlateInfo, plate_folder
from ._listing import image_record, image_row
from ._metadata_check import MetadataCheck, check_metadata
from ._quality import IlluminationProfileRecord
from ._repository import CONFIG_NAME, SCHEMA_HEAD, Repository
from ._runs import ArtifactInput, ArtifactRecord, RunRecord, StepRecord
from ._select import Selection, select_images
from ._tagging import AnnotationChanges, edit_annotations

__all__ = [
    "CONFIG_NAME",
    "DATASET_KEY",
    "PASSWORD_MIN",
    "SCHEMA_HEAD",
    "VISIBILITIES",
    "AccessRecords",
    "AnnotationChanges",
    "ArtifactInput",
    "ArtifactRecord",
    "BenchItemRecord",
    "BenchResultRecord",
    "BenchRunRecord",
    "BenchSetInfo",
    "BenchSetRecord",
    "DatasetAccess",
    "DatasetInfo",
    "EditReport",
    "FieldChange",
    "IlluminationProfileRecord",
    "ImageRegistration",
    "MetadataCheck",
    "PlateField",
    "PlateInfo",
    "Principal",
    "Repository",
    "RunRecord",
    "Selection",
    "StepRecord",
    "TokenRecord",
    "UserRecord",
    "Visibility",
    "check_metadata",
    "check_user_name",
    "edit_annotations",
    "image_record",
    "image_row",
    "may_read",
    "may_see_image",
    "may_write",
    "plate_folder",
    "select_images",
    "set_metadata",
]
