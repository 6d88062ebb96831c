"""Ingest is atomic per image: SIGKILL a real ``quantscope ingest`` process at several moments;
the repository stays valid after each kill, and re-running completes the work exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import tifffile
import zarr

from quantscope.catalog import Repository
from quantscope.ingestion import clean_leftovers, ingest, verify

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL"),
    pytest.mark.slow,
]


def _registered(repo: Repository) -> int:
    with repo.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM images")).scalar_one())


def _lock_holder(root: Path) -> str:
    try:
        return (root / ".quantscope.lock").read_text().strip()
    except FileNotFoundError:
        return ""


def _half_written(root: Path) -> bool:
    return any(root.glob("plates/*/*/*/.*.tmp-*"))


def _assert_valid(root: Path) -> int:
    """The catalog opens, every registered image's files exist and match the manifest, no
    image is registered twice. Returns the number of images."""
    with Repository.open(root) as repo:
        images = repo.images.all()
        assert verify(repo) == []
        for img in images:
            assert (root / img.store_path / "zarr.json").is_file(), img.store_path
            assert (root / img.store_path / "0" / "zarr.json").is_file(), img.store_path
            assert repo.images.stored_files(img.id), img.id
        assert len({i.id for i in images}) == len(images)
        assert len({i.store_path for i in images}) == len(images)
        assert len({s.sha256 for i in images for s in i.sources}) == len(images)
        return len(images)


def test_sigkill_at_any_moment_leaves_a_valid_repository(
    bbbc039_images: Path,
    tmp_path: Path,
    quantscope_command: list[str],
    poll_until: Callable[..., bool],
) -> None:
    root = tmp_path / "repo"
    Repository.init(root).close()
    cmd = [*quantscope_command, "ingest", str(root), str(bbbc039_images), "--jobs", "1"]
    watcher = Repository.open(root)
    counts: list[int] = []
    try:
        moments: list[tuple[str, Callable[[int, subprocess.Popen[bytes]], Callable[[], bool]]]] = [
            ("holding the write lock", lambda n, p: lambda: _lock_holder(root) == str(p.pid)),
            ("after 3 images were registered", lambda n, p: lambda: _registered(watcher) >= n + 3),
            ("while an image is half-written", lambda n, p: lambda: _half_written(root)),
            (
                "after 8 more images were registered",
                lambda n, p: lambda: _registered(watcher) >= n + 8,
            ),
        ]
        for what, make_cond in moments:
            before = _registered(watcher)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                reached = poll_until(make_cond(before, proc), proc, what="the ingest process")
                assert reached, f"ingest ended before the kill moment ({what}): " + (
                    proc.stderr.read().decode() if proc.stderr else ""
                )
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                proc.wait(timeout=60)
                if proc.stderr:
                    proc.stderr.close()
            assert proc.returncode == -signal.SIGKILL, what
            counts.append(_assert_valid(root))
    finally:
        watcher.close()
    assert counts == sorted(counts)
    assert 0 < counts[-1] < 40, counts  # the kills did land in the middle of the batch

    # re-running completes the work: every image present exactly once, leftovers gone
    with Repository.open(root) as repo:
        report = ingest(repo, [bbbc039_images])
        assert report.ok, report.failed
        assert len(report.added) == 40 - counts[-1]
        assert len(report.skipped) == counts[-1]
        images = repo.images.all()
        stored = {i.store_path for i in images}
        for rel in report.cleaned:  # removed, or written anew (and registered) by this run
            assert not (root / rel).exists() or rel in stored, rel
        assert len(images) == 40
        names = sorted(Path(i.sources[0].path).name for i in images)
        assert names == sorted(p.name for p in bbbc039_images.glob("*.tif"))
        assert verify(repo) == []
        assert clean_leftovers(repo) == []
        assert not [p for p in root.rglob("*") if ".tmp" in p.name]
        # the plate documents list every registered field
        plate = zarr.open_group(str(root / "plates" / "IXMtest.ome.zarr"), mode="r")
        wells = {w["path"] for w in plate.attrs["ome"]["plate"]["wells"]}
        assert wells == {f"{i.position.row_name}/{i.position.column_name}" for i in images}
        for img in images[::7]:
            stored = zarr.open_group(str(root / img.store_path), mode="r")["0"][0, 0, 0]
            np.testing.assert_array_equal(stored, tifffile.imread(img.sources[0].path))
