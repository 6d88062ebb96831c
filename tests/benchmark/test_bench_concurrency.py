"""A second writer: registering a set or storing a run while another quantscope process writes to
the repository is refused with ConcurrentAccess, and leaves no half-written set or run behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from quantscope.benchmark import add_set, run_benchmark
from quantscope.catalog import Repository
from quantscope.errors import ConcurrentAccess


def _labels(bbbc039: Path, dest: Path, n: int = 2) -> Path:
    dest.mkdir()
    for f in sorted((bbbc039 / "labels").glob("*.tif"))[:n]:
        shutil.copy(f, dest / f.name)
    return dest


def _bench_files(repo: Repository) -> list[str]:
    """Files (not empty folders) under the repository's benchmark folder."""
    return sorted(
        p.relative_to(repo.root).as_posix()
        for p in repo.root.rglob("*")
        if p.is_file() and "bench" in p.as_posix()
    )


def test_a_second_writer_is_refused_and_nothing_half_written_stays(
    bbbc039: Path, tmp_path: Path
) -> None:
    labels = _labels(bbbc039, tmp_path / "labels")
    with Repository.init(tmp_path / "repo") as repo:
        with repo.write_lock(), pytest.raises(ConcurrentAccess, match="another quantscope"):
            add_set(repo, "two", labels, license="CC0-1.0", ingest=False)
        assert repo.bench.sets() == []
        assert _bench_files(repo) == []

        add_set(repo, "two", labels, license="CC0-1.0", ingest=False)
        files = _bench_files(repo)
        with repo.write_lock(), pytest.raises(ConcurrentAccess, match="another quantscope"):
            run_benchmark(repo, "two", labels, method="reference")
        assert repo.bench.runs("two") == []
        assert _bench_files(repo) == files  # no staged or partial run files left

        run_benchmark(repo, "two", labels, method="reference")
        assert [r.method for r in repo.bench.runs("two")] == ["reference"]
