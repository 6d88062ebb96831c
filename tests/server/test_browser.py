"""The portal in a real browser, as a person uses it: Playwright driving Debian's headless
chromium against ``quantscope serve`` (its own process).

One journey: search, open an image, zoom and pan the deep-zoom viewer (tiles of another pyramid
level are fetched), switch a channel off (the tile URLs and the pixels change), show the label
overlay, open the plate map and click a well through to its image, open the QC dashboard and
click a heatmap well through to the plate map. Any console error, page error, failed request or
HTTP error fails the test. Screenshots of the main pages are kept as test artifacts in
``$QUANTSCOPE_TEST_ARTIFACTS`` (else the test's tmp_path).

The repository is built here (not the shared ``served_root``): its images are 640 px, so the
stored pyramid has two levels to zoom through.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "nuclei.yaml"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def zoom_root(tmp_path_factory: pytest.TempPathFactory, cli: Callable[..., Any]) -> Path:
    """A 1x2 plate of 640 px fields (two pyramid levels: 640 and 320 px), two channels,
    QC'd, with nuclei labels."""
    root = tmp_path_factory.mktemp("browser")
    steps = [
        (
            "synth",
            root / "plate",
            "--plate",
            "1x2",
            "--fields",
            "1",
            "--channels",
            "DAPI,GFP",
            "--size",
            "640",
            "--seed",
            "5",
        ),
        ("init", root / "repo"),
        ("ingest", root / "repo", root / "plate" / "images"),
        ("run", root / "repo", PIPELINE),
    ]
    for args in steps:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
    return root / "repo"


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("QUANTSCOPE_TEST_ARTIFACTS") or tmp_path) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watch:
    """What the page did: requests, and every console error, page error, failed request and
    HTTP error (the test fails on any)."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )

    def _failed(self, request: Any) -> None:
        # ERR_ABORTED: the page cancelled it (left for another page, or the viewer no longer
        # needs that tile); anything else is a failure
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"failed: {request.url} {request.failure}")

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text}")

    def tiles(self, since: int = 0) -> list[str]:
        return [u for u in self.urls[since:] if "/tiles/" in u]


def channel_mean(png: bytes, band: int) -> float:
    """Mean of one colour band (0 red, 1 green, 2 blue) of a PNG screenshot."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as im:
        return float(ImageStat.Stat(im.convert("RGB")).mean[band])


