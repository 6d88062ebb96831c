"""Failures are counted per file, not per scene, and a reader's binary junk never reaches the
terminal (issue 12, smaller things)."""

from __future__ import annotations

from pathlib import Path

from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.ingestion._report import IngestIssue, printable


def test_a_truncated_multi_scene_file_is_one_failed_file(
    repo: Repository, tmp_path: Path, vendor_dir: Path
) -> None:
    source = vendor_dir / "lif" / "readlif_xz-example.lif"
    data = source.read_bytes()
    (tmp_path / "trunc.lif").write_bytes(data[: len(data) // 2])
    report = ingest(repo, [tmp_path / "trunc.lif"], qc=False)
    assert len(report.failed) >= 2  # one line per scene that cannot be read, each saying which
    assert all("scene" in f.message for f in report.failed)
    assert report.failed_files == 1


def test_messages_are_printable_text() -> None:
    junk = "cannot parse b'II*" + "\\x00\\x08\\x00\\x00" * 4 + "'"
    msg = IngestIssue("f.tif", "bad \x00\x07\x1b[31m red " + junk).message
    assert msg.isprintable()
    assert "\\x00\\x07\\x1b[31m" in msg  # control characters shown escaped, not sent raw
    assert "<binary data>" in msg and "II*" not in msg
    assert len(printable("x" * 10_000)) == 500
    assert printable("naïve µm, 10 ms") == "naïve µm, 10 ms"  # ordinary text untouched
