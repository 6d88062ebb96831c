"""Nuclei segmentation on small arrays and synthetic fields with exact ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quantscope.analysis._segment import (
    DEFAULT_PIXEL_SIZE_UM,
    NucleiParams,
    segment_nuclei,
)
from quantscope.errors import InvalidInput
from quantscope.synth import SynthOptions, render_field

pytestmark = pytest.mark.filterwarnings("error")


def disks(
    shape: tuple[int, int],
    centres: list[tuple[float, float]],
    radius: float,
    *,
    signal: float = 1000.0,
    background: float = 100.0,
    noise: float = 5.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """uint16 image of bright domes on a noisy background, and their exact labels."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, background, np.float64)
    truth = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(centres, start=1):
        r2 = (yy - cy) ** 2 + (xx - cx) ** 2
        inside = r2 <= radius**2
        truth[inside & (truth == 0)] = k
        dome = np.sqrt(np.clip(1 - r2 / radius**2, 0, 1))
        image = np.maximum(image, background + signal * (0.4 + 0.6 * dome) * inside)
    image += np.random.default_rng(seed).normal(0, noise, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), truth


def f1_at_half(truth: np.ndarray, pred: np.ndarray) -> float:
    """F1 at IoU >= 0.5 with one-to-one matching (unique above 0.5)."""
    nt, npred = int(truth.max()), int(pred.max())
    if nt == 0 and npred == 0:
        return 1.0
    if nt == 0 or npred == 0:
        return 0.0
    at = np.bincount(truth.ravel(), minlength=nt + 1)
    ap = np.bincount(pred.ravel(), minlength=npred + 1)
    both = (truth > 0) & (pred > 0)
    key = truth[both].astype(np.int64) * (npred + 1) + pred[both]
    pairs, inter = np.unique(key, return_counts=True)
    t, p = pairs // (npred + 1), pairs % (npred + 1)
    tp = int((inter / (at[t] + ap[p] - inter) >= 0.5).sum())
    n_true, n_pred = int((at[1:] > 0).sum()), int((ap[1:] > 0).sum())
    return 2 * tp / (n_true + n_pred)


# ----------------------------------------------------------------------------- basic behaviour


def test_single_nucleus_is_found_with_its_outline() -> None:
    image, truth = disks((96, 96), [(48, 48)], 12)
    labels = segment_nuclei(image)
    assert labels.dtype == np.int32
    assert labels.shape == image.shape
    assert labels.max() == 1
    iou = ((labels > 0) & (truth > 0)).sum() / ((labels > 0) | (truth > 0)).sum()
    assert iou > 0.85


def test_touching_nuclei_are_split() -> None:
    # two domes of radius 12 px whose centres are 20 px apart overlap by 4 px
    image, truth = disks((96, 128), [(48, 52), (48, 72)], 12)
    labels = segment_nuclei(image)
    assert labels.max() == 2
    assert f1_at_half(truth, labels) == 1.0


def test_clump_of_three_is_split_and_labels_are_consecutive() -> None:
    image, truth = disks((128, 128), [(50, 50), (50, 72), (70, 61)], 12, seed=3)
    labels = segment_nuclei(image)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3]
    assert f1_at_half(truth, labels) == 1.0


def test_dim_nucleus_beside_bright_one_is_found() -> None:
    bright, _ = disks((96, 160), [(48, 40)], 12, signal=2000)
    dim, _ = disks((96, 160), [(48, 120)], 12, signal=400, seed=1)
    image = np.maximum(bright, dim)
    labels = segment_nuclei(image)
    assert labels.max() == 2
    assert labels[48, 120] > 0 and labels[48, 40] > 0


def test_hole_inside_a_nucleus_is_filled() -> None:
    image, _truth = disks((96, 96), [(48, 48)], 14)
    # a dark nucleolus at 15 % of the nuclear signal: below the per-object refinement level
    image[45:52, 45:52] = 100 + 150
    labels = segment_nuclei(image)
    assert labels.max() == 1
    assert labels[48, 48] == 1


def test_background_enclosed_by_a_ring_of_nuclei_stays_background() -> None:
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    centres = [(80 + 30 * np.sin(a), 80 + 30 * np.cos(a)) for a in angles]
    image, truth = disks((160, 160), centres, 13, seed=4)  # 8 touching nuclei in a ring
    labels = segment_nuclei(image)
    assert labels[80, 80] == 0
    assert labels.max() == 8
    assert f1_at_half(truth, labels) == 1.0


