"""``quantscope run``: ``--pixel-size-um`` overrides the pixel size of one run (issue 12,
item 1), and a run over an empty selection is an error with a non-zero exit (item 10)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _analysis_support import copy_repo, install_test_tools, pipeline_text, remove_test_tools
from quantscope.catalog import Repository


@pytest.fixture(autouse=True)
def _tools() -> Iterator[None]:
    install_test_tools()
    yield
    remove_test_tools()


@pytest.fixture
def repo(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    copy_repo(tmp_path_factory, tmp_path / "repo").close()
    return tmp_path / "repo"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "test.yaml"
    path.write_text(pipeline_text())
    return path


def test_pixel_size_override_is_used_keyed_and_recorded(
    qs: Callable[..., object], repo: Path, spec: Path
) -> None:
    r = qs("run", repo, spec, "--json")
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    r = qs("run", repo, spec, "--json", "--pixel-size-um", "0.5")
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    doc = json.loads(r.out)  # type: ignore[attr-defined]
    assert doc["computed"] == 6 and doc["reused"] == 0  # a new pixel size: computed again
    with Repository.open(repo) as rp:
        assert rp.analysis_run(doc["run_id"])["spec"]["pixel_size_um_override"] == 0.5


@pytest.mark.parametrize("bad", ["0", "-1", "nan"])
def test_a_bad_pixel_size_is_one_line_and_exit_1(
    qs: Callable[..., object], repo: Path, spec: Path, bad: str
) -> None:
    r = qs("run", repo, spec, f"--pixel-size-um={bad}")
    assert r.code != 0  # type: ignore[attr-defined]
    assert "Traceback" not in r.err  # type: ignore[attr-defined]


def test_an_empty_selection_exits_non_zero(
    qs: Callable[..., object], repo: Path, spec: Path
) -> None:
    r = qs("run", repo, spec, "--where", 'well = "Z99"')
    assert r.code == 1  # type: ignore[attr-defined]
    assert "selects no image" in r.err  # type: ignore[attr-defined]
    with Repository.open(repo) as rp:
        assert rp.runs() == []
