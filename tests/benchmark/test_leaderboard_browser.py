"""The leaderboard page in a real browser: headless chromium draws ``lb.html`` with its
distributions, its per-image comparison and the overlays of the worst images, in the overlay
colours that explain why a method loses (misses yellow, false positives red).

Needs Debian's ``chromium`` (``.ci/run`` installs it). Without it the test skips, except under
CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _bench_helpers import blobs
from PIL import Image as PILImage

from quantscope.benchmark import add_set, leaderboard, run_benchmark, write_leaderboard_html
from quantscope.catalog import Repository

pytestmark = pytest.mark.slow


def _count(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int, top: int) -> int:
    """Pixels of about this colour below row ``top``: the overlays, not the colour legend."""
    hit = np.abs(pixels[top:].astype(int) - np.array(rgb)).max(axis=-1) <= tol
    return int(np.count_nonzero(hit))


def test_leaderboard_renders_with_overlays_that_show_misses_and_false_positives(
    headless: Callable[..., subprocess.CompletedProcess[str]], bbbc039: Path, tmp_path: Path
) -> None:
    truth_dir, pred_dir, img_dir = tmp_path / "truth", tmp_path / "pred", tmp_path / "images"
    for d in (truth_dir, pred_dir, img_dir):
        d.mkdir()
    for f in sorted((bbbc039 / "labels").glob("*.tif"))[:4]:
        shutil.copy(f, truth_dir / f.name)
        shutil.copy(bbbc039 / "images" / f.name, img_dir / f.name)
        truth = tifffile.imread(f)
        pred = truth.copy()
        pred[(pred % 4) == 1] = 0  # about a quarter of the nuclei missed
        pred[10:40, 10:40] = pred.max() + 1  # one false positive in a corner
        tifffile.imwrite(pred_dir / f.name, pred)
    with Repository.init(tmp_path / "repo") as repo:
        add_set(repo, "four", truth_dir, img_dir, license="CC0-1.0", ingest=True, qc=False)
        run_benchmark(repo, "four", truth_dir, method="reference")
        run_benchmark(repo, "four", pred_dir, method="lossy")
        board = leaderboard(repo, "four")
        assert [e.method for e in board.entries] == ["reference", "lossy"]
        page = write_leaderboard_html(repo, board, tmp_path / "lb.html")

    shot = tmp_path / "shot.png"
    headless("--window-size=1400,4000", f"--screenshot={shot}", page.as_uri())
    pixels = np.asarray(PILImage.open(shot).convert("RGB"))
    assert pixels.shape == (4000, 1400, 3)
    assert pixels.mean(axis=-1).std() > 20  # a drawn page, not a blank one
    # the overlays of the worst images show the missed nuclei (yellow), the false positive
    # (red) and the matched outlines (green); the overlays are downsampled, so colours are
    # compared with a tolerance; the reference method's overlays have no yellow or red
    legend = (np.abs(pixels.astype(int) - np.array((255, 217, 0))).max(axis=-1) <= 40).any(axis=1)
    top = int(np.argmax(legend)) + 40  # the first yellow row is the legend's swatch
    assert _count(pixels, (255, 217, 0), 40, top) > 800
    assert _count(pixels, (255, 26, 26), 40, top) > 60
    assert _count(pixels, (26, 230, 51), 40, top) > 2000


_MEASURE = """<script>
const over = (el) => el.scrollWidth - el.clientWidth;
const boxes = [...document.querySelectorAll('.wrap, .scroll')].map(over);
const clipped = [...document.querySelectorAll('svg text')].filter((t) => t.getBBox().x < 0);
document.body.setAttribute('data-measured', JSON.stringify({
  viewport: window.innerWidth, page: document.documentElement.scrollWidth,
  boxes: Math.max(0, ...boxes), clipped: clipped.length}));
</script>"""

#: Method names as users give them: tools with their parameters spelled out.
LONG_METHODS = (
    "cellpose_cyto3_diameter30_flow0.4_cellprob0_resample_true_tiled_augmented",
    "stardist_2D_versatile_fluo_prob0.479_nms0.3_scale1.0",
    "watershed-otsu-distance-transform-min-distance-7-footprint-disk",
    "cellprofiler_IdentifyPrimaryObjects_Otsu_two_class_adaptive_declump_intensity",
    "ilastik_pixel_classification_then_object_classification_v1.4.1",
    "mesmer_nuclear_v0.12",
    "baseline",
    "a",
)


def test_leaderboard_fits_a_1280_px_window(
    headless: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """Many methods with long names, long parameters and image names, every metric column and
    the confidence intervals: the page needs no horizontal scrolling at 1280 x 800, its tables
    fit without scrolling inside their boxes, and no label of the distribution plot is cut."""
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    names = [f"plate01_well_B{k:02d}_site{k % 4}_channel_DAPI_nuclei_z000" for k in range(8)]
    for k, name in enumerate(names):
        tifffile.imwrite(truth_dir / f"{name}.tif", blobs(k, (64, 64), 6))
    set_name = "nuclei_of_a_screen_with_a_long_set_name_to_check_the_layout_ok"
    with Repository.init(tmp_path / "repo") as repo:
        add_set(repo, set_name, truth_dir, license="CC0-1.0", qc=False)
        for m, method in enumerate(LONG_METHODS):
            pred = {}
            for k, name in enumerate(names):
                lab = blobs(k, (64, 64), 6)
                lab[(lab % (m + 2)) == 1] = 0  # each method misses a different share
                pred[name] = lab
            run_benchmark(
                repo,
                set_name,
                pred,
                method=method,
                tool="a_tool_with_a_long_distribution_name",
                tool_version="3.0.10.dev123+g1234567890",
                parameters={
                    "diameter": 30,
                    "flow_threshold": 0.4,
                    "cellprob_threshold": 0.0,
                    "model": "cyto3_with_an_extra_long_model_name_from_a_zoo",
                },
                n_resamples=200,
            )
        board = leaderboard(repo, set_name, n_resamples=200)
        assert len(board.entries) == len(LONG_METHODS)
        page = write_leaderboard_html(repo, board, tmp_path / "lb.html", worst=1)

    probe = tmp_path / "probe.html"
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    dom = headless("--window-size=1280,800", "--dump-dom", probe.as_uri()).stdout
    found = re.search(r"data-measured=\"([^\"]*)\"", dom)
    assert found, dom[-2000:]
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["viewport"] == 1280, measured
    assert measured["page"] <= 1280, measured  # no horizontal scrolling of the page
    assert measured["boxes"] <= 0, measured  # nor of a table inside its box
    assert measured["clipped"] == 0, measured  # method names beside the plot not cut off