def test_small_edge_fragment_dropped_large_cut_nucleus_kept() -> None:
    # a sliver (4 px deep, ~50 px) of a nucleus at the left border, a half nucleus at the right
    image, _ = disks((96, 128), [(30, -8), (60, 127)], 12)
    params = NucleiParams(border_min_diameter_um=10.0)  # 15.4 px: area ~186 px at 0.65 µm
    labels = segment_nuclei(image, params)
    assert labels.max() == 1
    assert labels[60, 126] == 1
    assert labels[30, 0] == 0
    # without the edge filter the sliver is an object; with exclude_border nothing is left
    assert segment_nuclei(image, NucleiParams(border_min_diameter_um=0.0)).max() == 2
    assert segment_nuclei(image, NucleiParams(exclude_border=True)).max() == 0


def test_default_edge_filter_drops_specks_at_the_border() -> None:
    image, _ = disks((96, 128), [(30, -10), (60, 64)], 12)  # a 2 px deep sliver, ~18 px
    labels = segment_nuclei(image)
    assert labels.max() == 1
    assert labels[60, 64] == 1


def test_size_filters_use_micrometres() -> None:
    small, _ = disks((96, 160), [(48, 40)], 4)  # 8 px across: 5.2 µm at 0.65 µm/px
    big, _ = disks((96, 160), [(48, 110)], 14, seed=2)  # 28 px: 18.2 µm
    image = np.maximum(small, big)
    assert segment_nuclei(image).max() == 2
    assert segment_nuclei(image, NucleiParams(min_diameter_um=7.0)).max() == 1
    # 4 µm: 6.2 px at 0.65 µm/px keeps the small one; 12.3 px at 0.325 µm/px drops it
    four = NucleiParams(min_diameter_um=4.0)
    assert segment_nuclei(image, four, pixel_size_um=0.65).max() == 2
    assert segment_nuclei(image, four, pixel_size_um=0.325).max() == 1
    assert segment_nuclei(image, NucleiParams(max_diameter_um=15.0)).max() == 1


def test_parameters_scale_with_pixel_size() -> None:
    """An image upsampled 2x with half the pixel size gives the same objects."""
    image, _truth = disks((96, 128), [(48, 52), (48, 72)], 12, noise=2.0)
    fine = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    coarse = segment_nuclei(image, pixel_size_um=0.65)
    fine_labels = segment_nuclei(fine, pixel_size_um=0.325)
    assert coarse.max() == fine_labels.max() == 2
    area_coarse = np.bincount(coarse.ravel())[1:] * 4
    area_fine = np.bincount(fine_labels.ravel())[1:]
    np.testing.assert_allclose(np.sort(area_fine), np.sort(area_coarse), rtol=0.1)


def test_declump_off_gives_one_object_per_blob() -> None:
    image, _ = disks((96, 128), [(48, 52), (48, 72)], 12)
    assert segment_nuclei(image, NucleiParams(declump=False)).max() == 1


@pytest.mark.parametrize("method", ["otsu", "li", "local"])
def test_every_threshold_method_finds_the_nuclei(method: str) -> None:
    image, truth = disks((128, 160), [(40, 40), (90, 110), (40, 120)], 11, seed=5)
    labels = segment_nuclei(image, NucleiParams(threshold_method=method))
    assert f1_at_half(truth, labels) == 1.0


def test_local_threshold_copes_with_uneven_illumination() -> None:
    image, truth = disks((128, 256), [(64, 40), (64, 128), (64, 216)], 12, signal=400)
    ramp = np.linspace(0, 1500, 256)[None, :]
    uneven = np.clip(image + ramp, 0, 65535).astype(np.uint16)
    labels = segment_nuclei(uneven, NucleiParams(threshold_method="local", local_block_um=40))
    assert f1_at_half(truth, labels) == 1.0


