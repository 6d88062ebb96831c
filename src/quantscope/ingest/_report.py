"""What an ingest reports: issues per file (printable text) and the report of a run."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import Image

__all__ = ["IngestIssue", "IngestReport", "Progress", "printable"]


@dataclass(frozen=True)
class IngestIssue:
    """A file that was skipped, failed, or read with a remark. The message is printable text:
    control characters and binary junk that a reader put in its exception are escaped, and an
    overlong message is shortened."""

    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", printable(self.message))


_MAX_MESSAGE = 500


def printable(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` with every non-printable character escaped (``\\x00``) and, past ``limit``
    characters, cut with an ellipsis: what a reader's exception carries must never reach the
    terminal as raw bytes."""
    clean = "".join(
        ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
    # a bytes repr (b'II*\x00…') in a message is file content, not an explanation
    clean = re.sub(r"b(['\"])(?:\\x[0-9a-f]{2}|[^'\"]){24,}?\1", "<binary data>", clean)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


@dataclass
class IngestReport:
    """What one ingest did."""

    added: list[Image] = field(default_factory=list)
    skipped: list[IngestIssue] = field(default_factory=list)
    failed: list[IngestIssue] = field(default_factory=list)
    notes: list[IngestIssue] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    files: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    qc: dict[str, str] = field(default_factory=dict)  # image id -> "pass" / "warn" / "fail"
    # seconds spent on QC: measuring (summed over the images, on a QC thread or in the
    # measuring process) plus the QC step after the writes (storing metrics, flags, images
    # measured from the store)
    qc_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed_files(self) -> int:
        """How many files failed: a multi-scene file that fails in every scene counts once."""
        return len({p.strip() for f in self.failed for p in f.path.split(", ")})


Progress = Callable[[str, int, int, str], None]
"""``progress(phase, done_bytes, total_bytes, current_name)``; phase is "scan", "write" or
"qc" (pixel bytes of the images quality-checked so far)."""
