"""Runs recorded in a PostgreSQL catalog: the same incremental behaviour, failures, lineage and
PROV documents as on SQLite (the server: ``pg_url`` of tests/_postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _analysis_support import FAIL_LIST_ENV, install_test_tools, pipeline_text, remove_test_tools
from quantscope.analysis import parse_pipeline, read_table, run_pipeline
from quantscope.catalog import Repository
from quantscope.provenance import lineage, run_document

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg_repo(pg_url: str, tmp_path: Path) -> Iterator[Repository]:
    from quantscope.ingestion import ingest
    from quantscope.synth import synth_plate

    synth_plate(tmp_path / "plate", plate="1x3", fields=1, size=96, seed=4)
    repo = Repository.init(tmp_path / "repo", pg_url)
    assert len(ingest(repo, [tmp_path / "plate" / "images"], qc=False).added) == 3
    install_test_tools()
    try:
        yield repo
    finally:
        remove_test_tools()
        repo.close()


def test_runs_on_postgresql(pg_repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = pg_repo.images.all()[0]
    monkeypatch.setenv(FAIL_LIST_ENV, bad.id)
    first = run_pipeline(pg_repo, parse_pipeline(pipeline_text()), jobs=2)
    assert (first.computed, first.failed, first.skipped) == (4, 1, 1)
    assert pg_repo.runs.failed_steps(first.run_id)[0].image_id == bad.id
    monkeypatch.delenv(FAIL_LIST_ENV)
    retry = run_pipeline(pg_repo, parse_pipeline(pipeline_text()), where='well = "A01"')
    assert retry.ok and retry.images == 1 and retry.computed == 2
    changed = run_pipeline(pg_repo, parse_pipeline(pipeline_text(scale=2.0)))
    assert (changed.computed, changed.reused) == (3, 3)
    again = run_pipeline(pg_repo, parse_pipeline(pipeline_text(scale=2.0)))
    assert again.computed == 0
    table = read_table(pg_repo.root, again.tables["Nuclei_features"])
    assert table["image_id"].nunique() == 3
    run = pg_repo.runs.get(again.run_id[:6])
    assert run.status == "completed" and run.started_at.tzinfo is not None
    art = pg_repo.runs.artifacts(again.run_id)[0]
    doc = lineage(pg_repo, art.key[:8])
    assert doc["generated_by"]["id"] in {first.run_id, retry.run_id, changed.run_id}
    prov = run_document(pg_repo, changed.run_id)
    assert prov["wasGeneratedBy"] and prov["wasAssociatedWith"]
