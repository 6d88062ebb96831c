"""Ground-truth sets and benchmark runs in a repository, and leaderboards."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from quantscope.benchmark import BenchResult, BenchRun, BenchSet, add_set, run_benchmark
from quantscope.benchmark._files import file_sha256
from quantscope.benchmark._leaderboard import leaderboard, write_leaderboard_html
from quantscope.benchmark._runs import verify_prediction
from quantscope.catalog import BenchRunRecord, BenchSetRecord, Repository
from quantscope.errors import IntegrityError, InvalidInput, NotFound


@pytest.fixture(scope="module")
def bbbc_repo(bbbc039: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with BBBC039 registered as set 'bbbc039' (image references only)."""
    root = tmp_path_factory.mktemp("bench") / "repo"
    with Repository.init(root) as repo:
        add_set(repo, "bbbc039", bbbc039 / "labels", bbbc039 / "images", ingest=False)
    return root


def test_set_records_items_provenance_and_license(bbbc_repo: Path, bbbc039: Path) -> None:
    with Repository.open(bbbc_repo) as repo:
        s = repo.bench.get_set("bbbc039")
        assert s.n_items == 40 and s.n_objects == 4484
        assert s.license.startswith("CC0 1.0")
        prov = s.provenance
        assert prov["labels_dir"] == str((bbbc039 / "labels").resolve())
        assert prov["match"] == "{name}" and prov["masks"] == "labels"
        assert prov["images_ingested"] is False
        assert "DeepTrackAI" in prov["source_text"]
        item = s.items[0]
        assert item.image_id is None and item.image_sha256 == file_sha256(item.image_path)
        stored = repo.root / item.labels_path
        assert file_sha256(stored) == item.labels_sha256
        src = tifffile.imread(item.source_labels_path)
        assert (tifffile.imread(stored) == src).all() and list(item.shape) == list(src.shape)
        assert sum(i.n_objects for i in s.items) == 4484
        assert [x.name for x in repo.bench.sets()] == ["bbbc039"]
        with pytest.raises(InvalidInput, match="already exists"):
            add_set(repo, "bbbc039", bbbc039 / "labels", ingest=False)
        with pytest.raises(NotFound, match="known sets: bbbc039"):
            repo.bench.get_set("nope")
        with pytest.raises(InvalidInput, match="set name"):
            add_set(repo, "../x", bbbc039 / "labels")


def test_runs_store_scores_with_provenance(
    bbbc_repo: Path, bbbc039: Path, bbbc_variants: Callable[[str], Path]
) -> None:
    with Repository.open(bbbc_repo) as repo:
        ref = run_benchmark(repo, "bbbc039", bbbc039 / "labels", method="reference")
        ero = run_benchmark(
            repo,
            "bbbc039",
            bbbc_variants("eroded2"),
            tool="erosion",
            tool_version="1",
            parameters={"radius_px": 2},
        )
        assert ref.summary["mean"]["mean_ap"] == {
            "value": 1.0,
            "low": 1.0,
            "high": 1.0,
            "n": 40,
            "confidence": 0.95,
        }
        assert ero.method == "erosion(radius_px=2)"
        assert ero.tool_version == "1" and ero.parameters == {"radius_px": 2}
        assert ero.source_kind == "predictions"
        assert ero.source == str(bbbc_variants("eroded2").resolve())
        assert ero.software["quantscope"] and ero.thresholds[0] == 0.5
        assert ero.summary["mean"]["mean_ap"]["value"] < 0.6
        # per-image scores in the catalog agree with the in-memory result
        scores = repo.bench.scores([ero.id])[ero.id]
        per = ero.result.per_image
        assert set(scores) == set(per)
        k = next(iter(per))
        assert scores[k]["mean_ap"] == pytest.approx(per[k]["mean_ap"])
        results = repo.bench.results(ero.id)
        assert len(results) == 40 and all(verify_prediction(repo, r) for r in results)
        assert results[0].source_pred_path.startswith(str(bbbc_variants("eroded2")))
        assert repo.bench.get_run(ero.id[:10]).id == ero.id


