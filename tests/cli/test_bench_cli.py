"""``quantscope bench``: add-set, ls, run, score, leaderboard, and their one-line errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import Result

BBBC = "bbbc039_nuclei_subset"


@pytest.fixture
def small_set(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Four BBBC039 images and their labels, copied."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for f in sorted((shared_data / BBBC / "images").glob("*.tif"))[:4]:
        shutil.copy(f, images / f.name)
        shutil.copy(shared_data / BBBC / "labels" / f.name, labels / f.name)
    return images, labels


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_bench_workflow(
    cli: Callable[..., Result], repo_path: Path, small_set: tuple[Path, Path], tmp_path: Path
) -> None:
    images, labels = small_set
    out = _ok(cli("bench", "add-set", repo_path, "four", "--images", images, "--labels", labels))
    assert "set four: 4 images" in out.stdout and "CC0 1.0" not in out.stdout  # no SOURCE.md
    assert "license: not stated" in out.stdout
    # predictions: the labels with the upper half of every image lost
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in labels.glob("*.tif"):
        lab = tifffile.imread(f)
        lab[: lab.shape[0] // 2] = 0
        tifffile.imwrite(pred / f"{f.stem}_pred.tif", lab)
    _ok(cli("bench", "run", repo_path, "--set", "four", "--predictions", labels, "--method", "ref"))
    run = _ok(
        cli(
            "bench",
            "run",
            repo_path,
            "--set",
            "four",
            "--predictions",
            pred,
            "--match",
            "{name}_pred",
            "--tool",
            "halve",
            "--tool-version",
            "0.1",
            "--param",
            "fraction=0.5",
            "--json",
        )
    )
    data = json.loads(run.stdout)
    assert data["method"] == "halve(fraction=0.5)" and data["parameters"] == {"fraction": 0.5}
    assert data["tool_version"] == "0.1" and data["n_images"] == 4
    assert 0.3 < data["summary"]["mean"]["recall"]["value"] < 0.75
    assert data["summary"]["mean"]["precision"]["value"] > 0.9
    lb = _ok(cli("bench", "leaderboard", repo_path, "--set", "four", "--json"))
    board = json.loads(lb.stdout)
    assert [e["method"] for e in board["entries"]] == ["ref", "halve(fraction=0.5)"]
    assert board["entries"][1]["diff_vs_best"]["value"] < 0
    html = tmp_path / "board.html"
    text = _ok(cli("bench", "leaderboard", repo_path, "--set", "four", "--html", html))
    assert "halve(fraction=0.5)" in text.stdout and html.is_file()
    assert "data:image/png;base64," in html.read_text()
    ls = json.loads(_ok(cli("bench", "ls", repo_path, "--json")).stdout)
    assert ls[0]["name"] == "four" and ls[0]["n_runs"] == 2
    assert "four" in _ok(cli("bench", "ls", repo_path)).stdout


def test_bench_score_without_repository(
    cli: Callable[..., Result], small_set: tuple[Path, Path]
) -> None:
    _, labels = small_set
    data = json.loads(
        _ok(cli("bench", "score", "--truth", labels, "--pred", labels, "--json")).stdout
    )
    assert data["n_images"] == 4 and data["mean"]["mean_ap"]["value"] == 1.0
    assert data["pooled"]["splits"] == 0 and len(data["per_image"]) == 4
    text = _ok(cli("bench", "score", "--truth", labels, "--pred", labels, "--per-image"))
    assert "mean_ap" in text.stdout and "IXMtest_A02_s1" in text.stdout


def test_bench_errors_are_one_line(
    cli: Callable[..., Result], repo_path: Path, small_set: tuple[Path, Path], tmp_path: Path
) -> None:
    images, labels = small_set
    bad = tmp_path / "bad"
    bad.mkdir()
    first = sorted(labels.glob("*.tif"))[0]
    tifffile.imwrite(bad / first.name, tifffile.imread(first).astype(np.float32))
    r = cli("bench", "score", "--truth", labels, "--pred", bad, "--missing", "empty")
    assert r.exit_code == 1 and "pixels are float32" in r.stderr and first.name in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli("bench", "score", "--truth", labels, "--pred", bad)
    assert r.exit_code == 1 and "no prediction for 3 of 4" in r.stderr
    r = cli("bench", "run", repo_path, "--set", "nope", "--predictions", labels)
    assert r.exit_code == 1 and "benchmark set 'nope' does not exist" in r.stderr
    r = cli("bench", "run", repo_path, "--set", "x")
    assert r.exit_code == 2 and "exactly one of --predictions" in r.stderr
    r = cli("bench", "add-set", repo_path, "x")
    assert r.exit_code == 2 and "--labels DIR is required" in r.stderr
    (images / "extra.tif").write_bytes(first.read_bytes())
    r = cli("bench", "add-set", repo_path, "x", "--images", images, "--labels", labels)
    assert r.exit_code == 1 and "extra.tif (expected extra.tif" in r.stderr
    r = cli("bench", "leaderboard", repo_path, "--set", "x", "--metric", "fp")
    assert r.exit_code == 1 and "rank by one of" in r.stderr


def test_bench_add_set_binary_and_synthetic(
    cli: Callable[..., Result], repo_path: Path, tmp_path: Path
) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((20, 20), np.uint8)
    m[2:6, 2:6] = 1
    m[6:9, 6:9] = 1
    tifffile.imwrite(masks / "a.tif", m)
    out = _ok(
        cli(
            "bench",
            "add-set",
            repo_path,
            "bin",
            "--labels",
            masks,
            "--binary",
            "--connectivity",
            "2",
            "--license",
            "CC-BY-4.0",
        )
    )
    assert "1 image, 1 object (binary, connectivity 2)" in out.stdout and "CC-BY-4.0" in out.stdout
    syn = json.loads(
        _ok(
            cli(
                "bench",
                "add-set",
                repo_path,
                "syn",
                "--synth",
                "--n-images",
                "2",
                "--size",
                "64",
                "--touching",
                "0.5",
                "--snr",
                "0.5",
                "--blur",
                "1",
                "--no-qc",
                "--json",
            )
        ).stdout
    )
    assert syn["n_items"] == 2 and all(i["image_id"] for i in syn["items"])
    opts = syn["provenance"]["synthetic"]["options"]
    assert (opts["touching"], opts["snr"], opts["blur"]) == (0.5, 0.5, 1.0)


def test_bench_score_of_one_image_says_1_image(
    cli: Callable[..., Result], small_set: tuple[Path, Path], tmp_path: Path
) -> None:
    _, labels = small_set
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(sorted(labels.glob("*.tif"))[0], one)
    text = " ".join(_ok(cli("bench", "score", "--truth", one, "--pred", one)).stdout.split())
    assert "(1 image)" in text and "1 images" not in text
