"""Ingest: microscope files and folders into OME-Zarr images registered in the catalog."""

from ._ingest import (
    IngestIssue,
    IngestReport,
    Progress,
    clean_leftovers,
    collect_files,
    ingest,
    update_plates,
    verify,
)
from ._naming import NamePattern, ParsedName

__all__ = [
    "IngestIssue",
    "IngestReport",
    "NamePattern",
    "ParsedName",
    "Progress",
    "clean_leftovers",
    "collect_files",
    "ingest",
    "update_plates",
    "verify",
]
