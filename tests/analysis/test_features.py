"""quantscope.analysis._features: exact checks on synthetic shapes and behaviour on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk as draw_disk
from skimage.measure import euler_number, perimeter, regionprops
from skimage.morphology import convex_hull_image, reconstruction

from quantscope.analysis._features import (
    FEATURE_FAMILIES,
    feature_columns,
    measure_objects,
    summarize_image,
)
from quantscope.errors import InvalidInput


def _disk_labels(shape=(64, 64), center=(32, 32), radius=12, label=1):
    lab = np.zeros(shape, dtype=np.int32)
    rr, cc = draw_disk(center, radius, shape=shape)
    lab[rr, cc] = label
    return lab


def test_columns_match_feature_columns_and_ascending_labels():
    lab = np.zeros((40, 40), dtype=np.int32)
    lab[2:10, 2:12] = 7
    lab[20:30, 20:35] = 3
    img = np.random.default_rng(0).random((40, 40))
    t = measure_objects(lab, {"DNA": img})
    assert list(t.columns) == feature_columns(["DNA"])
    assert t["ObjectNumber"].tolist() == [3, 7]
    assert "Texture_Contrast_DNA_3_00_256" in t.columns
    assert "RadialDistribution_FracAtD_DNA_1of4" in t.columns
    assert "Granularity_16_DNA" in t.columns
    assert "Neighbors_NumberOfNeighbors_Adjacent" in t.columns
    assert set(FEATURE_FAMILIES) == {
        "shape", "intensity", "texture", "granularity", "radial", "neighbors"
    }  # fmt: skip


def test_rectangle_exact():
    lab = np.zeros((30, 40), dtype=np.int32)
    lab[5:15, 10:30] = 1  # 10 x 20
    t = measure_objects(lab, {"C": np.full((30, 40), 0.5)})
    r = t.iloc[0]
    assert r["AreaShape_Area"] == 200
    assert r["AreaShape_Extent"] == 1.0
    assert r["AreaShape_Solidity"] == 1.0
    assert r["AreaShape_ConvexArea"] == 200
    assert r["AreaShape_EulerNumber"] == 1
    assert r["AreaShape_BoundingBoxArea"] == 200
    assert r["AreaShape_Perimeter"] == pytest.approx(perimeter(lab == 1, 4))
    assert r["AreaShape_MaxFeretDiameter"] == pytest.approx(np.hypot(9, 19))
    assert r["AreaShape_MinFeretDiameter"] == pytest.approx(9.0)
    assert r["AreaShape_Orientation"] == pytest.approx(90.0) or r[
        "AreaShape_Orientation"
    ] == pytest.approx(-90.0)
    assert r["Location_Center_X"] == pytest.approx(19.5)
    assert r["Location_Center_Y"] == pytest.approx(9.5)
    # constant image: std 0, all quantiles the constant, no texture contrast
    assert r["Intensity_StdIntensity_C"] == 0.0
    assert r["Intensity_MeanIntensity_C"] == 0.5
    assert r["Intensity_IntegratedIntensity_C"] == 100.0
    assert r["Intensity_MedianIntensity_C"] == 0.5
    assert r["Intensity_MADIntensity_C"] == 0.0
    assert r["Intensity_MassDisplacement_C"] == pytest.approx(0.0, abs=1e-12)
    assert r["Texture_Contrast_C_3_00_256"] == 0.0
    assert r["Texture_AngularSecondMoment_C_3_00_256"] == 1.0
    # constant image: the background subtraction removes everything at the first step
    assert r["Granularity_1_C"] == pytest.approx(100.0)
    assert r["Granularity_2_C"] == 0.0


def test_disk_area_perimeter_radius_zernike():
    lab = _disk_labels(radius=12)
    t = measure_objects(lab, families=["shape"])
    r = t.iloc[0]
    area = int((lab == 1).sum())
    assert r["AreaShape_Area"] == area
    assert r["AreaShape_Perimeter"] == pytest.approx(perimeter(lab == 1, 4))
    assert abs(r["AreaShape_Perimeter"] - 2 * np.pi * 12) / (2 * np.pi * 12) < 0.05
    assert r["AreaShape_FormFactor"] == pytest.approx(1.0, abs=0.1)
    assert r["AreaShape_Eccentricity"] == pytest.approx(0.0, abs=1e-9)
    assert r["AreaShape_MaximumRadius"] == pytest.approx(12.0, abs=1.0)
    assert r["AreaShape_ConvexArea"] == convex_hull_image(lab == 1).sum()
    assert r["AreaShape_EquivalentDiameter"] == pytest.approx(np.sqrt(4 * area / np.pi))
    # Zernike 0_0 = pixels / (pi r^2) in the enclosing circle; odd orders vanish by symmetry
    assert 0.9 < r["AreaShape_Zernike_0_0"] < 1.1
    assert r["AreaShape_Zernike_1_1"] == pytest.approx(0.0, abs=1e-9)


def test_matches_regionprops_on_irregular_shapes():
    rng = np.random.default_rng(3)
    from scipy import ndimage as ndi
    from skimage.measure import label

    lab = label(ndi.gaussian_filter(rng.random((120, 140)), 3) > 0.52).astype(np.int32)
    t = measure_objects(lab, families=["shape"])
    props = regionprops(lab)
    assert len(props) == len(t) > 5
    for p, (_, r) in zip(props, t.iterrows(), strict=True):
        assert r["ObjectNumber"] == p.label
        assert r["AreaShape_Area"] == p.area
        assert r["AreaShape_Perimeter"] == pytest.approx(p.perimeter)
        assert r["AreaShape_ConvexArea"] == p.area_convex
        assert r["AreaShape_EulerNumber"] == euler_number(p.image, 2)
        assert r["AreaShape_FilledArea"] == p.area_filled
        assert r["AreaShape_MajorAxisLength"] == pytest.approx(p.axis_major_length)
        assert r["AreaShape_HuMoment_1"] == pytest.approx(p.moments_hu[1], abs=1e-12)
        # raw moments come from row runs (irregular objects: rows with gaps), exactly
        for a in range(3):
            for b in range(4):
                assert r[f"AreaShape_SpatialMoment_{a}_{b}"] == p.moments[a, b]
                assert r[f"AreaShape_CentralMoment_{a}_{b}"] == pytest.approx(
                    p.moments_central[a, b], rel=1e-9, abs=1e-6
                )


def test_holes_and_euler_number():
    lab = np.zeros((30, 30), dtype=np.int32)
    lab[5:20, 5:20] = 1
    lab[9:12, 9:12] = 0  # one hole
    lab[14:16, 14:16] = 0  # another hole
    lab[10, 10] = 2  # an object inside the first hole
    t = measure_objects(lab, families=["shape"]).set_index("ObjectNumber")
    assert t.loc[1, "AreaShape_EulerNumber"] == -1
    assert t.loc[1, "AreaShape_FilledArea"] == 225
    assert t.loc[2, "AreaShape_Area"] == 1


def test_empty_labels_give_empty_table_with_columns():
    t = measure_objects(np.zeros((32, 32), dtype=np.uint16), {"DNA": np.zeros((32, 32))})
    assert len(t) == 0
    assert list(t.columns) == feature_columns(["DNA"])
    # the same dtypes as a table with objects, so tables of many images concatenate cleanly
    assert t["ObjectNumber"].dtype == np.int64
    assert (t.dtypes.iloc[1:] == np.float64).all()
    s = summarize_image(t)
    assert s["Count"] == 0
    assert np.isnan(s["Mean_AreaShape_Area"])


@pytest.mark.parametrize(
    ("labels", "images", "word"),
    [
        (np.zeros((8, 8), dtype=float), None, "labels"),
        (np.zeros((2, 8, 8), dtype=int), None, "labels"),
        (np.full((8, 8), -1), None, "labels"),
        (np.zeros((8, 8), dtype=int), {"DNA": np.zeros((8, 9))}, "images['DNA']"),
        (np.zeros((8, 8), dtype=int), {"bad name": np.zeros((8, 8))}, "images"),
        (np.zeros((8, 8), dtype=int), {"DNA": np.zeros((8, 8), dtype=object)}, "images['DNA']"),
        (np.zeros((8, 8), dtype=int), {"DNA": np.zeros((8, 8), dtype=complex)}, "images['DNA']"),
        (np.zeros((8, 8), dtype=int), {"DNA": np.full((8, 8), "x")}, "images['DNA']"),
        (np.zeros((8, 8), dtype=int), [np.zeros((8, 8))], "images"),
    ],
)
def test_invalid_input_names_the_argument(labels, images, word):
    with pytest.raises(InvalidInput, match=word.replace("[", r"\[").replace("]", r"\]")):
        measure_objects(labels, images)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"families": ["shape", "colour"]}, "families"),
        ({"texture_scale": 0}, "texture_scale"),
        ({"texture_gray_levels": 300}, "texture_gray_levels"),
        ({"radial_bins": 0}, "radial_bins"),
        ({"spacing": (1.0, 2.0)}, "spacing"),
        ({"spacing": -1}, "spacing"),
        ({"granularity_subsample": 2.0}, "granularity_subsample"),
    ],
)
def test_invalid_settings(kwargs, word):
    with pytest.raises(InvalidInput, match=word):
        measure_objects(np.ones((8, 8), dtype=int), {"DNA": np.zeros((8, 8))}, **kwargs)


def test_single_pixel_and_border_objects():
    lab = np.zeros((20, 20), dtype=np.int32)
    lab[10, 10] = 1  # single pixel
    lab[0:5, 0:6] = 2  # touching the corner
    lab[15:20, 12:20] = 3  # touching two edges
    img = np.linspace(0, 1, 400).reshape(20, 20)
    t = measure_objects(lab, {"C": img}).set_index("ObjectNumber")
    assert t.loc[1, "AreaShape_Area"] == 1
    assert t.loc[1, "AreaShape_Perimeter"] == 0.0
    assert t.loc[1, "AreaShape_ConvexArea"] == 1
    assert t.loc[1, "AreaShape_MaxFeretDiameter"] == 0.0
    assert t.loc[1, "Intensity_MeanIntensity_C"] == pytest.approx(img[10, 10])
    assert t.loc[1, "Intensity_StdIntensity_C"] == 0.0
    # a single pixel has no co-occurrence pair: texture undefined
    assert np.isnan(t.loc[1, "Texture_Contrast_C_3_00_256"])
    assert t.loc[2, "AreaShape_Area"] == 30
    assert t.loc[2, "AreaShape_Solidity"] == 1.0
    assert t.loc[2, "AreaShape_MaximumRadius"] == pytest.approx(3.0)  # image edge = edge
    assert t.loc[3, "AreaShape_BoundingBoxMaximum_Y"] == 20
    assert np.isfinite(t.loc[3, "Texture_Contrast_C_3_00_256"])
    # every feature defined, except the normalized moments of order < 2 (NaN by convention)
    undefined = {f"AreaShape_NormalizedMoment_{p}_{q}" for p, q in ((0, 0), (0, 1), (1, 0))}
    assert t.drop(columns=sorted(undefined)).notna().loc[[2, 3]].all().all()


def test_nan_intensities_are_ignored():
    lab = np.zeros((10, 10), dtype=np.int32)
    lab[2:6, 2:6] = 1
    lab[7:9, 7:9] = 2
    img = np.full((10, 10), 0.25)
    img[2, 2] = np.nan
    img[7:9, 7:9] = np.nan
    t = measure_objects(lab, {"C": img}, families=["intensity", "texture", "radial"])
    t = t.set_index("ObjectNumber")
    assert t.loc[1, "Intensity_IntegratedIntensity_C"] == pytest.approx(0.25 * 15)
    assert t.loc[1, "Intensity_MeanIntensity_C"] == 0.25
    assert t.loc[1, "Intensity_MinIntensity_C"] == 0.25
    assert np.isnan(t.loc[2, "Intensity_MeanIntensity_C"])
    assert np.isnan(t.loc[2, "Intensity_MedianIntensity_C"])
    assert np.isfinite(t.loc[1, "RadialDistribution_FracAtD_C_1of4"])
    # an image without a single finite pixel: NaN features, no error
    t = measure_objects(lab, {"C": np.full((10, 10), np.nan)})
    assert t["Intensity_MeanIntensity_C"].isna().all()
    assert t["Intensity_MADIntensity_C"].isna().all()
    assert t["Texture_Contrast_C_3_00_256"].isna().all()
    assert t["AreaShape_Area"].tolist() == [16, 4]


def test_integer_images_are_scaled_by_dtype_max():
    lab = np.zeros((10, 10), dtype=np.int32)
    lab[2:8, 2:8] = 1
    img16 = np.full((10, 10), 65535, dtype=np.uint16)
    img8 = np.full((10, 10), 51, dtype=np.uint8)
    t = measure_objects(lab, {"A": img16, "B": img8}, families=["intensity"])
    assert t["Intensity_MeanIntensity_A"].iloc[0] == 1.0
    assert t["Intensity_MeanIntensity_B"].iloc[0] == pytest.approx(0.2)


def test_quartiles_match_numpy_percentiles():
    rng = np.random.default_rng(5)
    lab = np.zeros((30, 30), dtype=np.int32)
    lab[1:10, 1:14] = 4
    lab[15:28, 3:9] = 9
    img = rng.random((30, 30))
    t = measure_objects(lab, {"C": img}, families=["intensity"]).set_index("ObjectNumber")
    for lv in (4, 9):
        v = img[lab == lv]
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        assert t.loc[lv, "Intensity_LowerQuartileIntensity_C"] == pytest.approx(q1)
        assert t.loc[lv, "Intensity_MedianIntensity_C"] == pytest.approx(med)
        assert t.loc[lv, "Intensity_UpperQuartileIntensity_C"] == pytest.approx(q3)
        assert t.loc[lv, "Intensity_MADIntensity_C"] == pytest.approx(np.median(np.abs(v - med)))
        assert t.loc[lv, "Intensity_StdIntensity_C"] == pytest.approx(v.std())


def test_neighbors_adjacent_and_distance():
    lab = np.zeros((20, 40), dtype=np.int32)
    lab[5:10, 5:10] = 1
    lab[5:10, 10:15] = 2  # touches 1
    lab[5:10, 18:23] = 3  # 3 px gap from 2
    lab[15:18, 35:38] = 4  # far away
    adj = measure_objects(lab, families=["neighbors"]).set_index("ObjectNumber")
    assert adj["Neighbors_NumberOfNeighbors_Adjacent"].tolist() == [1, 1, 0, 0]
    assert adj.loc[1, "Neighbors_PercentTouching_Adjacent"] == pytest.approx(100 * 5 / 16)
    assert adj.loc[1, "Neighbors_FirstClosestObjectNumber_Adjacent"] == 2
    assert adj.loc[1, "Neighbors_FirstClosestDistance_Adjacent"] == pytest.approx(5.0)
    assert adj.loc[1, "Neighbors_SecondClosestObjectNumber_Adjacent"] == 3
    near = measure_objects(lab, families=["neighbors"], neighbor_distance=4)
    assert near["Neighbors_NumberOfNeighbors_4"].tolist() == [1, 2, 1, 0]


def test_spacing_scales_lengths_and_areas():
    lab = _disk_labels(radius=8)
    px = measure_objects(lab, families=["shape"]).iloc[0]
    um = measure_objects(lab, families=["shape"], spacing=0.5).iloc[0]
    assert um["AreaShape_Area"] == px["AreaShape_Area"] * 0.25
    assert um["AreaShape_Perimeter"] == px["AreaShape_Perimeter"] * 0.5
    assert um["AreaShape_FormFactor"] == px["AreaShape_FormFactor"]


def test_summarize_image():
    lab = np.zeros((20, 20), dtype=np.int32)
    lab[1:5, 1:5] = 1
    lab[10:16, 10:16] = 2
    t = measure_objects(lab, families=["shape"])
    s = summarize_image(t)
    assert s["Count"] == 2
    assert s["Mean_AreaShape_Area"] == 26.0
    assert s["Median_AreaShape_Area"] == 26.0
    assert "Mean_ObjectNumber" not in s
    with pytest.raises(InvalidInput, match="table"):
        summarize_image({"a": 1})  # type: ignore[arg-type]


def test_granularity_reconstruction_matches_skimage():
    from quantscope.analysis._features._granularity import _ranked_reconstruction

    rng = np.random.default_rng(2)
    from scipy import ndimage as ndi

    img = ndi.gaussian_filter(rng.random((40, 50)), 1.5)
    levels, inv = np.unique(img, return_inverse=True)
    rank = inv.reshape(img.shape)
    cross = ndi.generate_binary_structure(2, 1)
    ero = ndi.grey_erosion(rank, footprint=cross, mode="reflect")
    rec = _ranked_reconstruction(rank.shape, rank)
    assert rec is not None
    expected = reconstruction(levels[ero], img, footprint=cross)
    np.testing.assert_array_equal(levels[rec(ero)], expected)


@pytest.mark.parametrize("seed", range(6))
def test_granularity_reconstruction_with_bounds_matches_skimage(seed):
    # plateaus and many zeros (a clipped top-hat, as granularity reconstructs): a chain of
    # erosions reconstructed from the largest down, each seeded by max(erosion, previous
    # result), from the smallest up (bounded by the previous result), and in bisection order
    # with both: every result equals scikit-image's reconstruction of the plain erosion
    from scipy import ndimage as ndi

    from quantscope.analysis._features._granularity import (
        _bisection_order,
        _erode_cross,
        _ranked_reconstruction,
    )

    rng = np.random.default_rng(seed)
    shape = [(30, 41), (1, 9), (7, 1), (2, 2), (50, 50), (13, 64)][seed]
    img = np.round(ndi.gaussian_filter(rng.random(shape), 1.0) * 40 - 18).clip(0, None)
    levels, inv = np.unique(img, return_inverse=True)
    rank = inv.reshape(img.shape)
    erosions = [_erode_cross(rank)]
    for _ in range(5):
        erosions.append(_erode_cross(erosions[-1]))
    cross = ndi.generate_binary_structure(2, 1)
    expected = [reconstruction(levels[e], img, footprint=cross) for e in erosions]
    rec = _ranked_reconstruction(rank.shape, rank)
    assert rec is not None
    below = None
    for k in range(len(erosions) - 1, -1, -1):
        s = erosions[k] if below is None else np.maximum(erosions[k], below)
        below = rec(s).copy()
        np.testing.assert_array_equal(levels[below], expected[k])
        # and from the plain erosion alone
        np.testing.assert_array_equal(levels[rec(erosions[k])], expected[k])
    # from the smallest up, with the previous result as an upper bound
    upper = None
    for k, e in enumerate(erosions):
        upper = rec(e, upper).copy()
        np.testing.assert_array_equal(levels[upper], expected[k])
    # both bounds at once, in measure_granularity's order
    done: dict[int, np.ndarray] = {}
    for k in _bisection_order(len(erosions)):
        larger = [j for j in done if j > k]
        smaller = [j for j in done if j < k]
        s = erosions[k] if not larger else np.maximum(erosions[k], done[min(larger)])
        done[k] = rec(s, done[max(smaller)] if smaller else None).copy()
        np.testing.assert_array_equal(levels[done[k]], expected[k])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 16])
def test_granularity_bisection_order_visits_each_step_once(n):
    from quantscope.analysis._features._granularity import _bisection_order

    order = _bisection_order(n)
    assert sorted(order) == list(range(n))
    if n:
        assert order[0] == n - 1


@pytest.mark.parametrize("shape", [(33, 44), (5, 7), (1, 3), (40, 2)])
@pytest.mark.parametrize("radius", [10, 3, 1])
def test_granularity_background_disk_filter_is_exact(shape, radius):
    # the decomposed disk opening equals scipy's generic grey filters bit for bit, also when
    # the disk is larger than the image (symmetric padding)
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    from quantscope.analysis._features._granularity import _flat_filter

    a = np.random.default_rng(radius).random(shape)
    fp = disk(radius, dtype=bool)
    r = radius
    ero = ndi.grey_erosion(np.pad(a, r, mode="symmetric"), footprint=fp)[r:-r, r:-r]
    dil = ndi.grey_dilation(np.pad(ero, r, mode="symmetric"), footprint=fp)[r:-r, r:-r]
    np.testing.assert_array_equal(_flat_filter(a, fp, "min"), ero)
    np.testing.assert_array_equal(_flat_filter(ero, fp, "max"), dil)


def test_granularity_upsample_matches_map_coordinates():
    from scipy import ndimage as ndi

    from quantscope.analysis._features._granularity import _upsample

    small = np.random.default_rng(4).random((33, 44))
    for stop in ((32.5, 43.5), (33.0, 44.0)):
        i, j = np.mgrid[0:130, 0:174].astype(float)
        i *= (stop[0] - 1) / 129
        j *= (stop[1] - 1) / 173
        expected = ndi.map_coordinates(small, (i, j), order=1)
        np.testing.assert_allclose(_upsample(small, (130, 174), stop), expected, atol=1e-14)


def test_granularity_mean_operator_matches_per_pixel_upsampling():
    # objects with gaps inside a row (a C shape, a ring) and an object on the image edge: the
    # run-based operator equals the per-object mean of the bilinearly upsampled image
    from quantscope.analysis._features._granularity import _axis_weights, _bilinear_mean_operator
    from quantscope.analysis._features._objects import Objects

    lab = np.zeros((61, 83), dtype=np.int32)
    yy, xx = np.mgrid[:61, :83]
    d = np.hypot(yy - 20, xx - 20)
    lab[(d < 12) & (d > 6)] = 3  # ring: two runs per middle row
    lab[(np.hypot(yy - 40, xx - 60) < 15) & (xx < 66) & ~((yy > 35) & (yy < 45) & (xx > 52))] = 7
    lab[55:, 0:10] = 9  # touches two image edges
    ob = Objects(lab)
    nh, nw = 15, 20
    small = np.random.default_rng(5).random((nh, nw))
    r0, r1, fr = _axis_weights(61, nh)
    c0, c1, fc = _axis_weights(83, nw)
    y, x = ob.rows, ob.cols
    up = (
        small[r0[y], c0[x]] * (1 - fr[y]) * (1 - fc[x])
        + small[r0[y], c1[x]] * (1 - fr[y]) * fc[x]
        + small[r1[y], c0[x]] * fr[y] * (1 - fc[x])
        + small[r1[y], c1[x]] * fr[y] * fc[x]
    )
    expected = ob.segment_sum(up) / ob.count
    op = _bilinear_mean_operator(ob, (61, 83), (nh, nw))
    np.testing.assert_allclose(op @ small.ravel(), expected, rtol=1e-12)


def test_atlas_distance_transform_equals_scipy():
    # the separable integer transform equals scipy's EDT bit for bit on an atlas with large,
    # concave, one-pixel-wide and image-edge objects
    from scipy import ndimage as ndi

    from quantscope.analysis._features._objects import Objects, edt_at

    yy, xx = np.mgrid[:90, :120]
    lab = np.zeros((90, 120), dtype=np.int32)
    lab[np.hypot(yy - 40, xx - 50) < 30] = 1
    lab[(np.hypot(yy - 40, xx - 50) < 12)] = 0  # hole: a ring
    lab[80:, :] = 2  # full-width band on the image edge
    lab[5:60, 100] = 3  # one pixel wide
    lab[60:75, 90:118] = 4
    lab[66:70, 95:112] = 0  # notch
    ob = Objects(lab)
    aidx, aflat = ob.atlas
    expected = ndi.distance_transform_edt(aidx >= 0).ravel()[aflat]
    np.testing.assert_array_equal(edt_at(aidx >= 0, aflat), expected)
    assert edt_at(aidx >= 0, aflat[:0]).shape == (0,)


@pytest.mark.parametrize("seed", range(4))
def test_atlas_distance_transform_equals_scipy_on_random_blobs(seed):
    # many objects of mixed sizes (the unfinished-pixel list shrinks at different rates)
    from scipy import ndimage as ndi

    from quantscope.analysis._features._objects import Objects, edt_at

    rng = np.random.default_rng(seed)
    blobs = ndi.gaussian_filter(rng.random((120, 160)), 2 + 2 * seed) > 0.5
    lab, _ = ndi.label(blobs)
    ob = Objects(lab)
    aidx, aflat = ob.atlas
    expected = ndi.distance_transform_edt(aidx >= 0).ravel()[aflat]
    np.testing.assert_array_equal(edt_at(aidx >= 0, aflat), expected)


def test_table_is_dataframe_float_columns():
    t = measure_objects(_disk_labels(), {"D": np.ones((64, 64))})
    assert isinstance(t, pd.DataFrame)
    assert t["ObjectNumber"].dtype.kind == "i"


def test_integer_image_quantiles_and_mad_with_ties():
    # uint16 input takes the exact radix-sort path; many ties, odd and even pixel counts
    rng = np.random.default_rng(11)
    lab = np.zeros((40, 40), dtype=np.int32)
    lab[1:8, 1:10] = 1  # 63 px
    lab[10:20, 2:12] = 2  # 100 px
    lab[25:26, 25:26] = 3  # 1 px
    img = rng.integers(0, 6, size=(40, 40)).astype(np.uint16) * 1000
    t = measure_objects(lab, {"C": img}, families=["intensity"]).set_index("ObjectNumber")
    for lv in (1, 2, 3):
        v = img[lab == lv] / 65535
        med = np.median(v)
        assert t.loc[lv, "Intensity_MedianIntensity_C"] == pytest.approx(med)
        assert t.loc[lv, "Intensity_LowerQuartileIntensity_C"] == pytest.approx(
            np.percentile(v, 25)
        )
        assert t.loc[lv, "Intensity_MADIntensity_C"] == pytest.approx(np.median(np.abs(v - med)))


@pytest.mark.parametrize("seed", range(3))
def test_mad_matches_numpy_on_many_small_objects(seed):
    # objects of 1 to ~12 pixels (odd and even counts, the two middle deviations of an even
    # count on either side of the median), integer and float images
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    lab, _ = ndi.label(rng.random((60, 60)) < 0.45)
    imgs = {
        "F": rng.random((60, 60)),
        "U": (rng.integers(0, 4, size=(60, 60)) * 7000).astype(np.uint16),
    }
    t = measure_objects(lab, imgs, families=["intensity"]).set_index("ObjectNumber")
    for ch, img in imgs.items():
        scaled = img / 65535 if img.dtype == np.uint16 else img
        for lv in np.unique(lab)[1:]:
            v = scaled[lab == lv]
            expected = np.median(np.abs(v - np.median(v)))
            assert t.loc[lv, f"Intensity_MADIntensity_{ch}"] == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("brightness", [0.3, 1.0])
def test_texture_matches_mahotas_on_random_objects(brightness):
    # 0.3: ~77 grey levels, co-occurrence cells counted densely; 1.0: ~256 levels, more
    # (object, level, level) cells than pairs, counted by sorting the pairs
    mahotas = pytest.importorskip("mahotas")
    rng = np.random.default_rng(4)
    lab = np.zeros((60, 60), dtype=np.int32)
    lab[3:25, 4:30] = 1
    lab[30:55, 10:50] = 2
    img = rng.random((60, 60)) * brightness
    t = measure_objects(lab, {"C": img}, families=["texture"], texture_scale=2)
    q = np.rint(img * 255).astype(np.uint8)
    for row, lv in enumerate((1, 2)):
        crop = np.where(lab == lv, q, 0)
        ys, xs = np.nonzero(lab == lv)
        crop = crop[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        ref = mahotas.features.haralick(crop, distance=2, ignore_zeros=True)
        for d in range(4):
            ours = [t[f"Texture_{f}_C_2_{d:02d}_256"].iloc[row] for f in HARALICK]
            np.testing.assert_allclose(ours, ref[d], rtol=1e-7, atol=1e-12)


HARALICK = [
    "AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment",
    "SumAverage", "SumVariance", "SumEntropy", "Entropy", "DifferenceVariance",
    "DifferenceEntropy", "InfoMeas1", "InfoMeas2",
]  # fmt: skip


def test_radial_distribution_of_a_constant_disk():
    lab = _disk_labels(radius=15)
    t = measure_objects(lab, {"C": np.full((64, 64), 0.3)}, families=["radial"]).iloc[0]
    fracs = [t[f"RadialDistribution_FracAtD_C_{b}of4"] for b in range(1, 5)]
    assert sum(fracs) == pytest.approx(1.0)
    assert fracs == sorted(fracs)  # outer rings hold more pixels
    for b in range(1, 5):
        assert t[f"RadialDistribution_MeanFrac_C_{b}of4"] == pytest.approx(1.0)
        assert t[f"RadialDistribution_RadialCV_C_{b}of4"] == pytest.approx(0.0, abs=1e-12)
    # intensity-weighted Zernike 0_0 of a constant image: the constant
    assert t["RadialDistribution_ZernikeMagnitude_C_0_0"] == pytest.approx(0.3)


def test_sparse_huge_and_bool_labels():
    lab = np.zeros((20, 20), dtype=np.int64)
    lab[2:6, 2:6] = 10**12  # far beyond the image size: mapped by search
    lab[10:15, 10:12] = 5
    t = measure_objects(lab, families=["shape"])
    assert t["ObjectNumber"].tolist() == [5, 10**12]
    assert t["AreaShape_Area"].tolist() == [10, 16]
    tb = measure_objects(lab > 0, families=["shape"])
    assert tb["ObjectNumber"].tolist() == [1]
    assert tb["AreaShape_Area"].tolist() == [26]


def test_families_subset_and_no_channels():
    lab = _disk_labels()
    t = measure_objects(lab, families=["shape", "neighbors", "intensity"])
    # no channel: channel families add no columns
    assert list(t.columns) == feature_columns([], families=["shape", "neighbors", "intensity"])
    assert not any(c.startswith("Intensity_") for c in t.columns)


def test_distances_to_edge_padded_and_inside_the_image():
    from scipy import ndimage as ndi

    from quantscope.analysis._features._objects import Objects

    lab = np.zeros((30, 40), dtype=np.int32)
    lab[0:12, 0:9] = 1  # top-left corner
    lab[20:30, 15:40] = 2  # bottom and right edges
    lab[10:18, 18:26] = 3  # inside
    ob = Objects(lab)
    for k, value in enumerate(ob.values):
        mask = lab == value
        sel = ob.obj == k
        # image edge = edge: the object padded by background
        padded = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        np.testing.assert_allclose(ob.distance_to_edge[sel], padded[ob.rows[sel], ob.cols[sel]])
        # only pixels inside the image count (CellProfiler's distance_to_edge)
        inside = ndi.distance_transform_edt(mask)
        np.testing.assert_allclose(
            ob.distance_to_edge_inside[sel], inside[ob.rows[sel], ob.cols[sel]]
        )
