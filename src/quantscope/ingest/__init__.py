"""Ingest: microscope files and folders into OME-Zarr images registered in the catalog."""

from ._ingest import ingest
from ._integrity import clean_leftovers, update_plates, verify
from ._naming import NamePattern, ParsedName
from ._plan import collect_files
from ._report import IngestIssue, IngestReport, Progress, VerifyReport

__all__ = [
    "IngestIssue",
    "IngestReport",
    "NamePattern",
    "ParsedName",
    "Progress",
    "VerifyReport",
    "clean_leftovers",
    "collect_files",
    "ingest",
    "update_plates",
    "verify",
]