def test_float_and_other_integer_dtypes() -> None:
    image, truth = disks((96, 96), [(48, 48)], 12)
    for arr in (image.astype(np.float32) / 65535, image.astype(np.int32), image.astype(float)):
        assert f1_at_half(truth, segment_nuclei(arr)) == 1.0
    eight = (image // 8).astype(np.uint8)
    assert segment_nuclei(eight).max() == 1


def test_float_images_are_scale_invariant_without_overflow() -> None:
    image, truth = disks((96, 128), [(48, 40), (48, 90)], 12)
    reference = segment_nuclei(image.astype(np.float64))
    assert f1_at_half(truth, reference) == 1.0
    for scale, offset in ((1e-200, 0.0), (1e250, 0.0), (1.0, -1e4), (1e300, -1e307)):
        scaled = image.astype(np.float64) * scale + offset
        np.testing.assert_array_equal(segment_nuclei(scaled), reference)


def test_extreme_values_give_defined_results() -> None:
    huge = np.full((64, 64), np.finfo(np.float64).max / 4)
    assert segment_nuclei(huge).max() == 0
    wide = np.random.default_rng(0).random((64, 64)) * 1e12
    assert segment_nuclei(wide.astype(np.int64)).max() == 0
    assert segment_nuclei(wide).max() == 0
    assert segment_nuclei(np.random.default_rng(1).random((64, 64)).astype(np.float16)).max() == 0


def test_default_pixel_size_is_used_when_unknown() -> None:
    image, _ = disks((96, 96), [(48, 48)], 12)
    np.testing.assert_array_equal(
        segment_nuclei(image), segment_nuclei(image, pixel_size_um=DEFAULT_PIXEL_SIZE_UM)
    )


# ----------------------------------------------------------------------------- empty fields


@pytest.mark.parametrize("seed", range(5))
def test_noise_only_field_has_no_objects(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shot = rng.poisson(150, (256, 256)).astype(np.float64)
    smooth_bg = 10 * np.sin(np.linspace(0, 3, 256))[None, :]  # mild shading
    image = (shot + rng.normal(0, 3, shot.shape) + smooth_bg).astype(np.uint16)
    assert segment_nuclei(image).max() == 0


def test_synthetic_empty_field_has_no_objects() -> None:
    image, nuclei, _ = render_field(SynthOptions(size=256), np.random.default_rng(7), empty=True)
    assert nuclei.max() == 0
    assert segment_nuclei(image[0]).max() == 0


# ----------------------------------------------------------------------------- synth truth


@pytest.mark.parametrize(("touching", "seed"), [(0.0, 0), (0.0, 1), (0.3, 2), (0.6, 3), (0.6, 6)])
def test_synthetic_counts_match_truth(touching: float, seed: int) -> None:
    options = SynthOptions(size=256, touching=touching, seed=seed)
    image, nuclei, _ = render_field(options, np.random.default_rng(seed))
    labels = segment_nuclei(image[0], pixel_size_um=options.pixel_size_um)
    n_true = len(np.unique(nuclei)) - 1
    assert n_true > 10
    assert labels.max() == n_true
    assert f1_at_half(nuclei, labels) >= 0.95
    # areas within a few percent of the truth, object by object (matched by overlap)
    area_true = np.bincount(nuclei.ravel())[1:]
    owner = np.zeros(n_true + 1, np.int64)
    pairs, inter = np.unique(labels.astype(np.int64) * (n_true + 1) + nuclei, return_counts=True)
    pred_of, true_of = pairs // (n_true + 1), pairs % (n_true + 1)
    best = np.zeros(n_true + 1, np.int64)
    for p, t, c in zip(pred_of, true_of, inter, strict=True):
        if p and t and c > best[t]:
            best[t], owner[t] = c, p
    area_pred = np.bincount(labels.ravel())[owner[1:]]
    assert np.median(np.abs(area_pred / area_true - 1)) < 0.1


def test_synthetic_low_snr_and_blur() -> None:
    options = SynthOptions(size=256, snr=0.5, blur=1.0, seed=4)
    image, nuclei, _ = render_field(options, np.random.default_rng(4))
    labels = segment_nuclei(image[0], pixel_size_um=options.pixel_size_um)
    n_true = len(np.unique(nuclei)) - 1
    assert abs(int(labels.max()) - n_true) <= 1
    assert f1_at_half(nuclei, labels) >= 0.95


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_synthetic_dense_clumps_are_mostly_split(seed: int) -> None:
    """touching=1 packs nuclei into overlapping clumps: a known limit of classical declumping.

    Measured F1 at the defaults: 0.72, 0.92 and 0.95 for seeds 3, 5 and 8 (without
    declumping 0.16-0.28).
    """
    options = SynthOptions(size=256, touching=1.0, seed=seed)
    image, nuclei, _ = render_field(options, np.random.default_rng(seed))
    labels = segment_nuclei(image[0], pixel_size_um=options.pixel_size_um)
    n_true = len(np.unique(nuclei)) - 1
    assert labels.max() >= 0.8 * n_true
    assert f1_at_half(nuclei, labels) >= 0.7
    flat = segment_nuclei(image[0], NucleiParams(declump=False))
    assert f1_at_half(nuclei, labels) > f1_at_half(nuclei, flat) + 0.4


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64), np.uint16),
        np.full((64, 64), 1234, np.uint16),
        np.full((64, 64), 0.5, np.float32),
        np.zeros((1, 200), np.uint16),
        np.arange(200, dtype=np.uint16).reshape(200, 1),
        np.zeros((2, 2), np.float64),
        np.zeros((0, 5), np.uint16),
        np.array([[0, 1000], [0, 1000]], np.uint16),
    ],
    ids=["zeros", "constant", "constant-float", "one-row", "one-column", "2x2", "empty", "tiny"],
)
def test_degenerate_images_give_empty_labels(image: np.ndarray) -> None:
    labels = segment_nuclei(image)
    assert labels.shape == image.shape
    assert labels.dtype == np.int32
    assert not labels.any()


