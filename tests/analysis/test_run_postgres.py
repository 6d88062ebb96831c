"""Runs recorded in a PostgreSQL catalog: the same incremental behaviour, failures, lineage and
PROV documents as on SQLite. The server is started by the test (initdb + pg_ctl on a Unix
socket, as tests/catalog does) unless ``QUANTSCOPE_TEST_PG_URL`` names one; without PostgreSQL
the test skips, except under CI where it fails."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_run_support import FAIL_LIST_ENV, install_test_tools, pipeline_text, remove_test_tools

from quantscope.analysis import parse_pipeline, read_table, run_pipeline
from quantscope.catalog import Repository
from quantscope.provenance import lineage, run_document

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _catalog_helpers() -> Any:
    """tests/catalog/conftest.py's plain helpers (_pg_bin, _as_postgres, _with_database)."""
    path = Path(__file__).resolve().parents[1] / "catalog" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_qs_catalog_conftest_helpers", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def pg_base_url() -> Iterator[str]:
    env_url = os.environ.get("QUANTSCOPE_TEST_PG_URL")
    if env_url:
        yield env_url
        return
    h = _catalog_helpers()
    bindir = h._pg_bin()
    if bindir is None:
        msg = "PostgreSQL is not installed (initdb not found); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    base = Path(tempfile.mkdtemp(prefix="qs-pg-analysis-"))
    data, sock = base / "data", base / "sock"
    data.mkdir()
    sock.mkdir()
    if os.geteuid() == 0:
        for p in (base, data, sock):
            shutil.chown(p, "postgres")
        base.chmod(0o755)
    pg = h._as_postgres
    subprocess.run(
        pg(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    port = 5400 + uuid.uuid4().int % 500
    opts = f"-k {sock} -c listen_addresses='' -c fsync=off -c full_page_writes=off -p {port}"
    subprocess.run(
        pg(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-w",
                "-l",
                str(base / "log"),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@/?host={sock}&port={port}"
    finally:
        subprocess.run(
            pg([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_repo(pg_base_url: str, tmp_path: Path) -> Iterator[Repository]:
    import sqlalchemy as sa

    from quantscope.ingest import ingest
    from quantscope.synth import synth_plate

    h = _catalog_helpers()
    name = f"qs_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        h._with_database(pg_base_url, "postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    synth_plate(tmp_path / "plate", plate="1x3", fields=1, size=96, seed=4)
    repo = Repository.init(tmp_path / "repo", h._with_database(pg_base_url, name))
    assert len(ingest(repo, [tmp_path / "plate" / "images"], qc=False).added) == 3
    install_test_tools()
    try:
        yield repo
    finally:
        remove_test_tools()
        repo.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_runs_on_postgresql(pg_repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = pg_repo.images()[0]
    monkeypatch.setenv(FAIL_LIST_ENV, bad.id)
    first = run_pipeline(pg_repo, parse_pipeline(pipeline_text()), jobs=2)
    assert (first.computed, first.failed, first.skipped) == (4, 1, 1)
    assert pg_repo.failed_steps(first.run_id)[0]["image_id"] == bad.id
    monkeypatch.delenv(FAIL_LIST_ENV)
    retry = run_pipeline(pg_repo, parse_pipeline(pipeline_text()), where='well = "A01"')
    assert retry.ok and retry.images == 1 and retry.computed == 2
    changed = run_pipeline(pg_repo, parse_pipeline(pipeline_text(scale=2.0)))
    assert (changed.computed, changed.reused) == (3, 3)
    again = run_pipeline(pg_repo, parse_pipeline(pipeline_text(scale=2.0)))
    assert again.computed == 0
    table = read_table(pg_repo.root, again.tables["Nuclei_features"])
    assert table["image_id"].nunique() == 3
    run = pg_repo.analysis_run(again.run_id[:6])
    assert run["status"] == "completed" and run["started_at"].tzinfo is not None
    art = pg_repo.run_artifacts(again.run_id)[0]
    doc = lineage(pg_repo, art["key"][:8])
    assert doc["generated_by"]["id"] in {first.run_id, retry.run_id, changed.run_id}
    prov = run_document(pg_repo, changed.run_id)
    assert prov["wasGeneratedBy"] and prov["wasAssociatedWith"]
