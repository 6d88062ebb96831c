"""Ingest: microscope files and folders into OME-Zarr images registered in the catalog.

The package is ``quantscope.ingestion``; its :func:`ingest` and :func:`verify` are also
``quantscope.ingest`` and ``quantscope.verify`` (a subpackage named ``ingest`` would replace the
top-level function once imported).
"""

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
