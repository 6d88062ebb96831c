"""What an ingest reports: issues per file (printable text) and the report of a run."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..model import Image

__all__ = ["IngestIssue", "IngestReport", "Progress", "VerifyReport", "printable"]


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the images added (as :func:`quantscope.catalog.image_row` lists them),
        the files skipped, failed and noted, leftovers cleaned, seconds and QC verdicts; what
        ``quantscope ingest --json`` prints."""
        from ..catalog import image_row

        return {
            "added": [image_row(i) for i in self.added],
            "skipped": [vars(s) for s in self.skipped],
            "failed": [vars(s) for s in self.failed],
            "notes": [vars(s) for s in self.notes],
            "cleaned": self.cleaned,
            "seconds": self.seconds,
            "qc": self.qc,
        }


class VerifyReport(list[IngestIssue]):
    """What :func:`verify` found: the list of problems (empty when all is intact), with the
    number of stored files checked in :attr:`checked`."""

    def __init__(self, problems: Iterable[IngestIssue] = (), checked: int = 0) -> None:
        super().__init__(problems)
        self.checked = checked

    @property
    def ok(self) -> bool:
        """Whether nothing changed or went missing."""
        return not self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``checked`` and the ``problems`` (path, message); what
        ``quantscope verify --json`` prints."""
        return {"checked": self.checked, "problems": [vars(p) for p in self]}


Progress = Callable[[str, int, int, str], None]
"""``progress(phase, done_bytes, total_bytes, current_name)``; phase is "scan", "write" or
"qc" (pixel bytes of the images quality-checked so far)."""
