"""Public functions of catalog, analysis and benchmark answer bad input with a
``QuantscopeError`` (that says what was wrong), never a bare ``TypeError``/``KeyError``/
``AttributeError`` from deep inside (DESIGN.md, "Errors")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantscope.catalog import Repository
from quantscope.errors import InvalidInput, NotFound, QuantscopeError


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    from quantscope import ingest
    from quantscope.synth import SynthOptions, synth_plate

    base = tmp_path_factory.mktemp("bad")
    res = synth_plate(base / "plate", SynthOptions(plate="1x2", fields=1, size=48, seed=2))
    repo = Repository.init(base / "repo")
    assert ingest(repo, [res.images_dir], qc=False).ok
    yield repo
    repo.close()


def _cases(tmp: Path) -> dict[str, tuple[Callable[[Repository], Any], type, str]]:
    from quantscope import analysis, benchmark
    from quantscope.catalog import check_metadata, select_images, set_metadata
    from quantscope.metadata import requirements

    return {
        "image id not text": (lambda r: r.images.get(123), InvalidInput, "an id is text"),
        "unknown image": (lambda r: r.images.get("fffffff"), NotFound, "no image with id"),
        "set: selection not text": (
            lambda r: set_metadata(r, 5, ["pixel_size_um=1"]),  # type: ignore[arg-type]
            InvalidInput,
            "selection: expected",
        ),
        "set: empty list": (
            lambda r: set_metadata(r, [], ["pixel_size_um=1"]),
            NotFound,
            "no image selected",
        ),
        "select: unknown plate": (
            lambda r: select_images(r, plates=["P9"]),
            NotFound,
            "no plate named 'P9'",
        ),
        "find_ids: negative limit": (
            lambda r: r.query.find_ids("", limit=-1),
            InvalidInput,
            "limit: expected a whole number >= 0",
        ),
        "find: limit not a number": (
            lambda r: r.query.find("", limit="5"),  # type: ignore[arg-type]
            InvalidInput,
            "limit: expected a whole number >= 0",
        ),
        "effective annotations: ids, not images": (
            lambda r: r.annotations.effective(["0123abcd"]),  # type: ignore[list-item]
            InvalidInput,
            "expected Image records",
        ),
        "completeness: unknown standard": (
            lambda r: requirements("mifa"),
            InvalidInput,
            "unknown standard 'mifa'",
        ),
        "metadata check: tier 3": (
            lambda r: check_metadata(r, tier=3),
            InvalidInput,
            "tier 3 is not checked",
        ),
        "run: not a pipeline": (
            lambda r: analysis.run_pipeline(r, "pipeline.yaml"),  # type: ignore[arg-type]
            InvalidInput,
            "expected a Pipeline",
        ),
        "run: unknown run": (lambda r: analysis.run_table(r, "nope"), NotFound, "nope"),
        "pipeline file missing": (
            lambda r: analysis.load_pipeline(tmp / "none.yaml"),
            NotFound,
            "none.yaml",
        ),
        "bench: unknown set": (lambda r: benchmark.leaderboard(r, "nope"), NotFound, "nope"),
        "bench: shapes differ": (
            lambda r: benchmark.score_instances(np.zeros((3, 3), int), np.zeros((4, 4), int)),
            InvalidInput,
            "shape",
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "image id not text",
        "unknown image",
        "set: selection not text",
        "set: empty list",
        "select: unknown plate",
        "metadata check: tier 3",
        "run: not a pipeline",
        "run: unknown run",
        "pipeline file missing",
        "bench: unknown set",
        "bench: shapes differ",
    ],
)
def test_bad_input_raises_a_quantscope_error(
    name: str, small_repo: Repository, tmp_path: Path
) -> None:
    call, error, message = _cases(tmp_path)[name]
    with pytest.raises(error, match=message) as info:
        call(small_repo)
    assert isinstance(info.value, QuantscopeError)


def test_predictions_of_a_wrong_type_are_named(small_repo: Repository) -> None:
    """Past the set lookup: a set exists, the predictions are neither folder nor mapping."""
    from quantscope import benchmark

    benchmark.add_synthetic_set(small_repo, "tiny", n_images=1, size=32, qc=False)
    with pytest.raises(InvalidInput, match="expected a folder of label images or a mapping"):
        benchmark.run_benchmark(small_repo, "tiny", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="missing: 'x' is not one of error, empty"):
        benchmark.run_benchmark(small_repo, "tiny", {}, missing="x")
