"""The ``quantscope`` command as a real process: startup imports, exit codes, a second writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantscope.catalog import Repository

HEAVY = ("bioio", "zarr", "dask", "tifffile", "skimage", "ome_types", "numcodecs", "bioio_base")


def _run(
    command: list[str], *args: object, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_help_and_listing_do_not_import_heavy_libraries(tmp_path: Path) -> None:
    Repository.init(tmp_path / "repo").close()
    repo = str(tmp_path / "repo")
    code = f"""
import json, sys
import quantscope.cli
after_import = sorted(m for m in {HEAVY!r} if m in sys.modules)
from quantscope.cli import app
for args in (["--help"], ["ls", {repo!r}, "--json"], ["summary", {repo!r}]):
    try:
        app(args)
    except SystemExit as e:
        assert not e.code, (args, e.code)
after_commands = sorted(m for m in {HEAVY!r} if m in sys.modules)
sys.stderr.write(json.dumps([after_import, after_commands]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    after_import, after_commands = json.loads(proc.stderr.strip().splitlines()[-1])
    assert after_import == [], f"`import quantscope.cli` imports {after_import}"
    assert after_commands == [], f"--help / ls / summary import {after_commands}"


def test_second_writer_fails_with_concurrent_access(
    tmp_path: Path, quantscope_command: list[str]
) -> None:
    root = tmp_path / "repo"
    image = tmp_path / "img.tif"
    image.write_bytes(b"II*\x00" + b"\x00" * 60)  # never read: the lock is checked first
    with Repository.init(root) as repo, repo.write_lock():
        proc = _run(quantscope_command, "ingest", root, image)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ")
    assert f"another quantscope process (pid {os.getpid()}) is writing" in line
    assert proc.stdout == ""
    with Repository.open(root) as repo:
        assert repo.images.all() == []


@pytest.mark.slow
def test_exit_code_and_summary_of_a_batch_with_a_failure(
    tmp_path: Path, quantscope_command: list[str]
) -> None:
    import numpy as np
    import tifffile

    root = tmp_path / "repo"
    Repository.init(root).close()
    batch = tmp_path / "batch"
    batch.mkdir()
    tifffile.imwrite(batch / "ok.tif", np.arange(64, dtype=np.uint16).reshape(8, 8))
    (batch / "empty.tif").write_bytes(b"")
    proc = _run(quantscope_command, "ingest", root, batch)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {batch / 'empty.tif'}: file is empty (0 bytes)"]
    assert proc.stdout.splitlines()[-1].startswith(
        "ingested 1 image from 2 files, skipped 0, failed 1"
    )
    again = _run(quantscope_command, "ingest", root, batch / "ok.tif")
    assert again.returncode == 0, again.stderr
    assert "already ingested" in again.stdout
    assert _run(quantscope_command, "verify", root).returncode == 0
