"""Cells from nuclei seeds (propagation) and cytoplasm = cell minus nucleus."""

from __future__ import annotations

import numpy as np
import pytest

from quantscope.analysis._segment import CellParams, cytoplasm, segment_cells, segment_nuclei
from quantscope.errors import InvalidInput
from quantscope.synth import SynthOptions, render_field

pytestmark = pytest.mark.filterwarnings("error")


def two_cells(valley_x: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two nuclei in one bright cytoplasm slab, optionally with a dark line at ``valley_x``."""
    nuclei = np.zeros((40, 64), np.int32)
    nuclei[18:22, 10:14] = 1
    nuclei[18:22, 50:54] = 2
    cyto = np.zeros((40, 64), np.float32)
    cyto[8:32, 2:62] = 0.8
    if valley_x is not None:
        cyto[8:32, valley_x] = 0.3
    return nuclei, cyto


def test_cells_contain_their_nucleus_and_keep_its_number() -> None:
    nuclei, cyto = two_cells()
    cells = segment_cells(nuclei, cyto)
    assert cells.dtype == np.int32
    assert sorted(np.unique(cells).tolist()) == [0, 1, 2]
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])
    # the slab is the foreground; outside stays background
    assert not cells[:8].any() and not cells[32:].any()
    assert np.all((cells > 0) == ((cyto > 0) | (nuclei > 0)))


def test_boundary_follows_the_image_not_the_midpoint() -> None:
    # without image structure the boundary sits midway (x = 32) ...
    nuclei, flat = two_cells()
    cells = segment_cells(nuclei, flat)
    assert cells[20, 30] == 1 and cells[20, 33] == 2
    # ... a dark line at x = 22 pulls it there: propagation follows intensity changes
    nuclei, valley = two_cells(valley_x=22)
    cells = segment_cells(nuclei, valley)
    assert cells[20, 21] == 1
    assert cells[20, 24] == 2 and cells[20, 30] == 2


def test_large_regularization_approaches_voronoi() -> None:
    nuclei, valley = two_cells(valley_x=22)
    cells = segment_cells(nuclei, valley, CellParams(regularization=100.0))
    assert cells[20, 30] == 1 and cells[20, 34] == 2


def test_foreground_without_a_nucleus_stays_background() -> None:
    nuclei, cyto = two_cells()
    cyto[34:39, 20:40] = 0.8  # a separate bright patch with no nucleus
    cells = segment_cells(nuclei, cyto)
    assert not cells[34:39].any()


def test_max_distance_limits_growth() -> None:
    nuclei, cyto = two_cells()
    cells = segment_cells(nuclei, cyto, CellParams(max_distance_um=3 * 0.65))
    assert cells[20, 17] == 0 and cells[20, 16] == 1
    assert cells[20, 6] == 0 and cells[20, 7] == 1


def test_exclude_border_drops_cells_touching_the_edge() -> None:
    nuclei, cyto = two_cells()
    cyto[8:32, 55:64] = 0.8  # cell 2 now reaches the right border
    cells = segment_cells(nuclei, cyto, CellParams(exclude_border=True))
    assert sorted(np.unique(cells).tolist()) == [0, 1]


@pytest.mark.parametrize("method", ["otsu", "li", "local"])
def test_threshold_methods(method: str) -> None:
    nuclei, cyto = two_cells()
    cyto = cyto + np.random.default_rng(0).normal(0, 0.01, cyto.shape).astype(np.float32)
    cells = segment_cells(nuclei, cyto, CellParams(threshold_method=method))
    assert sorted(np.unique(cells).tolist()) == [0, 1, 2]
    assert (cells > 0).sum() > 0.9 * 24 * 60


def test_no_nuclei_gives_no_cells() -> None:
    _, cyto = two_cells()
    cells = segment_cells(np.zeros(cyto.shape, np.int32), cyto)
    assert not cells.any()


@pytest.mark.parametrize(
    "cyto",
    [np.zeros((40, 64), np.uint8), np.full((40, 64), 7, np.uint16)],
    ids=["zeros", "constant"],
)
def test_flat_cytoplasm_gives_cells_equal_to_nuclei(cyto: np.ndarray) -> None:
    nuclei, _ = two_cells()
    np.testing.assert_array_equal(segment_cells(nuclei, cyto), nuclei)


def test_one_pixel_wide_input() -> None:
    nuclei = np.array([[0, 1, 1, 0, 2]], np.int32)
    cells = segment_cells(nuclei, np.ones((1, 5), np.float32))
    assert cells.shape == (1, 5)
    assert np.all(cells[nuclei > 0] == nuclei[nuclei > 0])


def test_synthetic_cells_match_truth() -> None:
    options = SynthOptions(size=256, seed=11)
    image, _nuclei, truth_cells = render_field(options, np.random.default_rng(11))
    seeds = segment_nuclei(image[0], pixel_size_um=options.pixel_size_um)
    cells = segment_cells(seeds, image[1], pixel_size_um=options.pixel_size_um)
    n_true = len(np.unique(truth_cells)) - 1
    assert cells.max() == seeds.max() == n_true
    # every true cell is covered mostly by one predicted cell with IoU >= 0.5
    ious = []
    for k in range(1, n_true + 1):
        t = truth_cells == k
        pred = np.bincount(cells[t], minlength=cells.max() + 1)
        pred[0] = 0
        p = cells == pred.argmax()
        ious.append((t & p).sum() / (t | p).sum())
    assert np.median(ious) > 0.7
    assert np.mean(np.array(ious) >= 0.5) >= 0.9


@pytest.mark.parametrize(
    ("nuclei", "cyto", "needle"),
    [
        (np.zeros((8, 8), np.int32), np.zeros((8, 9)), "differs from nuclei_labels shape"),
        (np.zeros((2, 8, 8), np.int32), np.zeros((8, 8)), "nuclei_labels: expected a 2-D"),
        (np.zeros((8, 8), np.int32), np.zeros((3, 8, 8)), "cyto_image: expected a 2-D"),
        (np.full((8, 8), -1, np.int32), np.zeros((8, 8)), "must be >= 0"),
        (np.full((8, 8), 0.5), np.zeros((8, 8)), "fractional"),
        (np.zeros((8, 8), np.int32), np.full((8, 8), np.nan), "NaN or infinite"),
        (np.full((8, 8), 2**40, np.int64), np.zeros((8, 8)), "does not fit int32"),
        (np.zeros((8, 8), np.int32), np.zeros((8, 8), complex), "real numbers"),
    ],
)
def test_bad_input_raises(nuclei: np.ndarray, cyto: np.ndarray, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        segment_cells(nuclei, cyto)


def test_cytoplasm_is_cell_minus_nucleus() -> None:
    cells = np.zeros((6, 8), np.int32)
    cells[1:5, 1:4] = 1
    cells[1:5, 4:7] = 2
    nuclei = np.zeros_like(cells)
    nuclei[2:4, 2] = 1
    nuclei[1:5, 4:7] = 2  # cell 2 is all nucleus
    cyto = cytoplasm(cells, nuclei)
    assert cyto.dtype == np.int32
    assert int((cyto == 1).sum()) == 12 - 2
    assert not (cyto == 2).any()
    assert not cyto[nuclei > 0].any()
    np.testing.assert_array_equal(cyto[(nuclei == 0)], cells[(nuclei == 0)])


def test_cytoplasm_shape_mismatch_and_bad_labels() -> None:
    with pytest.raises(InvalidInput, match="differs from cells shape"):
        cytoplasm(np.zeros((4, 4), np.int32), np.zeros((4, 5), np.int32))
    with pytest.raises(InvalidInput, match="cells: expected a 2-D"):
        cytoplasm(np.zeros(4, np.int32), np.zeros(4, np.int32))
    with pytest.raises(InvalidInput, match="must be >= 0"):
        cytoplasm(np.full((4, 4), -2), np.zeros((4, 4), np.int32))
