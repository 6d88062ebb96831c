"""The HTML toolkit (``quantscope._html``) that the QC report, the leaderboard and the server's
pages share: escaping, number formats, colours, data URIs, well names and the templates."""

from __future__ import annotations

import base64
import doctest
import fnmatch
import html
import io
import math
import tomllib
from pathlib import Path

import jinja2
import numpy as np
import pytest
from PIL import Image as PILImage

import quantscope._html as toolkit
from quantscope._html import (
    VIRIDIS,
    Markup,
    as_float,
    breakable,
    environment,
    escape,
    fmt_fixed,
    fmt_sig,
    inline,
    png_data_uri,
    render,
    row_name,
    score_hex,
    sortkey,
    svg_data_uri,
    viridis_hex,
    viridis_rgb,
    well_name,
)
from quantscope.errors import NotFound

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>alert('x & \"y\"')</script>"


def test_docstring_examples() -> None:
    result = doctest.testmod(toolkit)
    assert result.attempted >= 9 and result.failed == 0


def test_escape_is_html_escape_with_quotes() -> None:
    assert escape(EVIL) == html.escape(EVIL, quote=True)
    assert escape(EVIL) == "&lt;script&gt;alert(&#x27;x &amp; &quot;y&quot;&#x27;)&lt;/script&gt;"
    assert escape(3) == "3" and escape(None) == "None"
    assert str(breakable("my_tool/v1.2")) == "my_<wbr>tool/<wbr>v1.<wbr>2"
    assert str(breakable("camelCase<x>")) == "camel<wbr>Case&lt;x&gt;"


def test_number_formats() -> None:
    assert [fmt_sig(v) for v in (0.0, 1.23456, 12345.6, 2.5e-4, -math.inf, "x", True)] == [
        "0",
        "1.235",
        "1.235e+04",
        "0.00025",
        "−∞",
        "–",
        "–",
    ]
    assert fmt_sig(np.float32(123.5)) == "123.5" and as_float(np.int64(3)) == 3.0
    assert fmt_fixed(0.5) == "0.500" and fmt_fixed(math.nan) == "–" and fmt_fixed(1, 0) == "1"
    assert sortkey(1 / 3) == "0.333333333" and sortkey(math.nan) == sortkey(math.inf) == ""


def test_colours() -> None:
    assert viridis_hex(0.0) == VIRIDIS[0] and viridis_hex(1.0) == VIRIDIS[-1]
    assert viridis_hex(0.5) == VIRIDIS[5]
    assert viridis_hex(-3.0) == VIRIDIS[0] and viridis_hex(math.nan) == VIRIDIS[0]
    rgb = viridis_rgb(np.linspace(0, 1, 12).reshape(3, 4))
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    # a ramp: the green channel of viridis only grows
    assert np.all(np.diff(viridis_rgb(np.linspace(0, 1, 50))[:, 1].astype(int)) >= 0)
    assert score_hex(0.5) == "#e6c878" and score_hex(2.0) == score_hex(1.0)


def test_png_and_svg_data_uris() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = np.zeros((2, 5, 3), np.uint8)
    rgb[..., 0] = 200
    for array in (grey, rgb):
        uri = png_data_uri(array)
        assert uri.startswith("data:image/png;base64,")
        image = PILImage.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert image.format == "PNG"
        assert np.array_equal(np.asarray(image), array)
    svg = "<svg width='4' height='4'><rect width='4' height='4'/></svg>"
    uri = svg_data_uri(svg)
    assert uri.startswith("data:image/svg+xml;base64,")
    text = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert text.startswith("<svg xmlns='http://www.w3.org/2000/svg' width='4'")
    assert text.endswith("</svg>")
    assert svg_data_uri(text) == uri  # an xmlns is not added twice


def test_well_names() -> None:
    assert [well_name(0, 0), well_name(7, 11), well_name(31, 47)] == ["A01", "H12", "AF48"]
    assert [row_name(r) for r in (0, 25, 26, 27, 31)] == ["A", "Z", "AA", "AB", "AF"]


def test_templates_escape_every_value_like_escape() -> None:
    env = environment()
    tpl = env.from_string("<p title='{{ x }}'>{{ x }} {{ n }} {{ safe }} {{ x|e }}</p>")
    out = tpl.render(x=EVIL, n=2, safe=Markup("<b>ok</b>"))
    e = escape(EVIL)
    assert out == f"<p title='{e}'>{e} 2 <b>ok</b> {e}</p>"
    assert EVIL not in out


def test_templates_refuse_undefined_names() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ d.missing }}").render(d={})


def test_template_layout_lines_are_joined() -> None:
    """Line breaks beside markup vanish; between words or printed values they are a space."""
    source = (
        "<ul>\n  {% for i in items %}\n    <li>{{ i }}</li>\n  {% endfor %}\n</ul>\n"
        "<p>two words\n  wrap {{ 1 }}\n  {{ 2 }} here, and a space <b>before</b>\n"
        "  a tag{{ nl }}</p>\n"
    )
    out = environment().from_string(source).render(items=[1, 2])
    assert out == (
        "<ul><li>1</li><li>2</li></ul>"
        "<p>two words wrap 1 2 here, and a space <b>before</b>a tag\n</p>"
    )


def test_unknown_template_or_static_file() -> None:
    with pytest.raises(NotFound, match=r"no_such\.html\.j2"):
        render("no_such.html.j2")
    with pytest.raises(NotFound, match=r"no_such\.css"):
        inline("no_such.css")


def test_inline_static_files() -> None:
    css = inline("qc_report.css", oneline=True, GRADIENT="#000, #fff")
    assert "\n" not in css and "linear-gradient(to right,#000, #fff)" in css
    js = inline("qc_report.js")
    assert js.startswith("(function(){") and js.endswith("})();")


def test_every_template_and_static_file_is_package_data() -> None:
    """The wheel carries the templates and the CSS / JS (pyproject's package-data globs)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["quantscope"]
    package = ROOT / "src" / "quantscope"
    files = [
        p.relative_to(package).as_posix()
        for p in (package / "_html").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc")
    ]
    assert any(f.endswith(".html.j2") for f in files) and any(f.endswith(".css") for f in files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_every_template_compiles() -> None:
    env = environment()
    names = env.list_templates()
    assert "base.html.j2" in names and "qc_report.html.j2" in names
    assert "leaderboard.html.j2" in names
    for name in names:
        env.get_template(name)


def test_pages_inline_their_css_and_script(tmp_path: Path) -> None:
    """The QC report carries its CSS (with the viridis stops of the colour bar filled in) and
    its script in the page itself."""
    from quantscope.qc._data import QCReportData
    from quantscope.qc._report import render_report

    page = render_report(QCReportData(root=tmp_path, images=[], metrics=[]))
    assert f"linear-gradient(to right,{', '.join(VIRIDIS)})" in page
    assert "GRADIENT" not in page and "<link" not in page
    assert page.startswith("<!DOCTYPE html>\n<html lang='en'>\n") and page.endswith("</html>\n")
