"""Plates written before fields were the folders 0..n-1 of their well (the site number was the
folder) are renumbered by the next ingest, with their labels, manifest and catalog entries, and
a renumbering killed half-way is finished by the next one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from quantscope.analysis import parse_pipeline, run_pipeline
from quantscope.catalog import Repository
from quantscope.ingestion import _layout, clean_leftovers, ingest, update_plates, verify
from quantscope.synth import SynthOptions, synth_plate

PIPELINE = Path(__file__).parents[2] / "pipelines" / "nuclei.yaml"


def _folders(repo: Repository, well: str) -> dict[int, str]:
    """{site: field folder} of a well."""
    return {
        img.position.field: img.store_path.rsplit("/", 1)[1]
        for img in repo.images.all()
        if img.position is not None and img.position.well == well
    }


@pytest.fixture
def old_layout(tmp_path: Path) -> Repository:
    """A plate whose well A02 stores site 1 in folder 4 and site 2 in folder 0, as a
    repository written before the 0..n-1 rule could (fields named by site, one missing)."""
    synth_plate(tmp_path / "synth", SynthOptions(plate="1x2", fields=2, size=96, seed=4))
    repo = Repository.init(tmp_path / "repo")
    assert ingest(repo, [tmp_path / "synth" / "images"], qc=False).ok
    assert run_pipeline(repo, parse_pipeline(PIPELINE.read_text())).ok  # labels in the fields
    by_site = {i.position.field: i for i in repo.images.all() if i.position.well == "A02"}
    well = repo.root / by_site[1].store_path.rsplit("/", 1)[0]
    os.replace(well / "0", well / "tmp")
    os.replace(well / "1", well / "0")
    os.replace(well / "tmp", well / "4")
    repo.images.move_folders(
        [
            (by_site[1].id, by_site[1].store_path, by_site[1].store_path[:-1] + "4"),
            (by_site[2].id, by_site[2].store_path, by_site[2].store_path[:-1] + "0"),
        ]
    )
    update_plates(repo)
    assert _folders(repo, "A02") == {1: "4", 2: "0"}
    assert verify(repo) == []  # a consistent repository in the old layout
    return repo


def test_the_next_ingest_renumbers_fields_and_keeps_everything_consistent(
    old_layout: Repository, tmp_path: Path
) -> None:
    repo = old_layout
    pixels = {i.id: _level0(repo, i.store_path) for i in repo.images.all()}
    report = ingest(repo, [tmp_path / "synth" / "images"], qc=False)  # nothing new to add
    assert report.ok and report.added == []
    assert _folders(repo, "A02") == {1: "0", 2: "1"}
    assert _folders(repo, "A01") == {1: "0", 2: "1"}  # untouched
    assert verify(repo) == []  # manifest and label outputs moved with their folders
    for img in repo.images.all():
        np.testing.assert_array_equal(_level0(repo, img.store_path), pixels[img.id])
    assert not (repo.root / _layout.JOURNAL_NAME).exists()
    # ome-zarr-py (napari's plate reader) takes the first well's field paths for every well:
    # both wells show their site 1 again
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    plate_dir = repo.root / next(i for i in repo.images.all()).store_path.split("/A/")[0]
    grid = np.asarray(next(iter(Reader(parse_url(str(plate_dir)))())).data[0])
    h, w = 96, 96
    for col in (0, 1):
        site1 = next(
            i for i in repo.images.all() if i.position.column == col and i.position.field == 1
        )
        np.testing.assert_array_equal(
            grid[..., 0:h, col * w : (col + 1) * w], _level0(repo, site1.store_path)
        )
    # the pipeline's outputs are found where they moved: nothing is recomputed
    again = run_pipeline(repo, parse_pipeline(PIPELINE.read_text()))
    assert again.ok and again.computed == 0


@pytest.mark.parametrize("fail_at", ["place", "catalog"])
def test_a_renumbering_killed_half_way_is_finished_by_the_next(
    old_layout: Repository, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    repo = old_layout
    real_replace, real_move = os.replace, repo.images.move_folders
    calls = {"n": 0}

    def crash_replace(src: str | Path, dst: str | Path) -> None:
        # the first rename of a parked folder into its new place dies
        if fail_at == "place" and ".relayout-" in str(src) and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    def crash_move(moves: object) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(_layout.os, "replace", crash_replace)
    if fail_at == "catalog":
        monkeypatch.setattr(repo.images, "move_folders", crash_move)
    with repo.write_lock(), pytest.raises(KeyboardInterrupt):
        clean_leftovers(repo)
    assert (repo.root / _layout.JOURNAL_NAME).exists()
    monkeypatch.setattr(_layout.os, "replace", real_replace)
    monkeypatch.setattr(repo.images, "move_folders", real_move)
    with repo.write_lock():
        clean_leftovers(repo)  # finishes from the journal, removes nothing that is stored
    assert _folders(repo, "A02") == {1: "0", 2: "1"}
    assert verify(repo) == []
    assert not (repo.root / _layout.JOURNAL_NAME).exists()


def _level0(repo: Repository, store_path: str) -> np.ndarray:
    import zarr

    return zarr.open_group(str(repo.root / store_path), mode="r")["0"][...]