def test_missing_predictions_and_tampered_truth(
    bbbc_repo: Path, bbbc039: Path, tmp_path: Path
) -> None:
    preds = tmp_path / "preds"
    preds.mkdir()
    for f in sorted((bbbc039 / "labels").glob("*.tif"))[:3]:
        shutil.copy(f, preds / f.name)
    with Repository.open(bbbc_repo) as repo:
        n_runs = len(repo.bench.runs("bbbc039"))
        with pytest.raises(InvalidInput, match=r"no prediction for 37 of 40 .*--missing empty"):
            run_benchmark(repo, "bbbc039", preds)
        assert len(repo.bench.runs("bbbc039")) == n_runs  # nothing stored
        part = run_benchmark(repo, "bbbc039", preds, missing="empty", method="partial")
        assert part.summary["n_missing_predictions"] == 37
        # an image without nuclei (BBBC039 has one) and no prediction is a perfect score
        files = sorted((bbbc039 / "labels").glob("*.tif"))
        n_empty = sum(int(tifffile.imread(f).max()) == 0 for f in files[3:])
        assert n_empty == 1
        assert part.summary["mean"]["mean_ap"]["value"] == pytest.approx((3 + n_empty) / 40)
        repo.bench.delete_run(part.id)
        # the stored truth is checked on every run
        item = repo.bench.get_set("bbbc039").items[5]
        stored = repo.root / item.labels_path
        original = stored.read_bytes()
        try:
            tifffile.imwrite(stored, np.zeros(item.shape, np.uint16))
            with pytest.raises(IntegrityError, match="changed since it was registered"):
                run_benchmark(repo, "bbbc039", bbbc039 / "labels")
        finally:
            stored.write_bytes(original)


@pytest.mark.slow
def test_leaderboard_ranks_with_confidence_intervals(
    bbbc_repo: Path, bbbc039: Path, bbbc_variants: Callable[[str], Path], tmp_path: Path
) -> None:
    with Repository.open(bbbc_repo) as repo:
        run_benchmark(repo, "bbbc039", bbbc_variants("shift1"), method="shift1")
        run_benchmark(repo, "bbbc039", bbbc_variants("shift1"), method="shift1-again")
        board = leaderboard(repo, "bbbc039")
        names = [e.method for e in board.entries]
        assert names[0] == "reference"
        assert names.index("shift1") < names.index("erosion(radius_px=2)")
        by = {e.method: e for e in board.entries}
        # identical predictions under two names: tied, paired difference exactly 0
        assert by["shift1-again"].tied_with_best is False
        assert by["shift1"].estimate.value == by["shift1-again"].estimate.value
        ero = by["erosion(radius_px=2)"]
        assert ero.diff_vs_best.high < 0 and not ero.tied_with_best and ero.rank == len(names)
        assert ero.rank_label == str(ero.rank) and by["reference"].rank_label == "1"
        d = board.to_dict()
        assert d["metric"] == "mean_ap" and d["entries"][0]["estimate"]["value"] == 1.0
        assert "source_text" not in d["set"]["provenance"]
        # latest run of each method by default, every run on request
        run_benchmark(repo, "bbbc039", bbbc_variants("shift3"), method="shift1")
        again = leaderboard(repo, "bbbc039")
        assert len(again.entries) == len(board.entries)
        assert len(leaderboard(repo, "bbbc039", all_runs=True).entries) == len(names) + 1
        by_f1 = leaderboard(repo, "bbbc039", metric="f1")
        assert by_f1.metric == "f1" and by_f1.entries[0].method == "reference"
        with pytest.raises(InvalidInput, match="rank by one of"):
            leaderboard(repo, "bbbc039", metric="count_error")
        out = write_leaderboard_html(repo, board, tmp_path / "lb.html")
        text = out.read_text()
        for needle in (
            "<svg",
            "data:image/png;base64,",
            "Per-image comparison",
            "Worst images",
            "erosion(radius_px=2)",
            "CC0 1.0",
        ):
            assert needle in text, needle
        assert "http://" not in text and "https://" not in text  # self-contained


