"""A run killed with SIGKILL (a real ``quantscope run`` process) leaves no half-written output
registered, and the next run completes exactly what is missing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from quantscope.analysis import labels_digest, read_labels
from quantscope.catalog import Repository

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL"),
    pytest.mark.slow,
]

NUCLEI = Path(__file__).resolve().parents[2] / "pipelines" / "nuclei.yaml"


def _count(root: Path, table: str) -> int:
    eng = sa.create_engine(f"sqlite:///{root / 'catalog.sqlite'}")
    try:
        with eng.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    except sa.exc.OperationalError:
        return 0
    finally:
        eng.dispose()


def _assert_registered_outputs_are_whole(root: Path) -> int:
    with Repository.open(root) as repo:
        arts = [a for r in repo.runs.all() for a in repo.runs.artifacts(r.id)]
        for a in {a.key: a for a in arts}.values():
            assert ".tmp-" not in a.path, a.path
            full = root / a.path
            if a.kind == "labels":
                assert labels_digest(read_labels(root, a.path)) == a.sha256, a.path
            else:
                assert hashlib.sha256(full.read_bytes()).hexdigest() == a.sha256, a.path
        return len({a.key for a in arts})


@pytest.fixture
def plate_repo(tmp_path: Path) -> Path:
    from quantscope.ingestion import ingest
    from quantscope.synth import synth_plate

    synth_plate(tmp_path / "plate", plate="2x3", fields=1, size=256, seed=5)
    with Repository.init(tmp_path / "repo") as repo:
        assert len(ingest(repo, [tmp_path / "plate" / "images"], qc=False).added) == 6
    return tmp_path / "repo"


def test_sigkill_during_a_run_leaves_only_whole_outputs_registered(
    plate_repo: Path, quantscope_command: list[str], poll_until: Callable[..., bool]
) -> None:
    cmd = [*quantscope_command, "run", str(plate_repo), str(NUCLEI), "--jobs", "1"]
    env = {**os.environ, "COLUMNS": "200"}
    kills = 0
    wait: dict[str, object] = {"timeout": 120, "interval": 0.005, "what": "the run"}
    # 1: as soon as the first label image is being written (before it is registered)
    # 2: once some outputs are registered, mid-run
    for moment in ("writing", "registered"):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if moment == "writing":
            ok = poll_until(lambda: any(plate_repo.glob("plates/*/*/*/*/labels/*")), proc, **wait)
        else:
            before = _count(plate_repo, "analysis_artifacts")
            ok = poll_until(
                lambda b=before: _count(plate_repo, "analysis_artifacts") >= b + 2, proc, **wait
            )
        if ok:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        _assert_registered_outputs_are_whole(plate_repo)
    assert kills >= 1, "the runs ended before they could be killed"
    with Repository.open(plate_repo) as repo:
        assert {r.status for r in repo.runs.all()} <= {"running", "interrupted", "completed"}
        registered_before = len(
            repo.runs.registered_artifacts(
                a.key for r in repo.runs.all() for a in repo.runs.artifacts(r.id)
            )
        )
    # the next run marks the killed ones interrupted and completes exactly what is missing
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["failed"] == 0 and report["skipped"] == 0
    with Repository.open(plate_repo) as repo:
        runs = repo.runs.all()
        assert runs[0].status == "completed"
        assert {r.status for r in runs[1:]} <= {"interrupted", "completed"}
        assert sum(r.status == "interrupted" for r in runs) == kills
        final = repo.runs.artifacts(runs[0].id)
        assert sorted(a.kind for a in final).count("labels") == 6
        assert sorted(a.kind for a in final).count("table") == 12  # features + summary
        n_new = len([a for a in final if a.run_id == runs[0].id])
        assert n_new == 18 - registered_before
    assert _assert_registered_outputs_are_whole(plate_repo) == 18
    # no temporary files survive the completed run
    assert not list(plate_repo.rglob(".*.tmp-*"))
