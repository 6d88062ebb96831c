"""Integrity and idempotency: SHA-256 skip of known content, the stored-file manifest that
``verify`` checks, and the clean-up of what a killed run leaves behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import quantscope.ingestion._ingest as ingest_module
from quantscope.catalog import Repository
from quantscope.errors import CatalogError
from quantscope.ingestion import clean_leftovers, ingest, verify


@pytest.fixture
def small_batch(
    tmp_path: Path, write_tiff: Callable[..., Path], pixels: Callable[..., np.ndarray]
) -> Path:
    """Two plate fields (two channel files each) and one loose two-channel OME-TIFF."""
    folder = tmp_path / "batch"
    for site in (1, 2):
        for ch in (1, 2):
            write_tiff(folder / f"P9_C04_s{site}_w{ch}.tif", pixels(10 * site + ch))
    write_tiff(folder / "loose.ome.tif", np.stack([pixels(1), pixels(2)]), channels=["a", "b"])
    return folder


def _chunk_files(repo: Repository) -> list[str]:
    return [p for _, p, _, _ in repo.images.stored_files() if "/c." in p]


def test_identical_content_is_skipped_even_under_another_name(
    repo: Repository, small_batch: Path, tmp_path: Path
) -> None:
    first = ingest(repo, [small_batch])
    assert first.ok and len(first.added) == 3
    state = (repo.images.all(), repo.images.stored_files())
    again = ingest(repo, [small_batch])
    assert again.ok and again.added == [] and again.cleaned == []
    assert len(again.skipped) == 3
    assert all(s.message.startswith("already ingested (same SHA-256)") for s in again.skipped)
    ids = {i.id for i in state[0]}
    assert all(any(i in s.message for i in ids) for s in again.skipped)
    # a renamed copy is the same content: skipped too
    copy = tmp_path / "renamed.ome.tif"
    copy.write_bytes((small_batch / "loose.ome.tif").read_bytes())
    third = ingest(repo, [copy])
    assert [s.path for s in third.skipped] == [str(copy)]
    assert "already ingested" in third.skipped[0].message
    assert (repo.images.all(), repo.images.stored_files()) == state


def test_the_same_content_twice_in_one_batch_is_ingested_once(
    repo: Repository, small_batch: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.ome.tif"
    copy.write_bytes((small_batch / "loose.ome.tif").read_bytes())
    report = ingest(repo, [small_batch / "loose.ome.tif", copy])
    assert len(report.added) == 1
    assert [s.message for s in report.skipped] == ["same content as another file in this batch"]


def test_manifest_covers_every_stored_file(repo: Repository, small_batch: Path) -> None:
    assert ingest(repo, [small_batch]).ok
    listed = {p for _, p, _, _ in repo.images.stored_files()}
    on_disk = set()
    for img in repo.images.all():
        base = repo.root / img.store_path
        on_disk |= {p.relative_to(repo.root).as_posix() for p in base.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert verify(repo) == []


def test_verify_names_a_chunk_with_one_flipped_byte(repo: Repository, small_batch: Path) -> None:
    assert ingest(repo, [small_batch]).ok
    chunks = _chunk_files(repo)
    assert chunks
    victim = repo.root / chunks[len(chunks) // 2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    (problem,) = verify(repo)
    assert problem.path == chunks[len(chunks) // 2]
    assert "SHA-256 differs" in problem.message


def test_verify_reports_a_deleted_chunk_as_missing(repo: Repository, small_batch: Path) -> None:
    assert ingest(repo, [small_batch]).ok
    chunks = _chunk_files(repo)
    (repo.root / chunks[0]).unlink()
    (repo.root / chunks[-1]).write_bytes(b"short")
    problems = {p.path: p.message for p in verify(repo)}
    assert set(problems) == {chunks[0], chunks[-1]}
    assert problems[chunks[0]].startswith("missing")
    assert problems[chunks[-1]].startswith("size changed")


def test_leftovers_of_a_killed_run_are_removed_and_reported(
    repo: Repository,
    small_batch: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
) -> None:
    assert ingest(repo, [small_batch]).ok
    state = (repo.images.all(), repo.images.stored_files())
    root = repo.root
    # what a killed run can leave: temp folders, an image renamed into place but never
    # registered, a plate field and a whole plate nobody registered, group-document temp files
    (root / ".x.tmp-123").mkdir()
    (root / ".x.tmp-123" / "junk").write_bytes(b"x")
    (root / "images" / "deadbeef.ome.zarr" / "0").mkdir(parents=True)
    (root / "images" / ".cafe.ome.zarr.tmp-0123456789ab").mkdir()
    plate = root / "plates" / "P9.ome.zarr"
    (plate / "C" / "04" / "7").mkdir()
    (plate / "C" / "04" / ".2.tmp-0123456789ab").mkdir()
    (plate / "C" / "04" / ".zarr.json.tmp-4242").write_text("{")
    (plate / ".zarr.json.tmp-4242").write_text("{")
    (root / "plates" / "Ghost.ome.zarr" / "A" / "01" / "0").mkdir(parents=True)

    write_tiff(small_batch.parent / "next" / "new.tif", pixels(99))
    report = ingest(repo, [small_batch.parent / "next"])
    assert report.ok and len(report.added) == 1
    assert sorted(report.cleaned) == sorted(
        [
            ".x.tmp-123",
            "images/deadbeef.ome.zarr",
            "images/.cafe.ome.zarr.tmp-0123456789ab",
            "plates/P9.ome.zarr/C/04/7",
            "plates/P9.ome.zarr/C/04/.2.tmp-0123456789ab",
            "plates/P9.ome.zarr/C/04/.zarr.json.tmp-4242",
            "plates/P9.ome.zarr/.zarr.json.tmp-4242",
            "plates/Ghost.ome.zarr",
        ]
    )
    for rel in report.cleaned:
        assert not (root / rel).exists(), rel
    # registered data untouched
    assert {i.id for i in state[0]} < {i.id for i in repo.images.all()}
    assert verify(repo) == []
    assert clean_leftovers(repo) == []  # nothing left


def test_clean_leftovers_directly(repo: Repository) -> None:
    (repo.root / "images" / "deadbeef.ome.zarr").mkdir()
    (repo.root / ".x.tmp-123").mkdir()
    with repo.write_lock():
        cleaned = clean_leftovers(repo)
    assert sorted(cleaned) == [".x.tmp-123", "images/deadbeef.ome.zarr"]
    assert list((repo.root / "images").iterdir()) == []
    assert not (repo.root / ".x.tmp-123").exists()


def test_plate_groups_are_rewritten_after_a_run_died_before_writing_them(
    repo: Repository,
    small_batch: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed after registering plate images but before rewriting the plate/well documents:
    the next run, even one that adds nothing, brings the documents in line with the catalog."""

    class Killed(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(ingest_module, "update_plates", die)
        with pytest.raises(Killed):
            ingest(repo, [small_batch])
    assert len(repo.images.all()) == 3  # registered, but the plate documents were never written
    plate = repo.root / "plates" / "P9.ome.zarr"
    assert not (plate / "zarr.json").exists()

    report = ingest(repo, [small_batch])  # all content known: nothing added, nothing cleaned
    assert report.added == [] and len(report.skipped) == 3
    doc = json.loads((plate / "zarr.json").read_text())["attributes"]["ome"]["plate"]
    assert [w["path"] for w in doc["wells"]] == ["C/04"]
    well = json.loads((plate / "C" / "04" / "zarr.json").read_text())["attributes"]["ome"]["well"]
    assert [im["path"] for im in well["images"]] == ["0", "1"]


def test_a_failed_registration_leaves_no_stored_files(
    repo: Repository, small_batch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(regs: object) -> None:
        raise CatalogError("catalog is read-only")

    monkeypatch.setattr(repo.images, "register_many", refuse)
    report = ingest(repo, [small_batch])
    assert len(report.failed) == 3
    assert all(f.message == "catalog is read-only" for f in report.failed)
    assert list((repo.root / "images").iterdir()) == []
    well = repo.root / "plates" / "P9.ome.zarr" / "C" / "04"
    assert not (well / "0").exists() and not (well / "1").exists()
    assert not [p for p in (repo.root / "plates").rglob("*") if p.is_file()]


def test_one_bad_image_in_a_batch_fails_alone(
    repo: Repository, small_batch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # registrations go in batches; a batch that fails is retried image by image, so only the
    # image the catalog refuses is reported (and its files removed), the others are kept
    real = repo.images.register_many

    def refuse_loose(regs: list) -> None:  # type: ignore[type-arg]
        if any(r.image.name == "loose" for r in regs):
            raise CatalogError("refused")
        real(regs)

    monkeypatch.setattr(repo.images, "register_many", refuse_loose)
    report = ingest(repo, [small_batch], jobs=2)
    assert [f.message for f in report.failed] == ["refused"]
    assert len(report.added) == 2 and "loose" not in {i.name for i in report.added}
    assert list((repo.root / "images").iterdir()) == []
    assert verify(repo) == []