def test_leaderboard_two_methods_tied(tmp_path: Path, bbbc039: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    for f in sorted((bbbc039 / "labels").glob("*.tif"))[:6]:
        shutil.copy(f, labels / f.name)
    with Repository.init(tmp_path / "r") as repo:
        add_set(repo, "six", labels, license="CC0-1.0")
        a = run_benchmark(repo, "six", labels, method="a")
        b = run_benchmark(repo, "six", labels, method="b")
        board = leaderboard(repo, "six")
        assert {e.method for e in board.entries} == {"a", "b"}
        second = board.entries[1]
        assert second.tied_with_best and second.rank == 1 and second.rank_label == "=1"
        assert a.id != b.id
        empty = leaderboard(repo, "six", all_runs=True)
        assert len(empty.entries) == 2


def test_binary_masks_with_stated_connectivity(tmp_path: Path) -> None:
    labels = tmp_path / "masks"
    labels.mkdir()
    mask = np.zeros((16, 16), np.uint8)
    mask[2:5, 2:5] = 255
    mask[5:8, 5:8] = 255  # touches the first square diagonally only
    mask[10:14, 10:14] = 255
    tifffile.imwrite(labels / "m.tif", mask)
    with Repository.init(tmp_path / "r") as repo:
        four = add_set(repo, "four", labels, masks="binary", connectivity=1)
        eight = add_set(repo, "eight", labels, masks="binary", connectivity=2)
        assert (four.n_objects, eight.n_objects) == (3, 2)
        assert four.provenance["connectivity"] == 1
        assert four.license.startswith("not stated")
        # add_set returns a BenchSet: the catalog record, printed (--json) without source text
        assert isinstance(four, BenchSetRecord) and four == BenchSet.of(repo.bench.get_set("four"))
        full = repo.bench.get_set("four").to_dict()
        assert "source_text" in full["provenance"]
        del full["provenance"]["source_text"]
        assert four.to_dict() == full
        with pytest.raises(InvalidInput, match="a binary mask"):
            tifffile.imwrite(labels / "m.tif", mask > 0)
            add_set(repo, "plain", labels)
        tifffile.imwrite(labels / "m.tif", mask.astype(np.float32))
        with pytest.raises(InvalidInput, match=r"m\.tif: pixels are float32"):
            add_set(repo, "plain", labels)
        tifffile.imwrite(labels / "m.tif", mask)
        with pytest.raises(InvalidInput, match="connectivity 3"):
            add_set(repo, "c3", labels, masks="binary", connectivity=3)
        assert [s.name for s in repo.bench.sets()] == ["eight", "four"]
        assert not (repo.root / "benchmarks" / "plain").exists()


def test_replace_deletes_runs_and_files(tmp_path: Path, bbbc039: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    for f in sorted((bbbc039 / "labels").glob("*.tif"))[:2]:
        shutil.copy(f, labels / f.name)
    with Repository.init(tmp_path / "r") as repo:
        add_set(repo, "s", labels)
        run = run_benchmark(repo, "s", labels)
        assert (repo.root / "benchmarks" / "s" / "runs" / run.id).is_dir()
        # run_benchmark returns a BenchRun: the stored record plus extra files and the result
        assert isinstance(run, BenchRun) and isinstance(run, BenchRunRecord)
        assert isinstance(run.result, BenchResult)
        assert run.to_dict() == {**repo.bench.get_run(run.id).to_dict(), "extra": []}
        add_set(repo, "s", labels, replace=True, description="again")
        assert repo.bench.runs("s") == []
        assert repo.bench.get_set("s").description == "again"
        assert not (repo.root / "benchmarks" / "s" / "runs").exists()
        assert len(list((repo.root / "benchmarks" / "s" / "truth").iterdir())) == 2
        repo.bench.delete_set("s")
        assert repo.bench.sets() == []


def test_interrupted_registration_is_recovered(tmp_path: Path, bbbc039: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    for f in sorted((bbbc039 / "labels").glob("*.tif"))[:2]:
        shutil.copy(f, labels / f.name)
    with Repository.init(tmp_path / "r") as repo:
        add_set(repo, "s", labels)
        bench = repo.root / "benchmarks"
        # a replacement killed after moving the old folder aside, before the new one arrived
        (bench / "s").rename(bench / ".s.old-999")
        (bench / ".s.new-999" / "truth").mkdir(parents=True)
        with pytest.raises(IntegrityError, match="is missing"):
            run_benchmark(repo, "s", labels)
        add_set(repo, "t", labels)  # another set's registration leaves them alone
        assert (bench / ".s.old-999").is_dir()
        with pytest.raises(InvalidInput, match="already exists"):
            add_set(repo, "s", labels)
        add_set(repo, "s", labels, replace=True)
        assert sorted(p.name for p in bench.iterdir()) == ["s", "t"]
        assert run_benchmark(repo, "s", labels).summary["mean"]["mean_ap"]["value"] == 1.0


def test_importing_benchmark_leaves_the_catalog_unloaded() -> None:
    """Scoring folders needs no repository: ``BenchSet``/``BenchRun`` (records of the catalog)
    load SQLAlchemy only when asked for."""
    code = (
        "import sys, quantscope.benchmark as b; before = 'sqlalchemy' in sys.modules; "
        "print(before, b.BenchSet.__name__, b.BenchRun.__name__, 'sqlalchemy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "BenchSet", "BenchRun", "True"]
