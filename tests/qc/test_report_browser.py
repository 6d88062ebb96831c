"""The QC report in a real browser: headless chromium renders ``qc.html`` (screenshot: the page
is drawn, with its heatmap colours and status bar) and runs its script (the DOM after a link
that sorts and filters the table).

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it). Without
it the tests skip, except under CI (``CI`` set), where a missing browser is a failure.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from quantscope.catalog import Repository
from quantscope.ingestion import ingest
from quantscope.qc import estimate_profiles, write_html_report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Repository]]:
    """qc.html of a 2x3 synthetic plate (2 fields per well, 128 px, DAPI + GFP) whose field
    A02 s1 is blurred, with illumination profiles."""
    from quantscope.synth import SynthOptions, synth_plate

    base = tmp_path_factory.mktemp("browser")
    opts = SynthOptions(plate="2x3", fields=2, size=128, seed=5)
    sharp = synth_plate(base / "sharp", opts)
    blurred = synth_plate(base / "blurred", opts, blur=4.0)
    for field in blurred.fields:
        if field.name.endswith("_A02_s1"):
            for p in field.images:
                shutil.copy(p, sharp.images_dir / p.name)
    repo = Repository.init(base / "repo")
    assert ingest(repo, [sharp.images_dir]).ok
    estimate_profiles(repo)
    path = write_html_report(repo, base / "qc.html")
    yield path, repo
    repo.close()


def _near(pixels: np.ndarray, hex_color: str, tol: int = 12) -> int:
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    return int(np.count_nonzero(np.abs(pixels.astype(int) - rgb).max(axis=-1) <= tol))


def test_screenshot_shows_heatmaps_and_status_bar(
    headless: Callable[..., subprocess.CompletedProcess[str]],
    report: tuple[Path, Repository],
    tmp_path: Path,
) -> None:
    path, _ = report
    shot = tmp_path / "shot.png"
    headless("--window-size=1280,2400", f"--screenshot={shot}", path.as_uri())
    pixels = np.asarray(PILImage.open(shot).convert("RGB"))
    assert pixels.shape == (2400, 1280, 3)
    grey = pixels.mean(axis=-1)
    assert grey.std() > 20  # not a blank page
    # each heatmap spans viridis from its smallest well (#440154) to its largest (#fde725)
    assert _near(pixels, "#440154") > 500 and _near(pixels, "#fde725") > 500
    # pass / warn / fail colours of the header bar and badges
    for color in ("#2da44e", "#cf222e"):
        assert _near(pixels, color, tol=6) > 300, color


class _Rows(HTMLParser):
    """Header keys and rows (name, hidden, sort values by column) of the image table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.keys: list[str] = []
        self.sorted: dict[str, str] = {}
        self.rows: list[dict[str, object]] = []
        self.shown = ""
        self._in: str | None = None
        self._col = -1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "th" and a.get("data-key"):
            self.keys.append(str(a["data-key"]))
            if a.get("aria-sort"):
                self.sorted[str(a["data-key"])] = str(a["aria-sort"])
        elif tag == "tr" and (a.get("class") or "").startswith("st-"):
            hidden = "display: none" in (a.get("style") or "")
            self.rows.append({"hidden": hidden, "cells": []})
        elif tag == "td" and self.rows:
            cells = self.rows[-1]["cells"]
            assert isinstance(cells, list)
            cells.append({"v": a.get("data-v"), "t": ""})
            self._in = "td"
        elif tag == "span" and a.get("id") == "shown":
            self._in = "shown"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "span"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "td":
            cells = self.rows[-1]["cells"]
            assert isinstance(cells, list)
            cells[-1]["t"] += data
        elif self._in == "shown":
            self.shown += data


def _dom(headless: Callable[..., subprocess.CompletedProcess[str]], url: str) -> _Rows:
    done = headless("--dump-dom", url)
    parsed = _Rows()
    parsed.feed(done.stdout)
    return parsed


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_script_sorts_and_filters_from_a_link(
    headless: Callable[..., subprocess.CompletedProcess[str]],
    report: tuple[Path, Repository],
    tmp_path: Path,
    direction: str,
) -> None:
    path, repo = report
    statuses = repo.quality.status()
    flagged = sum(st in ("warn", "fail") for st, _ in statuses.values())
    assert 0 < flagged < len(statuses) == 12
    url = f"{path.as_uri()}#sort=focus_plls:DAPI&dir={direction}&status=fail+warn"
    dom = _dom(headless, url)
    # the page's script ran: the count line is its own text, the header marks the sort
    assert dom.shown.strip() == f"{flagged} of 12 images"
    assert dom.sorted == {"focus_plls:DAPI": "ascending" if direction == "asc" else "descending"}
    col = dom.keys.index("focus_plls:DAPI")
    visible = [r for r in dom.rows if not r["hidden"]]
    assert len(dom.rows) == 12 and len(visible) == flagged
    values = [float(r["cells"][col]["v"] or "nan") for r in dom.rows]  # type: ignore[index]
    finite = [v for v in values if math.isfinite(v)]
    assert finite == sorted(finite, reverse=direction == "desc")
    assert values[: len(finite)] == finite  # undefined values last
    # the blurred field has the lowest slope of the plate
    names = [r["cells"][1]["t"] for r in visible]  # type: ignore[index]
    assert names[0 if direction == "asc" else -1] == "synth_A02_s1"


def test_page_without_a_link_is_unsorted_and_unfiltered(
    headless: Callable[..., subprocess.CompletedProcess[str]],
    report: tuple[Path, Repository],
    tmp_path: Path,
) -> None:
    path, _ = report
    dom = _dom(headless, path.as_uri())
    assert dom.sorted == {} and len(dom.rows) == 12
    assert not any(r["hidden"] for r in dom.rows)
    assert dom.shown.strip() == "12 images"
