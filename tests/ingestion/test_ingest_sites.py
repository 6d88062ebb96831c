"""Channel files of sites without wells, channel names as the file names write them, and
patterns that match nothing (issue 12, item 10), on CellProfiler's example files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from quantscope.catalog import Repository
from quantscope.errors import InvalidInput
from quantscope.ingestion import NamePattern, ingest


def _stored(repo: Repository, store_path: str) -> np.ndarray:
    return zarr.open_group(str(repo.root / store_path), mode="r")["0"][...]


def test_example_fly_sites_without_wells_become_three_channel_images(
    repo: Repository, data_root: Path
) -> None:
    """ExampleFly: 3 sites x 3 channel files (D, F, R) must become 3 three-channel images."""
    folder = data_root / "cellprofiler_examples" / "ExampleFly" / "images"
    report = ingest(repo, [folder], pattern="{any}_POS{field}_{channel}", qc=False)
    assert report.ok, report.failed
    images = repo.images.all()
    assert sorted(i.name for i in images) == ["01_POS002", "01_POS076", "01_POS218"]
    for img in images:
        assert img.position is None  # a slide: no plate, no well
        assert img.shape[1] == 3
        assert [c.name for c in img.channels] == ["D", "F", "R"]
        stored = _stored(repo, img.store_path)
        for c, letter in enumerate("DFR"):
            source = tifffile.imread(folder / f"{img.name}_{letter}.TIF")
            np.testing.assert_array_equal(stored[0, c, 0], source)


def test_numbered_channels_keep_the_letters_of_the_file_name(
    repo: Repository, data_root: Path
) -> None:
    """ExampleHuman's ``…D03f00d0.tif`` channel files are channels d0, d1, d2 (not w0…)."""
    folder = data_root / "cellprofiler_examples" / "ExampleHuman" / "images"
    report = ingest(repo, [folder], pattern="{plate}_{well}f{field0}d{channel}", qc=False)
    assert report.ok, report.failed
    (img,) = repo.images.all()
    assert [c.name for c in img.channels] == ["d0", "d1", "d2"]
    assert (img.position.well, img.position.field) == ("D03", 1)  # f00 is site 1


def test_channel_prefix_of_patterns() -> None:
    assert NamePattern(None).parse("P_A01_s1_w2.tif").channel_name == "w2"
    assert NamePattern("{well}-{channel}").parse("A01-3.tif").channel_name == "3"
    assert NamePattern("{well}_ch{channel}").parse("A01_ch3.tif").channel_name == "ch3"
    assert NamePattern("{well}_w{channel}").parse("A01_wDAPI.tif").channel_name == "DAPI"


def test_a_pattern_that_matches_no_file_is_an_error(repo: Repository, data_root: Path) -> None:
    folder = data_root / "cellprofiler_examples" / "ExampleFly" / "images"
    with pytest.raises(InvalidInput, match=r"matches none of the 9 files .*01_POS002_D.TIF"):
        ingest(repo, [folder], pattern="{plate}_{well}_s{field}_w{channel}", qc=False)
    assert repo.images.all() == []


def test_a_pattern_that_misses_some_files_says_so(
    repo: Repository, tmp_path: Path, data_root: Path
) -> None:
    src = data_root / "cellprofiler_examples" / "ExampleFly" / "images"
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("01_POS002_D.TIF", "01_POS002_F.TIF"):
        (folder / name).symlink_to(src / name)
    (folder / "overview.tif").symlink_to(src / "01_POS076_R.TIF")
    report = ingest(repo, [folder], pattern="{any}_POS{field}_{channel}", qc=False)
    assert report.ok, report.failed
    assert any("1 of 3 files does not match" in n.message for n in report.notes), report.notes
    assert sorted(i.name for i in repo.images.all()) == ["01_POS002", "overview"]


def test_a_pattern_needs_a_well_or_a_channel() -> None:
    with pytest.raises(InvalidInput, match=r"or \{channel\} to merge"):
        NamePattern("{any}_POS{field}")
