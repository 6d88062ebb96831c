"""``verify`` checks analysis outputs against their recorded checksums too (issue 12, item
14): a flipped byte in a label image's chunk or in a per-image Parquet table is reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _analysis_support import fixture_repo, install_test_tools, pipeline_text, remove_test_tools
from quantscope.analysis import parse_pipeline, run_pipeline
from quantscope.catalog import Repository
from quantscope.ingestion import verify


@pytest.fixture
def ran(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[Repository]:
    install_test_tools()
    try:
        for repo in fixture_repo(tmp_path_factory, tmp_path):
            assert run_pipeline(repo, parse_pipeline(pipeline_text())).ok
            yield repo
    finally:
        remove_test_tools()


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_an_intact_repository_with_outputs_verifies(ran: Repository) -> None:
    assert verify(ran) == []


def test_a_flipped_byte_in_a_label_chunk_is_reported(ran: Repository) -> None:
    run = ran.runs.all()[0]
    art = next(a for a in ran.runs.artifacts(run.id) if a.kind == "labels")
    level0 = ran.root / art.path / "0"
    chunk = max(
        (p for p in level0.rglob("*") if p.is_file() and p.name != "zarr.json"),
        key=lambda p: p.stat().st_size,
    )
    _flip(chunk)
    (problem,) = verify(ran)
    assert problem.path == art.path
    assert "analysis output Nuclei of step seg" in problem.message
    assert "differs" in problem.message or "cannot be read" in problem.message


def test_a_flipped_byte_in_a_parquet_table_is_reported(ran: Repository) -> None:
    run = ran.runs.all()[0]
    art = next(a for a in ran.runs.artifacts(run.id) if a.kind == "table")
    _flip(ran.root / art.path)
    (problem,) = verify(ran)
    assert problem.path == art.path
    assert "SHA-256" in problem.message and "differs" in problem.message
    assert "Nuclei_features" in problem.message


def test_a_label_image_without_level_metadata_is_reported(ran: Repository) -> None:
    run = ran.runs.all()[0]
    art = next(a for a in ran.runs.artifacts(run.id) if a.kind == "labels")
    (ran.root / art.path / "0" / "zarr.json").unlink()
    (problem,) = verify(ran)
    assert "level 0 has no zarr.json" in problem.message


def test_the_verify_command_fails_on_a_damaged_output(
    ran: Repository, cli: Callable[..., object]
) -> None:
    run = ran.runs.all()[0]
    art = next(a for a in ran.runs.artifacts(run.id) if a.kind == "table")
    _flip(ran.root / art.path)
    root = ran.root
    ran.close()
    result = cli("verify", str(root))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert art.path in result.stderr  # type: ignore[attr-defined]