def settled(page: Any, items: int) -> None:
    """Wait until the viewer holds ``items`` images, all fully loaded and drawn."""
    page.wait_for_function(
        """n => { const v = window.quantscopeViewer; if (!v || v.world.getItemCount() !== n)
        return false; for (let i = 0; i < n; i++) if (!v.world.getItemAt(i).getFullyLoaded())
        return false; return true; }""",
        arg=items,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(300)  # the last frame drawn


def test_portal_journey(
    zoom_root: Path,
    serve_process: Callable[..., str],
    chromium: str,
    artifacts: Path,
) -> None:
    from quantscope.server._pages_image import VENDOR_JS

    if not VENDOR_JS.is_file():  # `make test` installs it (make vendor)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{VENDOR_JS} is missing: run `make vendor`")
        pytest.skip("OpenSeadragon is not installed: run `make vendor`")
    sync_api = pytest.importorskip("playwright.sync_api")
    base = serve_process(zoom_root)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            watch = Watch(page)
            _search_and_view(page, watch, base, artifacts)
            _plate_map(page, base, artifacts)
            _qc_dashboard(page, base, artifacts)
        finally:
            browser.close()
    assert not watch.problems, watch.problems


def _search_and_view(page: Any, watch: Watch, base: str, artifacts: Path) -> None:
    page.goto(base + "/")
    assert page.locator("table.hits-table tbody tr").count() == 2
    page.fill("input[name=q]", 'well == "A02"')
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=well"))
    rows = page.locator("table.hits-table tbody tr")
    assert rows.count() == 1
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "search.png"), full_page=True)
    rows.locator("a").first.click()
    page.wait_for_url(re.compile(r"/images/"))
    settled(page, 1)
    first = watch.tiles()
    assert first and all("/tiles/0/" in u for u in first)  # the view fits level 0
    assert all("c=0%2C1" in u for u in first)
    page.screenshot(path=str(artifacts / "image.png"), full_page=True)
    viewer = page.locator("#viewer")
    before = viewer.screenshot()
    # zoom out with the mouse wheel: OpenSeadragon fetches the coarser level (API level 1)
    box = viewer.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    mark = len(watch.urls)
    for _ in range(8):
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(100)
    page.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => e.name.includes('/tiles/1/'))"
    )
    assert any("/tiles/1/" in u for u in watch.tiles(mark))
    # zoom back in and pan by dragging
    for _ in range(12):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(100)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 150, box["y"] + box["height"] / 2 - 80, steps=8)
    page.mouse.up()
    centre = page.evaluate("() => window.quantscopeViewer.viewport.getCenter(true).x")
    assert centre > 0.5  # dragged left: the view moved right
    settled(page, 1)
    # switch GFP (green) off: new tile URLs with channel 0 only, and the green goes
    with_green = viewer.screenshot()
    mark = len(watch.urls)
    page.uncheck(".channel[data-index='1'] .ch-on")
    settled(page, 1)
    switched = watch.tiles(mark)
    assert switched and all("c=0&" in u for u in switched)
    without_green = viewer.screenshot()
    assert channel_mean(without_green, 1) < 0.2 * channel_mean(with_green, 1)
    # contrast: a lower max for DAPI brightens the blue
    mark = len(watch.urls)
    page.fill(".channel[data-index='0'] .ch-max", "1000")
    page.press(".channel[data-index='0'] .ch-max", "Tab")  # "change" fires on leaving the field
    settled(page, 1)
    assert all("max=1000" in u for u in watch.tiles(mark)) and watch.tiles(mark)
    brighter = viewer.screenshot()
    assert channel_mean(brighter, 2) > 1.2 * channel_mean(without_green, 2)
    without_green = brighter
    # the label overlay: a second tiled image from the labels/ group
    mark = len(watch.urls)
    page.check(".label-on")
    settled(page, 2)
    labels = watch.tiles(mark)
    assert labels and all("/labels/Nuclei" in u for u in labels)
    assert viewer.screenshot() != without_green != before
    # zoomed out, the overlay follows to the labels' coarser level
    mark = len(watch.urls)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(16):  # (from the closest zoom: 4 screen pixels per image pixel)
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(60)
    settled(page, 2)
    assert any("/labels/" in u and "/tiles/1/" in u for u in watch.tiles(mark))
    page.screenshot(path=str(artifacts / "image-labels.png"), full_page=True)


def _plate_map(page: Any, base: str, artifacts: Path) -> None:
    page.goto(base + "/plates")
    page.click("table.plates a")
    page.wait_for_url(re.compile(r"/plates/synth"))
    page.screenshot(path=str(artifacts / "plate.png"), full_page=True)
    assert not page.locator("#fields-A01").is_visible()
    page.click("a.well[data-well='A01']")
    fields = page.locator("#fields-A01")
    assert fields.is_visible()
    fields.locator("a").first.click()
    page.wait_for_url(re.compile(r"/images/"))
    assert "A01" in page.locator("h1").inner_text()
    # colour by a metric: the select reloads the map
    page.goto(base + "/plates/synth")
    page.select_option("select[name=color]", "snr:0")
    page.wait_for_url(re.compile(r"color=snr"))
    page.wait_for_load_state("networkidle")


def _qc_dashboard(page: Any, base: str, artifacts: Path) -> None:
    page.goto(base + "/qc")
    assert page.locator("svg.heatmap").count() > 0
    page.screenshot(path=str(artifacts / "qc.png"), full_page=True)
    page.locator("svg.heatmap rect.well").first.click()
    page.wait_for_url(re.compile(r"/plates/synth#fields-A0"))
    assert page.locator(".well-fields:target").is_visible()
