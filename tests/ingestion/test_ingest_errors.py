"""Bad input and faults: each bad file gets a one-line reason naming it; the batch proceeds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

import quantscope.ingestion._plan as ingest_module  # files are hashed while planned
from quantscope.catalog import Repository
from quantscope.errors import ConcurrentAccess, InvalidInput, NotARepository
from quantscope.ingestion import collect_files, ingest, verify


def _failures(report) -> dict[str, str]:
    return {Path(f.path).name: f.message for f in report.failed}


def _no_leftovers(repo: Repository) -> None:
    for sub in ("images", "plates"):
        for p in (repo.root / sub).rglob("*"):
            assert ".tmp" not in p.name, p


@pytest.fixture
def good(
    tmp_path: Path, write_tiff: Callable[..., Path], pixels: Callable[..., np.ndarray]
) -> Path:
    return write_tiff(tmp_path / "in" / "good.tif", pixels(7), channels=["DAPI"])


def test_each_bad_file_fails_with_its_reason_and_the_rest_proceeds(
    repo: Repository,
    tmp_path: Path,
    good: Path,
    pixels: Callable[..., np.ndarray],
    vendor_dir: Path,
) -> None:
    d = good.parent
    (d / "empty.tif").write_bytes(b"")
    (d / "notes.tif").write_text("these are my notes, not an image\n")
    shutil.copy(vendor_dir / "seq" / "pims_sample_norpix6.seq", d / "movie.seq")
    (d / "blob.xyz").write_bytes(b"\x00\x01\x02\x03" * 64)
    # truncated TIFFs: pixel data cut off (IFD first), and header/IFD cut off (IFD last)
    tifffile.imwrite(d / "whole.tif", pixels(8, shape=(256, 256)))
    data = (d / "whole.tif").read_bytes()
    (d / "whole.tif").unlink()
    (d / "cut_pixels.tif").write_bytes(data[: len(data) // 2])
    ifd_last = np.zeros((64, 64), np.uint16).tobytes()
    (d / "cut_ifd.tif").write_bytes(
        b"II*\x00" + (8 + len(ifd_last)).to_bytes(4, "little") + ifd_last
    )
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "README.md").write_text("no images here")

    report = ingest(repo, [d, tmp_path / "nothing", tmp_path / "missing.tif"], jobs=2)

    failed = _failures(report)
    assert set(failed) == {
        "empty.tif",
        "notes.tif",
        "movie.seq",
        "blob.xyz",
        "cut_pixels.tif",
        "cut_ifd.tif",
        "nothing",
        "missing.tif",
    }
    assert "empty" in failed["empty.tif"] and "0 bytes" in failed["empty.tif"]
    assert "not a valid tiff" in failed["notes.tif"] and "wrong extension" in failed["notes.tif"]
    for unsupported in ("movie.seq", "blob.xyz"):
        assert "no reader for" in failed[unsupported]
        assert "supported formats:" in failed[unsupported] and "czi (.czi)" in failed[unsupported]
    assert "truncated" in failed["cut_pixels.tif"]
    assert "truncated" in failed["cut_ifd.tif"] or "damaged" in failed["cut_ifd.tif"]
    assert failed["nothing"] == "folder holds no image files"
    assert failed["missing.tif"] == "no such file or folder"
    for f in report.failed:  # one line each, naming the file in the path field
        assert "\n" not in f.message and f.message
        assert Path(f.path).is_absolute()
    assert not report.ok
    # the good file went through
    (img,) = repo.images.all()
    assert img.sources[0].path == str(good)
    assert [i.name for i in report.added] == ["good"]
    assert verify(repo) == []
    _no_leftovers(repo)  # the truncated file failed while writing: its temp folder is gone


def test_unreadable_file_is_reported(
    repo: Repository, good: Path, write_tiff: Callable[..., Path], pixels: Callable[..., np.ndarray]
) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading the file")
    locked = write_tiff(good.parent / "locked.tif", pixels(9))
    locked.chmod(0)
    try:
        report = ingest(repo, [good.parent])
    finally:
        locked.chmod(0o644)
    assert _failures(report) == {"locked.tif": "cannot be read (permission denied)"}
    assert len(repo.images.all()) == 1


def test_permission_error_while_hashing_is_reported(
    repo: Repository,
    good: Path,
    write_tiff: Callable[..., Path],
    pixels: Callable[..., np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same path as the chmod test, simulated so that it also runs as root: the OS refuses
    to open the file (``PermissionError``) when ingest hashes it."""
    locked = write_tiff(good.parent / "locked.tif", pixels(9))
    real = ingest_module._sha256

    def sha256(path: Path) -> str:
        if path.name == locked.name:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(ingest_module, "_sha256", sha256)
    report = ingest(repo, [good.parent])
    assert _failures(report) == {"locked.tif": "cannot be read (permission denied)"}
    assert [i.name for i in repo.images.all()] == ["good"]


def test_uninitialized_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotARepository, match="quantscope init"):
        Repository.open(tmp_path)


def test_malformed_pattern_is_refused_before_any_work(repo: Repository, good: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown placeholder"):
        ingest(repo, [good], pattern="{plate}_{wel}")
    assert repo.images.all() == []


def test_second_writer_gets_concurrent_access(repo: Repository, good: Path) -> None:
    with repo.write_lock(), pytest.raises(ConcurrentAccess, match=f"pid {os.getpid()}"):
        ingest(repo, [good])
    assert repo.images.all() == []
    # once the lock is free the same ingest works
    assert ingest(repo, [good]).ok
    assert len(repo.images.all()) == 1


def test_relative_paths_with_parallel_czi_reads(
    repo: Repository, tmp_path: Path, vendor_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bioio-czi changes the process's working directory while it converts metadata: relative
    paths read by other threads at that moment must still be found, and the working directory
    must be the same after ingest."""
    src = vendor_dir / "czi" / "aicsimageio_s_1_t_1_c_1_z_1.czi"
    folder = tmp_path / "rel"
    folder.mkdir()
    for i in range(4):  # distinct content so none is skipped as a duplicate
        (folder / f"c{i}.czi").write_bytes(src.read_bytes() + bytes([i]))
        shutil.copy(vendor_dir / "tiff" / "aicsimageio_s_1_t_1_c_1_z_1.tiff", folder / f"t{i}.tiff")
        with open(folder / f"t{i}.tiff", "ab") as fh:
            fh.write(bytes([i]))
    monkeypatch.chdir(tmp_path)
    report = ingest(repo, [Path("rel")], jobs=4)
    assert report.failed == []
    assert len(repo.images.all()) == 8
    assert Path.cwd() == tmp_path
    assert all(Path(s.path).is_absolute() for i in repo.images.all() for s in i.sources)


def test_collect_files_skips_sidecars_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "table.csv").write_text("x")
    (tmp_path / ".hidden.tif").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.czi").write_bytes(b"x")
    (tmp_path / "old.ome.zarr").mkdir()
    (tmp_path / "old.ome.zarr" / "zarr.json").write_text("{}")
    files, failed = collect_files([tmp_path, tmp_path / "notes.md", tmp_path / "a.tif"])
    assert failed == []
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.tif", "sub/b.czi", "notes.md"]
