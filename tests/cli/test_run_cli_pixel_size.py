"""``quantscope run``: ``--pixel-size-um`` overrides the pixel size of one run (issue 12,
item 1), and a run over an empty selection is an error with a non-zero exit (item 10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from quantscope.catalog import Repository

pytestmark = pytest.mark.usefixtures("analysis_tools")


def test_pixel_size_override_is_used_keyed_and_recorded(
    qs: Callable[..., object], analysis_root: Path, pipeline_spec: Path
) -> None:
    r = qs("run", analysis_root, pipeline_spec, "--json")
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    r = qs("run", analysis_root, pipeline_spec, "--json", "--pixel-size-um", "0.5")
    assert r.code == 0, r.err  # type: ignore[attr-defined]
    doc = json.loads(r.out)  # type: ignore[attr-defined]
    assert doc["computed"] == 6 and doc["reused"] == 0  # a new pixel size: computed again
    with Repository.open(analysis_root) as rp:
        assert rp.runs.get(doc["run_id"]).spec["pixel_size_um_override"] == 0.5


@pytest.mark.parametrize("bad", ["0", "-1", "nan"])
def test_a_bad_pixel_size_is_one_line_and_exit_1(
    qs: Callable[..., object], analysis_root: Path, pipeline_spec: Path, bad: str
) -> None:
    r = qs("run", analysis_root, pipeline_spec, f"--pixel-size-um={bad}")
    assert r.code != 0  # type: ignore[attr-defined]
    assert "Traceback" not in r.err  # type: ignore[attr-defined]


def test_an_empty_selection_exits_non_zero(
    qs: Callable[..., object], analysis_root: Path, pipeline_spec: Path
) -> None:
    r = qs("run", analysis_root, pipeline_spec, "--where", 'well = "Z99"')
    assert r.code == 1  # type: ignore[attr-defined]
    assert "selects no image" in r.err  # type: ignore[attr-defined]
    with Repository.open(analysis_root) as rp:
        assert rp.runs.all() == []