def test_boolean_image_is_accepted() -> None:
    _, truth = disks((96, 96), [(48, 48)], 12)
    assert segment_nuclei(truth > 0).max() == 1


@pytest.mark.parametrize(
    ("image", "needle"),
    [
        (np.zeros((4, 64, 64), np.uint16), "2-D"),
        (np.zeros(64, np.uint16), "2-D"),
        (np.zeros((64, 64), np.complex64), "real numbers"),
        (np.array([["a", "b"], ["c", "d"]]), "real numbers"),
    ],
)
def test_malformed_images_raise_invalid_input(image: np.ndarray, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        segment_nuclei(image)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_raise_with_their_position(bad: float) -> None:
    image = np.full((32, 32), 100.0)
    image[3, 7] = bad
    with pytest.raises(InvalidInput, match=r"NaN or infinite \(first at y=3, x=7\)"):
        segment_nuclei(image)


@pytest.mark.parametrize("size", [0, -1.0, float("nan"), "big", True])
def test_bad_pixel_size_raises(size: object) -> None:
    with pytest.raises(InvalidInput, match="pixel_size_um"):
        segment_nuclei(np.zeros((8, 8)), pixel_size_um=size)  # type: ignore[arg-type]


def test_wrong_params_type_raises() -> None:
    with pytest.raises(InvalidInput, match="NucleiParams"):
        segment_nuclei(np.zeros((8, 8)), params={"h_um": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_diameter_um": -1},
        {"h_um": 100},
        {"threshold_method": "triangle"},
        {"refine_fraction": 1.0},
        {"intensity_weight": 1.5},
        {"threshold_correction": 0},
        {"unknown_option": 1},
    ],
)
def test_parameters_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NucleiParams(**kwargs)  # type: ignore[arg-type]


def test_params_describe_units_and_ranges() -> None:
    schema = NucleiParams.model_json_schema()["properties"]
    for name, spec in schema.items():
        assert spec.get("description"), name
        if name.endswith("_um"):
            assert "µm" in spec["description"], name
    assert schema["min_diameter_um"]["minimum"] == 0.0
    assert set(schema["threshold_method"]["enum"]) == {"otsu", "li", "local"}
    assert NucleiParams().model_dump() == NucleiParams.model_validate({}).model_dump()


# ----------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    image=arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64]),
        shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements={"allow_nan": False, "allow_infinity": False, "min_value": 0, "max_value": 200},
    )
)
def test_any_finite_image_gives_consecutive_int32_labels(image: np.ndarray) -> None:
    labels = segment_nuclei(image)
    assert labels.shape == image.shape
    assert labels.dtype == np.int32
    ids = np.unique(labels)
    assert ids[0] >= 0
    np.testing.assert_array_equal(ids[ids > 0], np.arange(1, int(labels.max()) + 1))
    # labels are not split: every object is one 8-connected piece
    from scipy import ndimage as ndi

    for k in ids[ids > 0]:
        assert ndi.label(labels == k, structure=np.ones((3, 3)))[1] == 1
