"""The self-contained HTML quality-control report (``quantscope qc REPO --report``)."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from quantscope.errors import InvalidInput, NotFound
from quantscope.qc._data import ImageQCRecord, MetricDescription, ProfileRecord, QCReportData
from quantscope.qc._report import KEY_METRICS, WORST_N, render_report, write_report
from quantscope.quality import METRICS, QCFlag

EVIL = "<script>alert('x & \"y\"')</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
DATA_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


# ----------------------------------------------------------------------------------------------
# stand-in data


def _metric_descriptions() -> list[MetricDescription]:
    return [
        MetricDescription(m.name, m.category, m.description, m.unit, m.direction, m.reference)
        for m in METRICS.values()
    ]


def _metrics(rng: np.random.Generator, *, bad: str = "") -> dict[str, float]:
    values = {
        "focus_plls": float(rng.normal(-1.8, 0.15)),
        "focus_local": float(rng.lognormal(-1, 0.2)),
        "snr": float(rng.lognormal(math.log(80), 0.3)),
        "saturation_pct_at_max": float(rng.uniform(0, 0.02)),
        "illum_corner_center_ratio": float(rng.uniform(0.85, 1.0)),
        "background_median": float(rng.normal(110, 5)),
        "foreground_pct": float(rng.uniform(5, 30)),
    }
    if bad == "blur":
        values["focus_plls"] = -3.4
    elif bad == "saturated":
        values["saturation_pct_at_max"] = 2.5
    elif bad == "dim":
        values["snr"] = 3.0
    elif bad == "nan":
        values["focus_plls"] = math.nan
        values["snr"] = math.nan
    return values


def _thumb(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((yy - size / 2) ** 2 + (xx - size / 3) ** 2) / (2 * (size / 6) ** 2))
    return np.clip(blob * 230 + rng.integers(0, 25, (size, size)), 0, 255).astype(np.uint8)


def make_data(n_images: int = 48, *, plate_shape: tuple[int, int] = (4, 6), seed: int = 0):
    """A QCReportData built by hand: one plate, 2 channels, some fails, warns and NaNs."""
    rng = np.random.default_rng(seed)
    rows, cols = plate_shape
    channels = ("DAPI", "GFP & <b>co</b>")
    fields = max(1, math.ceil(n_images / (rows * cols)))
    images: list[ImageQCRecord] = []
    for i in range(n_images):
        well_index, field = divmod(i, fields)
        row, column = divmod(well_index % (rows * cols), cols)
        plate = "P1" if well_index < rows * cols else f"P{1 + well_index // (rows * cols)}"
        well = f"{'ABCDEFGHIJKLMNOP'[row]}{column + 1:02d}"
        name = f"{plate}_{well}_s{field}"
        status, flags, bad0, bad1 = "pass", (), "", ""
        if i % 17 == 3:
            status, bad0 = "fail", "saturated"
            flags = (
                QCFlag(
                    "saturation_pct_at_max",
                    "fail",
                    "limit",
                    2.5,
                    1.0,
                    channel="DAPI",
                    channel_index=0,
                ),
                QCFlag("snr", "fail", "limit", 3.0, 5.0, channel="DAPI", channel_index=0),
            )
        elif i % 11 == 5:
            status, bad1 = "warn", "blur"
            flags = (
                QCFlag(
                    "focus_plls",
                    "warn",
                    "outlier",
                    -3.4,
                    zscore=-5.1,
                    median=-1.8,
                    peers=48,
                    channel=channels[1],
                    channel_index=1,
                ),
            )
        elif well_index == 7:
            bad1 = "nan"  # GFP undefined in every field of B02
        if i == 1:
            name = EVIL
            status = "fail"
            flags = (*flags, QCFlag.note(f"ch DAPI: something about {EVIL}"))
        reasons = tuple(f.message for f in flags)
        if i % 17 == 3:
            assert reasons == (
                "ch DAPI: saturation_pct_at_max = 2.5 % is above the fail limit 1 %: "
                "saturated (clipped at the image maximum)",
                "ch DAPI: snr = 3 is below the fail limit 5: low signal-to-noise ratio",
            )
        elif i % 11 == 5:
            assert reasons == (
                "ch GFP & <b>co</b>: focus_plls = -3.4 is an outlier below its group: robust "
                "z = -5.1 (median -1.8 of 48 images): blurrier than its peers",
            )
        images.append(
            ImageQCRecord(
                id=f"img-{i:05d}",
                name=name,
                plate=plate,
                well=well,
                row=row,
                column=column,
                field=field,
                channels=channels,
                status=status,
                flags=flags,
                metrics={0: _metrics(rng, bad=bad0), 1: _metrics(rng, bad=bad1)},
                thumbnails=(_thumb(rng), _thumb(rng)),
            )
        )
    yy, xx = np.mgrid[:300, :400]
    flat = (1.2 - 0.5 * (((yy - 150) / 150) ** 2 + ((xx - 200) / 200) ** 2) / 2).astype(np.float32)
    flat /= flat.mean()
    profiles = [
        ProfileRecord("P1", 0, "DAPI", n_images, flat, None, "profiles/P1/c0.zarr"),
        ProfileRecord(
            "P1", 1, channels[1], n_images, flat[::-1].copy(), np.full((300, 400), 100, np.float32)
        ),
    ]
    return QCReportData(
        root=Path("/data/repo <lab> & co"),
        images=images,
        metrics=_metric_descriptions(),
        profiles=profiles,
        created=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


# ----------------------------------------------------------------------------------------------
# HTML checks


class _Structure(HTMLParser):
    """Checks that tags nest and close, and collects the attributes of some elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        (self.script_text if self.stack and self.stack[-1] == "script" else self.text).append(data)


