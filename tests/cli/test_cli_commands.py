"""The ``quantscope`` commands: init, ingest, ls, show, verify, summary, formats."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from quantscope.catalog import Repository

ROW_FIELDS = {
    "id",
    "name",
    "source",
    "plate",
    "well",
    "field",
    "dims",
    "dtype",
    "channels",
    "pixel_size_um",
}


@pytest.fixture
def filled(repo_path: Path, images: Path, cli: Callable[..., Result]) -> Path:
    result = cli("ingest", repo_path, images)
    assert result.exit_code == 0, result.output
    return repo_path


def _ls(cli: Callable[..., Result], repo: Path) -> list[dict]:
    result = cli("ls", repo, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_the_commands(cli: Callable[..., Result]) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("init", "ingest", "ls", "show", "verify", "summary", "formats"):
        assert command in result.stdout


def test_init_creates_a_repository(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("init", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "initialized repository" in result.stdout
    assert (tmp_path / "r" / "quantscope.toml").is_file()
    assert (tmp_path / "r" / "catalog.sqlite").is_file()
    for sub in ("images", "plates", "tables"):
        assert (tmp_path / "r" / sub).is_dir()


def test_init_with_a_catalog_url(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("init", tmp_path / "r", "--catalog", "sqlite:///elsewhere.sqlite")
    assert result.exit_code == 0, result.output
    cfg = tomllib.loads((tmp_path / "r" / "quantscope.toml").read_text())
    assert cfg["catalog"]["url"] == "sqlite:///elsewhere.sqlite"
    assert (tmp_path / "r" / "elsewhere.sqlite").is_file()
    assert not (tmp_path / "r" / "catalog.sqlite").exists()
    summary = json.loads(cli("summary", tmp_path / "r", "--json").stdout)
    assert summary["catalog"] == "sqlite:///elsewhere.sqlite"


def test_init_twice_is_one_line_error(repo_path: Path, qs: Callable) -> None:
    run = qs("init", repo_path)
    assert run.code == 1
    assert run.err.count("\n") == 1
    assert run.err.startswith("error: ") and "already a quantscope repository" in run.err


def test_init_with_an_unusable_catalog_url_is_one_line_error(tmp_path: Path, qs: Callable) -> None:
    run = qs("init", tmp_path / "r", "--catalog", "nosuchdialect://x")
    assert run.code == 1
    (line,) = run.err.splitlines()
    assert "catalog URL 'nosuchdialect://x' cannot be used" in line


def test_ingest_reports_cleaned_leftovers(
    repo_path: Path, images: Path, cli: Callable[..., Result]
) -> None:
    (repo_path / "images" / "deadbeef.ome.zarr").mkdir()
    result = cli("ingest", repo_path, images)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "cleaned leftover of an interrupted run: images/deadbeef.ome.zarr" in lines
    assert not (repo_path / "images" / "deadbeef.ome.zarr").exists()


def test_ingest_reports_and_is_idempotent(
    repo_path: Path, images: Path, cli: Callable[..., Result]
) -> None:
    first = cli("ingest", repo_path, images)
    assert first.exit_code == 0, first.output
    assert "ingested 2 images from 3 files, skipped 0, failed 0" in first.stdout
    second = cli("ingest", repo_path, images)
    assert second.exit_code == 0, second.output
    assert "ingested 0 images from 3 files, skipped 2, failed 0" in second.stdout
    skipped = [line for line in second.stdout.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2
    assert all("already ingested" in line for line in skipped)
    # the file name with brackets is printed literally, not eaten as console markup
    assert any("stack [xz].ome.tif" in line for line in skipped)
    assert len(_ls(cli, repo_path)) == 2


def test_ingest_json(repo_path: Path, images: Path, cli: Callable[..., Result]) -> None:
    result = cli("ingest", repo_path, images, "--json", "--jobs", "2")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {r["name"] for r in doc["added"]} == {"P9_C04_s1", "stack [xz]"}
    assert doc["failed"] == [] and doc["skipped"] == [] and doc["cleaned"] == []
    assert all(set(r) == ROW_FIELDS for r in doc["added"])


def test_ingest_with_a_pattern(repo_path: Path, tmp_path: Path, cli: Callable[..., Result]) -> None:
    import numpy as np
    import tifffile

    folder = tmp_path / "pat"
    folder.mkdir()
    for token in ("DAPI", "GFP"):
        tifffile.imwrite(folder / f"exp1-D07-f2-{token}.tif", np.full((8, 8), len(token), np.uint8))
    result = cli("ingest", repo_path, folder, "--pattern", "{plate}-{well}-f{field}-{channel}")
    assert result.exit_code == 0, result.output
    (row,) = _ls(cli, repo_path)
    assert (row["plate"], row["well"], row["field"]) == ("exp1", "D07", 2)
    assert row["channels"] == ["DAPI", "GFP"]
    assert row["dims"] == "1x2x1x8x8"


def test_failures_exit_non_zero_with_one_line_each_and_a_summary(
    repo_path: Path, images: Path, tmp_path: Path, qs: Callable
) -> None:
    (images / "empty.tif").write_bytes(b"")
    (images / "notes.tif").write_text("not an image")
    run = qs("ingest", repo_path, images, tmp_path / "missing")
    assert run.code == 1
    errors = run.err.strip().splitlines()
    assert len(errors) == 3, run.err
    assert all(line.startswith("error: ") for line in errors)
    by_name = {Path(line.split(": ")[1]).name: line for line in errors}
    assert "file is empty (0 bytes)" in by_name["empty.tif"]
    assert "not a valid tiff file" in by_name["notes.tif"]
    assert "no such file or folder" in by_name["missing"]
    summary = run.out.strip().splitlines()[-1]
    assert summary.startswith("ingested 2 images from 5 files, skipped 0, failed 3")


def test_unsupported_format_lists_supported_ones(
    repo_path: Path, data_root: Path, qs: Callable
) -> None:
    run = qs("ingest", repo_path, data_root / "vendor_formats" / "seq")
    assert run.code == 1
    (line,) = run.err.strip().splitlines()
    assert "pims_sample_norpix6.seq: no reader for .seq; supported formats:" in line
    assert "czi (.czi)" in line and "nd2 (.nd2)" in line


@pytest.mark.parametrize("command", [("ls",), ("summary",), ("verify",), ("ingest", "x.tif")])
def test_uninitialized_repository_is_one_line_error(
    tmp_path: Path, qs: Callable, command: tuple[str, ...]
) -> None:
    run = qs(command[0], tmp_path, *command[1:])
    assert run.code == 1
    assert run.out == ""
    (line,) = run.err.splitlines()
    assert line.startswith("error: ") and "not a quantscope repository" in line
    assert "quantscope init" in line


def test_malformed_pattern_is_one_line_error(repo_path: Path, images: Path, qs: Callable) -> None:
    run = qs("ingest", repo_path, images, "--pattern", "{plate}_{wel}")
    assert run.code == 1
    (line,) = run.err.splitlines()
    assert "unknown placeholder {wel}" in line


def test_ls_json_rows(filled: Path, cli: Callable[..., Result]) -> None:
    rows = _ls(cli, filled)
    assert len(rows) == 2
    assert all(set(r) == ROW_FIELDS for r in rows)
    plate = next(r for r in rows if r["plate"])
    assert (plate["plate"], plate["well"], plate["field"]) == ("P9", "C04", 1)
    assert plate["name"] == "P9_C04_s1"
    assert plate["source"] == "P9_C04_s1_w1.tif (+1)"
    assert plate["dims"] == "1x2x1x40x56" and plate["dtype"] == "uint16"
    assert plate["channels"] == ["w1", "w2"]
    loose = next(r for r in rows if not r["plate"])
    assert loose["name"] == "stack [xz]" and loose["source"] == "stack [xz].ome.tif"
    assert (loose["well"], loose["field"]) == (None, None)
    assert loose["channels"] == ["DAPI", "GFP"]
    assert loose["pixel_size_um"] == [0.65, 0.65, None]
    assert len({r["id"] for r in rows}) == 2


def test_ls_table(filled: Path, cli: Callable[..., Result]) -> None:
    result = cli("ls", filled)
    assert result.exit_code == 0, result.output
    assert "2 images" in result.stdout
    for row in _ls(cli, filled):
        assert row["id"] in result.stdout
    assert "stack [xz]" in result.stdout  # brackets are not console markup
    assert "DAPI, GFP" in result.stdout and "0.65 µm" in result.stdout


def test_show_json_has_the_ls_fields_and_more(filled: Path, cli: Callable[..., Result]) -> None:
    rows = _ls(cli, filled)
    for row in rows:
        result = cli("show", filled, row["id"][:6], "--json")  # a unique prefix works
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert set(doc) >= ROW_FIELDS
        for key in ROW_FIELDS - {"channels"}:
            assert doc[key] == row[key], key
        assert [c["name"] for c in doc["channels"]] == row["channels"]
        assert doc["stored_files"] > 0
        assert Path(doc["path"]).is_dir()
        assert len(doc["sources"]) == (2 if row["plate"] else 1)
        assert all(len(s["sha256"]) == 64 for s in doc["sources"])


def test_show_text(filled: Path, cli: Callable[..., Result]) -> None:
    loose = next(r for r in _ls(cli, filled) if not r["plate"])
    result = cli("show", filled, loose["id"])
    assert result.exit_code == 0, result.output
    assert f"stack [xz] ({loose['id']})" in result.stdout
    assert "channels" in result.stdout and "DAPI" in result.stdout
    assert "stack [xz].ome.tif" in result.stdout


def test_show_unknown_id_is_one_line_error(filled: Path, qs: Callable) -> None:
    run = qs("show", filled, "nosuchimage")
    assert run.code == 1
    (line,) = run.err.splitlines()
    assert "no image with id 'nosuchimage'" in line


def test_summary(filled: Path, cli: Callable[..., Result]) -> None:
    result = cli("summary", filled, "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert (s["images"], s["channels"], s["plates"], s["wells"], s["source_files"]) == (
        2,
        4,
        1,
        1,
        3,
    )
    assert s["pixel_bytes"] == 2 * 2 * 40 * 56 * 2
    assert s["stored_bytes"] > 0 and s["source_bytes"] > 0
    assert s["root"] == str(filled.absolute())
    text = cli("summary", filled)
    assert text.exit_code == 0
    assert "images" in text.stdout and "plates" in text.stdout


def test_verify_detects_a_flipped_byte_and_a_missing_chunk(
    filled: Path, cli: Callable[..., Result], qs: Callable
) -> None:
    ok = cli("verify", filled)
    assert ok.exit_code == 0, ok.output
    assert "all intact" in ok.stdout
    with Repository.open(filled) as repo:
        chunks = [p for _, p, _, _ in repo.images.stored_files() if "/c." in p]
    flipped, deleted = filled / chunks[0], filled / chunks[-1]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    run = qs("verify", filled)
    assert run.code == 1
    (line,) = run.err.splitlines()
    assert chunks[0] in line and "SHA-256 differs" in line
    assert "1 problem" in run.out and "1 problems" not in run.out
    deleted.unlink()
    result = cli("verify", filled, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    with Repository.open(filled) as repo:
        assert doc["checked"] == len(repo.images.stored_files())
    problems = {p["path"]: p["message"] for p in doc["problems"]}
    assert set(problems) == {chunks[0], chunks[-1]}
    assert problems[chunks[-1]].startswith("missing")


def test_formats(cli: Callable[..., Result]) -> None:
    result = cli("formats")
    assert result.exit_code == 0
    for name in ("ome-tiff", "czi", "nd2", "lif", "dv"):
        assert name in result.stdout
    rows = json.loads(cli("formats", "--json").stdout)
    by_name = {r["format"]: r for r in rows}
    assert by_name["czi"]["extensions"] == [".czi"]
    assert by_name["tiff"]["installed"] is True
    assert set(rows[0]) == {"format", "extensions", "reader", "installed", "description"}
