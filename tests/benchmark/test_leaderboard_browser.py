"""The leaderboard page in a real browser: headless chromium draws ``lb.html`` with its
distributions, its per-image comparison and the overlays of the worst images, in the overlay
colours that explain why a method loses (misses yellow, false positives red).

Needs Debian's ``chromium`` (``.ci/run`` installs it). Without it the test skips, except under
CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from quantscope.benchmark import add_set, leaderboard, run_benchmark, write_leaderboard_html
from quantscope.catalog import Repository

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    reason = "headless chromium not found; install Debian's chromium (apt-get install chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _count(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int, top: int) -> int:
    """Pixels of about this colour below row ``top``: the overlays, not the colour legend."""
    hit = np.abs(pixels[top:].astype(int) - np.array(rgb)).max(axis=-1) <= tol
    return int(np.count_nonzero(hit))


def test_leaderboard_renders_with_overlays_that_show_misses_and_false_positives(
    chromium: str, bbbc039: Path, tmp_path: Path
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
    subprocess.run(
        [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1400,4000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
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
