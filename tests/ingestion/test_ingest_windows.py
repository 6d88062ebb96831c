"""Ingest works through files in windows (each file parsed once, kept open from scan to write).
Windows must never split the channel files of one field, and files must all be closed after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import quantscope.ingestion._plan as ingest_mod
from quantscope.catalog import Repository
from quantscope.ingestion import NamePattern, ingest, verify
from quantscope.synth import SynthOptions, synth_plate


def test_small_windows_keep_channel_files_together(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = synth_plate(tmp_path / "synth", SynthOptions(plate="2x3", fields=2, size=64, seed=3))
    files = sorted((tmp_path / "synth" / "images").iterdir())
    windows = list(ingest_mod._windows(files, NamePattern(None)))
    assert [len(w) for w in windows] == [len(files)]
    monkeypatch.setattr(ingest_mod, "_WINDOW", 3)  # 3 files < 2 channels x 2 fields
    windows = list(ingest_mod._windows(files, NamePattern(None)))
    assert sum(len(w) for w in windows) == len(files) and len(windows) == 12
    assert all(len({f.name.rsplit("_w", 1)[0] for f in w}) == 1 for w in windows)

    report = ingest(repo, [tmp_path / "synth" / "images"], jobs=2)
    assert report.ok and len(report.added) == 12
    assert verify(repo) == []
    for fld in res.fields:
        img = repo.images.at("synth", fld.row, fld.column, fld.site)
        assert img is not None
        stored = zarr.open_group(repo.root / repo.images.get(img).store_path, mode="r")["0"][:]
        for c, path in enumerate(fld.images):
            assert np.array_equal(stored[0, c, 0], tifffile.imread(path))


def test_files_are_closed_after_ingest(repo: Repository, tmp_path: Path) -> None:
    import psutil

    synth_plate(tmp_path / "synth", SynthOptions(plate="1x2", fields=1, size=64, seed=1))
    proc = psutil.Process()
    before = {f.path for f in proc.open_files()}
    report = ingest(repo, [tmp_path / "synth" / "images"], jobs=2)
    assert report.ok
    leaked = {f.path for f in proc.open_files()} - before
    assert not [p for p in leaked if p.endswith(".tif")], leaked
