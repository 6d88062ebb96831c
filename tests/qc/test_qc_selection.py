"""``quantscope qc`` selections (``--where``, ``--image``, ``--plate``) and its errors: an empty
repository, an unknown image, a malformed query, damaged stored illumination profiles."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from typer.testing import Result

from quantscope.catalog import Repository
from quantscope.errors import InvalidInput, NotFound, RepositoryError
from quantscope.ingestion import ingest
from quantscope.qc import collect_report_data, estimate_profiles, load_profile


@pytest.fixture(scope="module")
def plate_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    """A 2x3 synthetic plate, two 96 px fields per well, DAPI + GFP; A02 s1 replaced by a
    blurred version of itself (the only failing image); illumination profiles stored."""
    from quantscope.synth import SynthOptions, synth_plate

    base = tmp_path_factory.mktemp("sel")
    opts = SynthOptions(plate="2x3", fields=2, size=96, seed=5)
    sharp = synth_plate(base / "sharp", opts)
    blurred = synth_plate(base / "blurred", opts, blur=4.0)
    for field in blurred.fields:
        if field.name.endswith("_A02_s1"):
            for p in field.images:
                shutil.copy(p, sharp.images_dir / p.name)
    repo = Repository.init(base / "repo")
    report = ingest(repo, [sharp.images_dir])
    assert report.ok and len(report.added) == 12
    estimate_profiles(repo)
    yield repo
    repo.close()


def _qc_json(cli: Callable[..., Result], *args: Any) -> dict[str, Any]:
    result = cli("qc", *args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_where_selects_by_query(plate_repo: Repository, cli: Callable[..., Result]) -> None:
    root = plate_repo.root
    doc = _qc_json(cli, root, "--where", 'well in ("A01", "B03")')
    assert sorted(row["well"] for row in doc["images"]) == ["A01", "A01", "B03", "B03"]
    # QC results are queryable: the blurred field is the one that failed
    doc = _qc_json(cli, root, "--where", 'qc.status == "fail"')
    assert [(row["well"], row["field"], row["status"]) for row in doc["images"]] == [
        ("A02", 1, "fail")
    ]
    doc = _qc_json(cli, root, "-w", 'qc.status == "pass" and well == "A02"')
    assert [(row["well"], row["field"]) for row in doc["images"]] == [("A02", 2)]
    # with --plate / --image: the images that match both
    a01 = next(i.id for i in plate_repo.images.all() if i.position and i.position.well == "A01")
    doc = _qc_json(cli, root, "--plate", "synth", "--where", 'well in ("B01", "B02")')
    assert sorted(row["well"] for row in doc["images"]) == ["B01", "B01", "B02", "B02"]
    doc = _qc_json(cli, root, "--image", a01, "--where", 'well != "B01"')
    assert [row["id"] for row in doc["images"]] == [a01]


def test_where_matching_nothing_or_malformed(
    plate_repo: Repository, cli: Callable[..., Result]
) -> None:
    root = plate_repo.root
    none = cli("qc", root, "--where", 'well == "H12"')
    assert none.exit_code == 1 and "no image matches --where" in none.stderr
    a01 = next(i.id for i in plate_repo.images.all() if i.position and i.position.well == "A01")
    none = cli("qc", root, "--image", a01, "--where", 'well == "B01"')
    assert none.exit_code == 1 and "among the images chosen" in none.stderr
    bad = cli("qc", root, "--where", "well ==")
    assert bad.exit_code != 0 and isinstance(bad.exception, InvalidInput)
    unknown = cli("qc", root, "--where", 'wel == "A01"')
    assert isinstance(unknown.exception, InvalidInput) and "well" in str(unknown.exception)


def test_unknown_image_and_plate(plate_repo: Repository, cli: Callable[..., Result]) -> None:
    result = cli("qc", plate_repo.root, "--image", "deadbeef")
    assert isinstance(result.exception, NotFound)
    assert "no image with id 'deadbeef'" in str(result.exception)
    result = cli("qc", plate_repo.root, "--plate", "nope")
    assert isinstance(result.exception, NotFound) and "(plates: synth)" in str(result.exception)


def test_empty_repository(tmp_path: Path, cli: Callable[..., Result]) -> None:
    Repository.init(tmp_path / "empty").close()
    result = cli("qc", tmp_path / "empty")
    assert result.exit_code == 1
    assert "holds no images" in result.stderr and "quantscope ingest" in result.stderr
    assert cli("qc", tmp_path / "nowhere").exit_code != 0


def _damaged(repo: Repository, tmp_path: Path, how: str) -> Path:
    """Damage the stored profile of channel 0 (a copy is kept in ``tmp_path``); returns it."""
    row = next(r for r in repo.quality.illumination_profiles() if r.channel == 0)
    folder = repo.root / row.store_path
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    if how == "chunk":
        chunk = next(p for p in (folder / "0").iterdir() if p.name != "zarr.json")
        chunk.write_bytes(b"not a blosc frame")
    elif how == "json":
        (folder / "zarr.json").write_text("{not json")
    else:
        shutil.rmtree(folder)
    return backup


@pytest.mark.parametrize(
    ("how", "error", "message"),
    [
        ("chunk", RepositoryError, "cannot be read"),
        ("json", RepositoryError, "cannot be read"),
        ("gone", NotFound, "listed in the catalog but missing"),
    ],
)
def test_damaged_profile(
    plate_repo: Repository,
    tmp_path: Path,
    cli: Callable[..., Result],
    how: str,
    error: type[Exception],
    message: str,
) -> None:
    row = next(r for r in plate_repo.quality.illumination_profiles() if r.channel == 0)
    folder = plate_repo.root / row.store_path
    backup = _damaged(plate_repo, tmp_path, how)
    try:
        with pytest.raises(error, match=message) as exc:
            load_profile(plate_repo, "synth", 0)
        text = str(exc.value)
        assert str(folder) in text and "plate 'synth' channel 0" in text
        assert "--profiles --plate 'synth'" in text  # what to do
        # the report still renders, and says what is missing
        data = collect_report_data(plate_repo)
        assert [p.channel for p in data.profiles] == [1]
        assert len(data.problems) == 1 and message in data.problems[0]
        out = tmp_path / "qc.html"
        result = cli("qc", plate_repo.root, "--report", out)
        assert result.exit_code == 0, result.output
        assert "warning:" in result.stderr and message in result.stderr
        page = out.read_text()
        assert "class='problems'" in page and message in page
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(backup, folder)
    assert load_profile(plate_repo, "synth", 0)[0].ndim == 2
    assert collect_report_data(plate_repo).problems == []


def test_quality_groups(plate_repo: Repository, tmp_path: Path) -> None:
    groups = plate_repo.quality.groups()
    assert set(groups) == {i.id for i in plate_repo.images.all()}
    assert all(g == ("synth", ["DAPI", "GFP"]) for g in groups.values())
    loose = Repository.init(tmp_path / "loose")
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint16))
    report = ingest(loose, [tmp_path / "a.tif"], qc=False)
    assert loose.quality.groups() == {report.added[0].id: (None, ["C0"])}
    loose.close()


def test_an_ingest_re_flags_only_the_plates_it_adds_to(tmp_path: Path) -> None:
    """Adding images re-evaluates the flags of their plate (new peers can change a verdict),
    not those of other plates, whose peers did not change: the QC step costs what the plates
    touched hold, not what the repository holds. A run over every image re-flags them all."""
    from quantscope.qc import run_qc
    from quantscope.synth import SynthOptions, synth_plate

    p1 = synth_plate(tmp_path / "p1", SynthOptions(plate="1x2", fields=1, size=64, seed=1))
    p2 = synth_plate(tmp_path / "p2", SynthOptions(plate="1x2", fields=1, size=64, seed=2))
    renamed = tmp_path / "p2_renamed"
    renamed.mkdir()
    for f in p2.images_dir.iterdir():  # a second plate: other names, other pixels
        shutil.copy(f, renamed / f.name.replace(p2.fields[0].name.split("_")[0], "OTHER"))
    repo = Repository.init(tmp_path / "repo")
    first = ingest(repo, [p1.images_dir])
    assert first.ok and len(first.qc) == 2
    marker = ("warn", ["a verdict only a re-evaluation would replace"])
    repo.quality.set_status({i: marker for i in first.qc})
    second = ingest(repo, [renamed])
    assert second.ok and len(second.qc) == 2
    statuses = repo.quality.status()
    assert all(statuses[i] == marker for i in first.qc)  # plate 1 untouched
    assert all(statuses[i] != marker for i in second.qc)
    run_qc(repo, recompute=False)  # everything: plate 1 re-flagged as well
    statuses = repo.quality.status()
    assert all(statuses[i] != marker for i in first.qc)
    repo.close()