def parse(text: str) -> _Structure:
    parser = _Structure()
    parser.feed(text)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def elements(parser: _Structure, tag: str, cls: str | None = None):
    return [
        attrs
        for t, attrs in parser.elements
        if t == tag and (cls is None or cls in (attrs.get("class") or "").split())
    ]


@pytest.fixture(scope="module")
def data() -> QCReportData:
    return make_data()


@pytest.fixture(scope="module")
def page(data, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("report") / "qc.html"
    write_report(path, data)
    return path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# tests


def test_writes_one_file_atomically(data, tmp_path):
    path = tmp_path / "qc.html"
    path.write_text("old")
    write_report(path, data)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["qc.html"]  # no temporary file left
    fresh = tmp_path / "new.html"
    write_report(fresh, data)
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any new file


def test_failed_write_leaves_old_file_and_no_temp(data, tmp_path, monkeypatch):
    import quantscope._files as report  # the report is written by its atomic_write

    path = tmp_path / "qc.html"
    path.write_text("old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_report(path, data)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["qc.html"]


def test_bad_path(data, tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        write_report(tmp_path / "missing" / "qc.html", data)
    with pytest.raises(InvalidInput, match="is a folder"):
        write_report(tmp_path, data)


def test_page_is_balanced_html(page):
    parser = parse(page)
    assert elements(parser, "html") and elements(parser, "body")
    assert any("Quality control" in t for t in parser.text)


def test_self_contained(page):
    # no external references: no URL at all (inline SVG needs no xmlns in HTML)
    stripped = re.sub(r"xmlns(:\w+)?=(['\"])[^'\"]*\2", "", page)
    assert "http://" not in stripped and "https://" not in stripped
    parser = parse(page)
    for tag, attr in (("img", "src"), ("script", "src"), ("link", "href"), ("image", "href")):
        for attrs in elements(parser, tag):
            value = attrs.get(attr)
            assert value is None or value.startswith("data:"), (tag, value)
    assert "@import" not in page and "url(http" not in page


def test_header_counts(page, data):
    parser = parse(page)
    counts = {(a.get("class") or "").split()[1] for a in elements(parser, "div", "count")}
    assert counts == {"st-pass", "st-warn", "st-fail"}
    n_fail = sum(r.status == "fail" for r in data.images)
    n_warn = sum(r.status == "warn" for r in data.images)
    assert f"<b>{n_fail}</b><span>fail" in page
    assert f"<b>{n_warn}</b><span>warn" in page
    assert "2025-01-02" in page
    assert "/data/repo &lt;lab&gt; &amp; co" in page
    # per-channel summary
    assert elements(parser, "table", "summary")


def test_one_heatmap_per_plate_metric_channel(page, data):
    parser = parse(page)
    maps = {
        (a["data-plate"], a["data-metric"], a["data-channel"])
        for a in elements(parser, "svg", "heatmap")
    }
    present = {m for r in data.images for v in r.metrics.values() for m in v}
    expected_metrics = [m for m in KEY_METRICS if m in present]
    assert expected_metrics == list(KEY_METRICS)
    expected = {
        (p, m, c)
        for p in {r.plate for r in data.images}
        for m in expected_metrics
        for c in data.images[0].channels
    }
    assert maps == expected
    assert len(elements(parser, "svg", "heatmap")) == len(expected)
    # 4 x 6 plate: 24 wells drawn in each heatmap, failed wells outlined red
    wells = elements(parser, "rect", "well")
    assert len(wells) == 24 * len(expected)
    failed = {r.well for r in data.images if r.status == "fail"}
    assert failed
    red = {a["data-q"].split()[-1] for a in wells if a.get("stroke") == "#cf222e"}
    assert red == failed


def test_heatmap_tooltips_and_nan(page):
    # a tooltip gives the well, the value and the status; NaN wells are grey
    assert re.search(r"<title>A01: focus_plls \(DAPI\) = -?\d", page)
    assert "fail</title>" in page
    assert re.search(r"fill='#d0d7de'[^>]*><title>B02: focus_plls \(GFP", page)  # NaN: grey


def test_histograms(page, data):
    parser = parse(page)
    hists = elements(parser, "svg", "histogram")
    assert len(hists) == len(KEY_METRICS) * 2
    # the saturation fail limit (1 %) lies within the DAPI values: drawn as a dashed line
    assert "fail limit 1</title>" in page


def test_worst_images_fail_first_with_reasons(page, data):
    parser = parse(page)
    cards = elements(parser, "article", "thumbcard")
    statuses = [c["data-status"] for c in cards]
    n_fail = sum(r.status == "fail" for r in data.images)
    n_warn = sum(r.status == "warn" for r in data.images)
    assert len(cards) == min(WORST_N, n_fail + n_warn)
    assert statuses == sorted(statuses)  # "fail" < "warn": failed first
    assert statuses[: min(n_fail, WORST_N)] == ["fail"] * min(n_fail, WORST_N)
    worst = page[page.index("id='worst'") : page.index("id='profiles'")]
    # the failed image with the most reasons comes first
    first = max((r for r in data.images if r.status == "fail"), key=lambda r: len(r.reasons))
    assert len(first.reasons) == 2
    assert worst.index(first.id) < min(
        worst.index(r.id) for r in data.images if r.status in ("fail", "warn") and r is not first
    )
    assert "is above the fail limit 1 %: saturated (clipped at the image maximum)" in worst
    # composite + one image per channel
    assert worst.count("<img ") == len(cards) * 3


def test_data_names_are_escaped(page):
    assert EVIL not in page
    assert "&lt;script&gt;alert(&#x27;x &amp; &quot;y&quot;&#x27;)&lt;/script&gt;" in page
    assert page.count("<script") == 1  # the page's own sorting script only
    assert "GFP &amp; &lt;b&gt;co&lt;/b&gt;" in page
    assert "<b>co</b>" not in page
    parser = parse(page)
    assert any(EVIL in t for t in parser.text)  # ... and reads back as the original text
    assert all("alert" not in t for t in parser.script_text)


def test_data_uris_are_png(page):
    uris = DATA_PNG.findall(page)
    # 2 flat fields + 1 dark field + worst images (composite + 2 channels)
    assert len(uris) >= 3
    for uri in uris:
        image = PILImage.open(io.BytesIO(base64.b64decode(uri, validate=True)))
        image.verify()
        assert image.format == "PNG"
        assert max(image.size) <= 192


def test_profiles(page):
    section = page[page.index("id='profiles'") : page.index("id='images'")]
    assert section.count("<article class='profile'>") == 2
    assert "flat: min" in section and "dark field" in section
    assert "profiles/P1/c0.zarr" in section


def test_table_has_every_image_and_sort_hooks(page, data):
    parser = parse(page)
    table = elements(parser, "table")
    assert any(a.get("id") == "image-table" for a in table)
    rows = [a for a in elements(parser, "tr") if (a.get("class") or "").startswith("st-")]
    assert len(rows) == len(data.images)
    heads = [a for a in elements(parser, "th") if "data-type" in a]
    assert len(heads) == 7 + len(KEY_METRICS) * 2
    assert elements(parser, "input") and elements(parser, "select")
    # NaN values sort last (empty key) and show a dash
    assert "data-v=''>–</td>" in page


@pytest.mark.filterwarnings("error")
def test_odd_records_loose_unchecked_infinite_no_thumbnails():
    data = make_data(12)
    records = list(data.images)
    records[0] = ImageQCRecord(
        id="loose",
        name="loose.tif",
        plate=None,
        well=None,
        row=None,
        column=None,
        field=None,
        channels=("DAPI",),
        status=None,
        flags=(),
        metrics={0: {"snr": 12.0}},
        thumbnails=(),
    )
    records[3] = ImageQCRecord(
        **{**records[3].__dict__, "thumbnails": (), "status": "fail", "flags": (QCFlag.note("x"),)}
    )
    records[4] = ImageQCRecord(
        **{
            **records[4].__dict__,
            "metrics": {
                0: {
                    "snr": math.inf,
                    "focus_plls": -math.inf,
                    "background_median": np.float32(123.5),
                }
            },
        }
    )
    constant = [ImageQCRecord(**{**r.__dict__, "metrics": {0: {"snr": 7.0}}}) for r in records[5:]]
    flat = np.ones((50, 700), np.float32)
    flat[:, :350] = np.nan
    profiles = [
        ProfileRecord("P1", 0, "DAPI", 3, flat, None),
        ProfileRecord("P1", 1, "GFP", 3, np.full((1, 1), np.nan, np.float32), None),
        ProfileRecord("P1", 1, "GFP", 3, np.zeros((0, 0), np.float32), None),
    ]
    data = QCReportData(data.root, records[:5] + constant, data.metrics, profiles, data.created)
    page = render_report(data)
    parse(page)
    for uri in DATA_PNG.findall(page):
        PILImage.open(io.BytesIO(base64.b64decode(uri))).verify()
    assert "∞" in page
    assert "data-v='123.5'>123.5</td>" in page  # numpy scalars are numbers too
    assert "not checked" in page
    assert "1 image not on a plate is not shown" in page
    assert "no preview" in page
    assert "no flat field" in page
    page = render_report(QCReportData(data.root, records[:2], data.metrics, [], data.created))
    assert "No illumination profile" in page


def test_empty_repository(tmp_path):
    data = QCReportData(root=tmp_path / "empty", images=[], metrics=_metric_descriptions())
    path = tmp_path / "qc.html"
    write_report(path, data)
    page = path.read_text(encoding="utf-8")
    parser = parse(page)
    assert "Nothing to report" in page
    assert not elements(parser, "svg")
    assert "<b>0</b>" in page


def test_thousand_images_fast_and_small(tmp_path):
    data = make_data(1000, plate_shape=(16, 24), seed=1)
    path = tmp_path / "qc.html"
    start = time.perf_counter()
    write_report(path, data)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    print(f"1000-image report: {seconds:.2f} s, {size / 1e6:.2f} MB")
    assert seconds < 20  # ~1 s on a laptop; the goal is < 5 s
    assert size < 20e6
    page = path.read_text(encoding="utf-8")
    parse(page)
    assert page.count("<article class='thumbcard'") == WORST_N
    assert page.count("<tr class='st-") == 1000


# ----------------------------------------------------------------------------------------------
# the table's script, run by node against a minimal stand-in of the DOM (no browser here)

_FAKE_DOM = r"""
const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));
function el() {
  return {attrs: {}, handlers: {}, style: {}, dataset: {},
    getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; },
    setAttribute(k, v) { this.attrs[k] = String(v); },
    removeAttribute(k) { delete this.attrs[k]; },
    hasAttribute(k) { return k in this.attrs; },
    addEventListener(e, f) { this.handlers[e] = f; }};
}
const body = el();
body.rows = data.rows.map(r => {
  const tr = el();
  tr.classList = {contains: c => r.cls.split(' ').includes(c)};
  tr.cells = r.cells.map(c => {
    const td = el(); td.textContent = c.t; if (c.v !== null) td.attrs['data-v'] = c.v; return td;
  });
  tr.textContent = r.cells.map(c => c.t).join('');
  return tr;
});
body.appendChild = frag => { body.rows = frag.children.slice(); };
const heads = data.heads.map(t => { const th = el(); th.dataset.type = t; return th; });
const table = el(); table.tBodies = [body]; table.tHead = {rows: [{cells: heads}]};
const input = el(), sel = el(), shown = el();
input.value = ''; sel.value = '';
global.document = {
  getElementById(id) {
    return {'image-table': table, filter: input, 'status-filter': sel, shown: shown,
            images: el()}[id] || null;
  },
  createDocumentFragment() { return {children: [], appendChild(x) { this.children.push(x); }}; },
  querySelectorAll() { return []; },
};
eval(data.script);
const ids = () => body.rows.map(r => r.cells[0].textContent);
const visible = () => body.rows.filter(r => r.style.display !== 'none').length;
const out = {};
for (const [name, col] of Object.entries(data.sort)) {
  heads[col].handlers.click(); out[name + '_asc'] = ids();
  heads[col].handlers.click(); out[name + '_desc'] = ids();
}
input.value = data.query; input.handlers.input();
out.query_visible = visible(); out.shown = shown.textContent;
input.value = ''; sel.value = 'fail'; sel.handlers.change(); out.fail_visible = visible();
sel.value = 'fail warn'; sel.handlers.change(); out.bad_visible = visible();
console.log(JSON.stringify(out));
"""


class _Table(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.heads: list[str] = []
        self.rows: list[dict] = []
        self.cell: dict | None = None
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "th" and "data-type" in a:
            self.heads.append(a["data-type"])
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append({"cls": a.get("class") or "", "cells": []})
        elif tag == "td" and self.in_body:
            self.cell = {"t": "", "v": a.get("data-v")}
            self.rows[-1]["cells"].append(self.cell)

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif tag == "tbody":
            self.in_body = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["t"] += data


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_table_script_sorts_and_filters(page, data):
    table = _Table()
    table.feed(page[page.index("id='image-table'") - 7 :])
    script = page[page.index("<script>") + 8 : page.index("</script>")]
    snr_col = 7 + KEY_METRICS.index("snr") * 2 + 1  # snr of the second channel (has NaNs)
    request = {
        "script": script,
        "heads": table.heads,
        "rows": table.rows,
        "sort": {"snr": snr_col, "name": 1, "status": 5},
        "query": "P1 A01",
    }
    done = subprocess.run(
        ["node", "-e", _FAKE_DOM],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(done.stdout)
    snr = {r.id: r.metrics[1]["snr"] for r in data.images}
    finite = sorted((v, k) for k, v in snr.items() if math.isfinite(v))
    nan = [k for k, v in snr.items() if not math.isfinite(v)]
    assert nan
    assert out["snr_asc"][: len(finite)] == [k for _, k in finite]
    assert set(out["snr_asc"][len(finite) :]) == set(nan)  # undefined values last ...
    assert out["snr_desc"][: len(finite)] == [k for _, k in reversed(finite)]
    assert set(out["snr_desc"][len(finite) :]) == set(nan)  # ... in both directions
    names = {r.id: r.name for r in data.images}
    assert names[out["name_asc"][0]] == EVIL  # "<" sorts before letters
    statuses = {r.id: r.status for r in data.images}
    assert [statuses[i] for i in out["status_asc"]] == sorted(
        statuses.values(), key=["fail", "warn", "pass"].index
    )
    in_a01 = sum(r.well == "A01" and r.plate == "P1" for r in data.images)
    assert out["query_visible"] == in_a01
    assert out["shown"] == f"{in_a01} of {len(data.images)} images"
    assert out["fail_visible"] == sum(r.status == "fail" for r in data.images)
    assert out["bad_visible"] == sum(r.status in ("fail", "warn") for r in data.images)


def test_colour_bar_labels_of_a_narrow_plate_fit_in_the_heatmap() -> None:
    """A plate of one column is narrower than the two colour-bar labels side by side: the SVG
    grows so that neither label is clipped (at a generous 6.5 px per character of the 10 px
    font), and the labels do not overlap."""
    import re

    from quantscope.qc._data import ImageQCRecord
    from quantscope.qc._report_plots import _heatmap_svg

    def rec(r: int) -> ImageQCRecord:
        return ImageQCRecord(
            f"i{r}", f"n{r}", "P", f"{'AB'[r]}01", r, 0, 1, ("DAPI",), "pass", (), {}
        )

    means = {(0, 0): 1.234567e-05, (1, 0): 9.87654e-03}
    svg = _heatmap_svg(
        "P",
        "focus_laplacian_var",
        "DAPI",
        2,
        1,
        means,
        {k: "pass" for k in means},
        {(r, 0): [rec(r)] for r in range(2)},
    )
    width = float(re.search(r"<svg[^>]* width='([\d.]+)'", svg).group(1))
    labels = re.findall(
        r"<text x='([\d.]+)' y='[\d.]+' class='lbl' text-anchor='(start|end)' "
        r"font-size='10'>([^<]+)</text>",
        svg,
    )
    (x0, a0, t0), (x1, a1, t1) = labels[-2:]  # the colour bar's (after the row names)
    assert (a0, a1) == ("start", "end")
    start_end = float(x0) + 6.5 * len(t0)
    end_start = float(x1) - 6.5 * len(t1)
    assert start_end <= width and float(x1) <= width, (svg, width)
    assert start_end <= end_start + 1, (t0, t1)  # no overlap
