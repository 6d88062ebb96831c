"""Calibration of QC's absolute focus limits (``focus_plls``) on real in-focus and defocused fields.

Run from the repository root::

    .venv/bin/python bench/qc_focus_limits.py [--no-dsb]

It prints, for each set of real images, the range of ``focus_plls`` as QC stores it
(:func:`quantscope.quality.channel_metrics`: the power-spectrum log-log slope, 2 x 2-binned for
planes of >= 128 px), the separation between the defocused BBBC006 fields and every in-focus
set, where the default limits of :data:`quantscope.quality.DEFAULT_LIMITS` sit in that gap, and
how many images of each set they flag. A synthetic focus series (known Gaussian PSF widths in px)
translates the limits into a blur width, which is what the slope measures: blur *relative to
the pixel*, so the limits hold across magnifications as long as an in-focus image is not
heavily oversampled (see the last table).

Sets (``../shared/data``):

- ``bbbc006_defocused``: the 12 raw BBBC006 fields that are strongly out of focus;
- ``bbbc006_in_focus``: the 9 BBBC006 fields at z-plane 10 (in focus);
- ``bbbc039``: 40 BBBC039 U2OS Hoechst fields (in focus; same screen type, 20x);
- ``cellprofiler``: ExampleHuman, ExampleFly and the illumination example (other instruments);
- ``timelapse``: the HeLa frames (2-D) and the best plane of each CHO z-stack;
- ``dsb2018``: 510 DSB2018 nuclei images from many labs, microscopes and magnifications
  (256 px to 1388 px, no pixel sizes): the test that the limits do not fail sharp images of
  other instruments (``--no-dsb`` skips it, ~30 s).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _read(path: Path) -> np.ndarray:
    try:
        return tifffile.imread(path)
    except tifffile.TiffFileError:
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))


def _planes(path: Path) -> list[np.ndarray]:
    """What QC measures of a file: each 2-D channel or frame, each z-stack (its best plane)."""
    a = _read(path)
    if a.ndim == 2:
        return [a]
    if a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] > 4:  # RGB(A) samples last
        return [a[..., c] for c in range(3)]
    if a.ndim in (3, 4):  # (C or T, Y, X) planes, or (T, Z, Y, X) stacks
        return [a[i] for i in range(a.shape[0])]
    raise SystemExit(f"{path}: unexpected shape {a.shape}")


def _sets(with_dsb: bool) -> dict[str, list[Path]]:
    q = DATA / "image_quality"
    cp = DATA / "cellprofiler_examples"
    sets = {
        "bbbc006_defocused": sorted(q.glob("00_*.tif"))
        + sorted(q.glob("bbbc006_raw_fields/*/*.tif")),
        "bbbc006_in_focus": sorted(q.glob("BBBC006_z_aligned__*_10.png")),
        "bbbc039": sorted((DATA / "bbbc039_nuclei_subset" / "images").glob("*.tif")),
        "cellprofiler": sorted((cp / "ExampleHuman" / "images").glob("*"))
        + sorted((cp / "ExampleFly" / "images").glob("*"))
        + sorted((cp / "ExampleIlluminationCorrection" / "images").glob("*.TIF")),
        "timelapse": [
            DATA / "timelapse" / "Fluo_Hela_02_img.tif",
            DATA / "timelapse" / "Fluo-N3DH-CHO_02_img.tif",
        ],
    }
    if with_dsb:
        sets["dsb2018"] = sorted((DATA / "dsb2018_fluo_train" / "images").glob("*.tif"))
    missing = [k for k, v in sets.items() if not v or not all(p.exists() for p in v)]
    if missing:
        raise SystemExit(f"data not found under {DATA}: {', '.join(missing)}")
    return sets


def _values(paths: list[Path]) -> np.ndarray:
    from quantscope.quality import best_plane_metrics

    out = []
    for p in paths:
        for plane in _planes(p):
            out.append(best_plane_metrics(plane)["focus_plls"])
    return np.asarray(out, dtype=np.float64)


def _synthetic() -> list[tuple[int, float, float, float]]:
    """(size, PSF sigma px, min, max) of focus_plls over seeds 0-2 and both channels."""
    from quantscope.quality import channel_metrics
    from quantscope.synth import SynthOptions, render_field

    rows = []
    for size in (256, 512):
        for blur in (0.0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0):
            v = []
            for seed in range(3):
                img, _, _ = render_field(
                    SynthOptions(size=size, seed=seed, blur=blur), np.random.default_rng(seed)
                )
                v += [channel_metrics(img[c])["focus_plls"] for c in range(img.shape[0])]
            rows.append((size, math.hypot(1.0, blur), float(np.min(v)), float(np.max(v))))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-dsb", action="store_true", help="skip the 510 DSB2018 images")
    args = ap.parse_args(argv)
    from quantscope.quality import DEFAULT_LIMITS

    limit = DEFAULT_LIMITS["focus_plls"]
    warn, fail = limit.warn_below, limit.fail_below
    assert warn is not None and fail is not None
    t0 = time.perf_counter()
    values = {name: _values(paths) for name, paths in _sets(not args.no_dsb).items()}
    print(f"focus_plls as QC stores it (limits: warn below {warn:g}, fail below {fail:g})")
    print(f"{'set':<20} {'n':>4} {'min':>7} {'median':>7} {'max':>7} {'warn':>5} {'fail':>5}")
    for name, v in values.items():
        ok = v[np.isfinite(v)]
        print(
            f"{name:<20} {len(v):>4} {ok.min():>7.2f} {np.median(ok):>7.2f} {ok.max():>7.2f} "
            f"{int(np.sum(ok < warn)):>5} {int(np.sum(ok < fail)):>5}"
            + (f"  ({len(v) - len(ok)} NaN: empty fields)" if len(ok) < len(v) else "")
        )
    blurred = values["bbbc006_defocused"]
    sharp = np.concatenate([v for k, v in values.items() if k != "bbbc006_defocused"])
    sharp = sharp[np.isfinite(sharp)]
    top_blurred, low_sharp = float(np.max(blurred)), float(np.min(sharp))
    print(
        f"\nseparation: sharpest defocused field {top_blurred:.2f}, blurriest in-focus image "
        f"{low_sharp:.2f} (gap {low_sharp - top_blurred:.2f})"
    )
    print(
        f"fail limit {fail:g}: {top_blurred - fail:+.2f} from the sharpest defocused field, "
        f"{low_sharp - fail:+.2f} from the blurriest in-focus image; warn limit {warn:g}: "
        f"{low_sharp - warn:+.2f} from it"
    )
    print("\nsynthetic focus series (seeds 0-2, 2 channels): focus_plls by total PSF sigma")
    print(f"{'size px':>8} {'sigma px':>9} {'min':>7} {'max':>7}  verdict of the worst")
    for size, sigma, lo, hi in _synthetic():
        verdict = "fail" if lo < fail else ("warn" if lo < warn else "pass")
        print(f"{size:>8} {sigma:>9.2f} {lo:>7.2f} {hi:>7.2f}  {verdict}")
    print(
        "\nAn in-focus widefield PSF has sigma ~0.21 lambda/NA (Zhang et al. 2007, "
        "doi:10.1364/AO.46.001819); sampled at Nyquist (pixel lambda/4NA) that is ~0.84 px. "
        "The limits flag blur of several px, so they hold for in-focus images sampled up to "
        "about 2-3x finer than Nyquist; more oversampled data (high zoom confocal) need their "
        "own [qc.limits.focus_plls]."
    )
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
