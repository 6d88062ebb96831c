"""Agreement with cp_measure 0.3.0 (CellProfiler's measurements as a library) on BBBC039.

Feature by feature on real nuclei images and their reference labels; images are uint16 scaled
by 1/65535 on both sides. Tolerances (relative unless said):

* shape, intensity, texture, granularity: 1e-6, i.e. round-off (absolute 1e-9 of the column's
  largest value for values that are zero in exact arithmetic, 1e-6 for granularity, whose steps
  are differences of nearly equal means; absolute 1e-6 for the central moments of order 1);
* Zernike (shape and intensity-weighted radial ones): >= 80% of objects to round-off; the rest
  differ because pixels exactly on the enclosing circle fall either side of CellProfiler's
  ``r^2 > 1`` test by rounding: shape Zernike absolute 0.02, radial ZernikeMagnitude 5% of the
  object's ZernikeMagnitude_0_0 (its mean intensity), ZernikePhase unbounded there (the phase of
  a near-zero moment);
* radial distribution FracAtD, MeanFrac, RadialCV: 1e-6 on every object, objects touching the
  image border included.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from quantscope.analysis._features import measure_objects

cp_bulk = pytest.importorskip("cp_measure.bulk", reason="cp_measure (dev dependency) not installed")
tifffile = pytest.importorskip("tifffile")

HARALICK = {
    "AngularSecondMoment", "Contrast", "Correlation", "Variance", "InverseDifferenceMoment",
    "SumAverage", "SumVariance", "SumEntropy", "Entropy", "DifferenceVariance",
    "DifferenceEntropy", "InfoMeas1", "InfoMeas2",
}  # fmt: skip
NOT_COMPARED = ("PerimeterCrofton",)


def _ours_name(key: str, ch: str) -> str | None:
    """quantscope's column for a cp_measure bulk key (None: deliberately not computed)."""
    if key.startswith(NOT_COMPARED) or key.endswith("_Z"):
        return None
    if key.startswith(("Intensity_", "Location_")):
        return f"{key}_{ch}"
    if key.startswith("Granularity_"):
        return f"{key}_{ch}"
    if key.startswith("RadialDistribution_"):
        _, feat, rest = key.split("_", 2)
        return f"RadialDistribution_{feat}_{ch}_{rest}"
    first, _, rest = key.partition("_")
    if first in HARALICK:
        return f"Texture_{first}_{ch}_{rest}"
    return f"AreaShape_{key}"


def _pairs(path_img: Path, path_lab: Path):
    img = tifffile.imread(path_img)
    lab = tifffile.imread(path_lab).astype(np.int32)
    ours = measure_objects(lab, {"DNA": img})
    ref: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in cp_bulk.get_core_measurements().values():
            ref.update(fn(lab, img.astype(np.float64) / 65535))
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    touching = np.isin(ours["ObjectNumber"].to_numpy(), border)
    return ours, ref, touching


@pytest.fixture(scope="module")
def bbbc039(shared_data: Path):
    root = shared_data / "bbbc039_nuclei_subset"
    images = sorted((root / "images").glob("*.tif"))
    labels = sorted((root / "labels").glob("*.tif"))
    assert len(images) == len(labels) >= 2
    return [_pairs(images[i], labels[i]) for i in (0, 7)]


@pytest.mark.slow
def test_every_cp_measure_feature_agrees(bbbc039):
    compared = 0
    n_touching = 0
    for ours, ref, touching in bbbc039:
        n_touching += int(touching.sum())
        assert len(ours) == len(next(iter(ref.values())))
        for key, val in ref.items():
            name = _ours_name(key, "DNA")
            if name is None:
                continue
            assert name in ours.columns, f"{key} -> {name} missing"
            a = ours[name].to_numpy(dtype=float)
            b = np.asarray(val, dtype=float)
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=key)
            ok = ~np.isnan(a)
            if "Zernike" in key:
                exact = np.isclose(a[ok], b[ok], rtol=1e-9, atol=1e-12)
                assert exact.mean() > 0.8, key  # most objects to round-off
                if key.startswith("Zernike_"):
                    np.testing.assert_allclose(a[ok], b[ok], atol=0.02, err_msg=key)
                elif "Magnitude" in key:  # a few boundary pixels of the object's intensity
                    scale = ours["RadialDistribution_ZernikeMagnitude_DNA_0_0"].to_numpy()
                    assert (np.abs(a - b)[ok] <= 0.05 * scale[ok]).all(), key
            elif key == "Orientation":  # an axis: +90 and -90 degrees are the same
                d = np.abs(a[ok] - b[ok]) % 180
                assert (np.minimum(d, 180 - d) < 1e-6).all(), key
            elif key in ("CentralMoment_0_1", "CentralMoment_1_0"):
                np.testing.assert_allclose(a[ok], b[ok], atol=1e-6, err_msg=key)
            else:
                # round-off: relative, or absolute at 1e-9 of the column's scale near zero
                fin = np.isfinite(b[ok])
                scale = float(np.abs(b[ok][fin]).max()) if fin.any() else 0.0
                # granularity steps are differences of nearly equal means: absolute 1e-6 of scale
                rel = 1e-6 if key.startswith("Granularity_") else 1e-9
                np.testing.assert_allclose(
                    a[ok], b[ok], rtol=1e-6, atol=rel * scale + 1e-12, err_msg=key
                )
            compared += 1
    # 2 images x (shape 108 + intensity 19 + texture 52 + granularity 16 + radial 72)
    assert compared >= 2 * 260
    assert n_touching > 10  # objects cut by the image edge are part of the comparison
