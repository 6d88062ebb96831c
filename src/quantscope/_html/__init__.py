"""The HTML toolkit every page of quantscope shares.

The QC report (:mod:`quantscope.qc`), the leaderboard (:mod:`quantscope.benchmark`) and the web
server's pages use one set of helpers, so that a value looks the same wherever it is shown:

- escaping: :func:`escape` (``html.escape`` with quotes: safe in text and in attributes, the
  attributes of these pages are single-quoted), :func:`breakable` (escaped, with line-break
  opportunities in long names), :func:`clip`;
- numbers: :func:`as_float`, :func:`fmt_sig` (4 significant digits, NaN as an en dash),
  :func:`fmt_fixed` (a fixed number of decimals), :func:`sortkey` (a ``data-v`` value);
- colours: the viridis map (:data:`VIRIDIS`, :func:`viridis_rgb`, :func:`viridis_hex`,
  :func:`viridis_css`), a red-yellow-green score scale (:func:`score_hex`), :data:`NAN_COLOR`;
- images: :func:`png_data_uri`, :func:`svg_data_uri`;
- plate wells: :func:`row_name`, :func:`well_name` (:func:`quantscope.model.well_name`);
- templates: :func:`render` fills a Jinja2 template of ``templates/`` (autoescaping on,
  undefined names are errors). Templates inline the CSS and JavaScript of ``static/`` with
  ``{{ inline("name.css") }}``, so every page stays one file that opens offline.

Templates are written one element per line for their readers: before a template is compiled,
a line break and the indentation after it are removed where they touch markup (the line before
ends with a tag's ``>``, ``%}`` or ``#}``, or the next begins with ``<``, ``{%`` or ``{#``) and
become one space elsewhere, between words or printed values (``{{ ... }}``), so that prose may
wrap. The page comes out as compact as if written on one line; a space between an element and
the text beside it is written on the same line. Where the page needs a line break, the template
writes ``{{ nl }}``.

Every value a template prints goes through :func:`escape` (values marked safe, e.g. an SVG built
with escaped parts and wrapped in :class:`markupsafe.Markup`, are printed as they are).

This module is private and shared: every layer above :mod:`quantscope.model` may import it
(like :mod:`quantscope._text`). numpy, markupsafe and the model are imported at once; Jinja2
when the first page is rendered, PIL when the first PNG is encoded.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from markupsafe import Markup

from .._text import noun, plural
from ..model import well_name

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "NAN_COLOR",
    "VIRIDIS",
    "Markup",
    "as_float",
    "breakable",
    "clip",
    "environment",
    "escape",
    "fmt_fixed",
    "fmt_sig",
    "inline",
    "png_data_uri",
    "render",
    "row_name",
    "score_hex",
    "sortkey",
    "svg_data_uri",
    "viridis_css",
    "viridis_hex",
    "viridis_rgb",
    "well_name",
]

# ----------------------------------------------------------------------------------------------
# text


def escape(value: object) -> str:
    """``value`` as HTML text: ``& < > " '`` escaped (safe in text and in attributes).

    Examples
    --------
    >>> escape("<b>'x' & \\"y\\"</b>")
    '&lt;b&gt;&#x27;x&#x27; &amp; &quot;y&quot;&lt;/b&gt;'
    """
    return html.escape(str(value), quote=True)


_BREAK_AFTER = re.compile(r"([_\-./,=]|[a-z](?=[A-Z]))")


def breakable(value: object) -> Markup:
    """Escaped text with line-break opportunities (``<wbr>``) after ``_ - . / , =`` and inside
    camelCase, so that long method names, paths and parameters wrap there rather than anywhere.

    Examples
    --------
    >>> str(breakable("a_b<c"))
    'a_<wbr>b&lt;c'
    """
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", escape(value)))


def clip(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters, the cut marked with an ellipsis.

    Examples
    --------
    >>> clip("abcdef", 4), clip("abc", 4)
    ('abc…', 'abc')
    """
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------------------------
# numbers


def as_float(value: object) -> float:
    """``value`` as a Python float (numpy scalars included); NaN for anything else (``None``,
    text, booleans)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value)
    return math.nan


def fmt_sig(value: object) -> str:
    """A measured value for people: 4 significant digits (3 in scientific notation below 1e-3
    and from 1e6), NaN or a non-number as an en dash, infinities as ``∞`` / ``−∞``.

    Examples
    --------
    >>> fmt_sig(3.14159), fmt_sig(1234567.0), fmt_sig(float("nan")), fmt_sig(None)
    ('3.142', '1.23e+06', '–', '–')
    """
    number = as_float(value)
    if math.isnan(number):
        return "–"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if number != 0 and (abs(number) >= 1e6 or abs(number) < 1e-3):
        return f"{number:.3g}"
    return f"{number:.4g}"


def fmt_fixed(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; ``None``, NaN and infinities as an en dash.

    Examples
    --------
    >>> fmt_fixed(0.81234), fmt_fixed(None), fmt_fixed(2.5, 1)
    ('0.812', '–', '2.5')
    """
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def sortkey(value: float) -> str:
    """A ``data-v`` attribute value for sorting numbers in a table (9 significant digits;
    empty for NaN and infinities: the pages' scripts sort those last)."""
    return f"{value:.9g}" if math.isfinite(value) else ""


# ----------------------------------------------------------------------------------------------
# colours

#: Viridis (matplotlib) sampled at 0, 0.1, ..., 1; :func:`viridis_rgb` interpolates linearly.
VIRIDIS: tuple[str, ...] = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
)
_VIRIDIS_RGB = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in VIRIDIS], float)

#: The colour of an undefined value (NaN) in a colour-mapped cell.
NAN_COLOR = "#d0d7de"


def viridis_rgb(t: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Viridis RGB (uint8, shape ``t.shape + (3,)``) of values in [0, 1] (clipped; NaN as 0)."""
    x = np.clip(np.nan_to_num(np.asarray(t, float), nan=0.0), 0.0, 1.0) * (len(VIRIDIS) - 1)
    lo = np.minimum(np.floor(x).astype(np.intp), len(VIRIDIS) - 2)
    frac = (x - lo)[..., None]
    rgb = _VIRIDIS_RGB[lo] * (1.0 - frac) + _VIRIDIS_RGB[lo + 1] * frac
    return np.asarray(np.rint(rgb), dtype=np.uint8)


def viridis_hex(t: float) -> str:
    """The viridis colour of ``t`` in [0, 1] as ``#rrggbb``.

    Examples
    --------
    >>> viridis_hex(0.0), viridis_hex(1.0)
    ('#440154', '#fde725')
    """
    r, g, b = (int(v) for v in viridis_rgb(np.array([t]))[0])
    return f"#{r:02x}{g:02x}{b:02x}"


def viridis_css() -> str:
    """The stops of viridis for a CSS ``linear-gradient(to right, ...)``."""
    return ", ".join(VIRIDIS)


def score_hex(t: float) -> str:
    """A score in [0, 1] from red (0) through yellow to green (1) as ``#rrggbb``, for the
    background of table cells; NaN light grey.

    Examples
    --------
    >>> score_hex(0.0), score_hex(1.0), score_hex(float("nan"))
    ('#e65a78', '#5ac878', '#eee')
    """
    if not math.isfinite(t):
        return "#eee"
    t = min(max(t, 0.0), 1.0)
    r = int(230 if t < 0.5 else 230 - (t - 0.5) * 2 * 140)
    g = int(90 + t * 2 * 110 if t < 0.5 else 200)
    return f"#{r:02x}{g:02x}78"


# ----------------------------------------------------------------------------------------------
# images


def png_data_uri(array: npt.NDArray[np.uint8]) -> str:
    """A ``data:image/png;base64,...`` URI of a 2-D (grey) or 3-D (RGB) uint8 array."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def svg_data_uri(svg: str) -> str:
    """A ``data:image/svg+xml;base64,...`` URI of an SVG document (for ``<img src>`` and CSS;
    an ``xmlns`` is added to the root element when it has none, as a standalone SVG needs).

    Examples
    --------
    >>> svg_data_uri("<svg width='1' height='1'/>")[:40]
    'data:image/svg+xml;base64,PHN2ZyB4bWxucz'
    """
    text = svg.strip()
    if text.startswith("<svg") and "xmlns=" not in text.split(">", 1)[0]:
        text = "<svg xmlns='http://www.w3.org/2000/svg'" + text[4:]
    return "data:image/svg+xml;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


# ----------------------------------------------------------------------------------------------
# plate wells


def row_name(row: int) -> str:
    """The letter(s) of a 0-based plate row: ``A`` ... ``Z``, then ``AA``, ``AB`` ... (1536-well
    plates have 32 rows), as in :func:`well_name`.

    Examples
    --------
    >>> row_name(0), row_name(7), row_name(26), row_name(31)
    ('A', 'H', 'AA', 'AF')
    """
    return well_name(row, 0)[:-2]


# ----------------------------------------------------------------------------------------------
# templates

_PACKAGE = "quantscope._html"
_LAYOUT_BREAK = re.compile(r"\n[ \t]*")
_TIGHT_BEFORE = (">", "%}", "#}", " ", "\t", "\n")
_TIGHT_AFTER = ("<", "{%", "{#", "\n")


def _join_lines(source: str) -> str:
    """``source`` without its layout line breaks (see the module's docstring)."""

    def join(match: re.Match[str]) -> str:
        before = source[max(0, match.start() - 2) : match.start()]
        after = source[match.end() : match.end() + 2]
        tight = not before or not after or before.endswith(_TIGHT_BEFORE)
        return "" if tight or after.startswith(_TIGHT_AFTER) else " "

    return _LAYOUT_BREAK.sub(join, source)


@cache
def _static_text(name: str) -> str:
    try:
        return (resources.files(_PACKAGE) / "static" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        from ..errors import NotFound

        raise NotFound(
            f"static file {name!r} is not in quantscope/_html/static/; the installation is "
            "incomplete (reinstall quantscope)"
        ) from None


def inline(name: str, *, oneline: bool = False, **replace: str) -> Markup:
    """The text of ``static/<name>`` (CSS or JavaScript), to be written into a page.

    Parameters
    ----------
    name : str
        The file's name in the toolkit's ``static`` folder.
    oneline : bool
        Remove the line breaks (for CSS whose rules break only where white space is free).
    **replace : str
        Placeholders in the file and their values (``GRADIENT="#440154, ..."``).

    Raises
    ------
    quantscope.errors.NotFound
        If there is no such file.
    """
    text = _static_text(name).strip()
    for key, value in replace.items():
        text = text.replace(key, value)
    if oneline:
        text = text.replace("\n", "")
    return Markup(text)


def _finalize(value: object) -> object:
    """Every printed value: as is when marked safe, else escaped by :func:`escape`."""
    if type(value) is str:  # the most common case first
        return Markup(html.escape(value, quote=True))
    if hasattr(value, "__html__"):
        return value
    return Markup(escape(value))


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the toolkit's templates (built once).

    Autoescaping is on and undefined names raise; printed values are escaped by
    :func:`escape` (the same entities as the Python helpers, ``&#x27;`` for ``'``).
    """
    import jinja2
    from jinja2.ext import Extension

    class _Layout(Extension):
        """Remove the line breaks and indentation that lay the template out for its readers."""

        def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
            return _join_lines(source)

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        extensions=[_Layout],
    )
    env.filters.update(
        e=_finalize,
        escape=_finalize,
        sig=fmt_sig,
        fixed=fmt_fixed,
        sortkey=sortkey,
        breakable=breakable,
        clip=clip,
    )
    env.globals.update(
        inline=inline,
        plural=plural,
        noun=noun,
        viridis_css=viridis_css,
        score_hex=score_hex,
        nl=Markup("\n"),
    )
    return env


def render(template: str, /, **context: Any) -> str:
    """The text of the template ``templates/<template>`` filled with ``context``.

    Parameters
    ----------
    template : str
        The template's name, e.g. ``"qc_report.html.j2"``.
    **context
        The names the template uses (a name it uses but is not given is an error).

    Raises
    ------
    quantscope.errors.NotFound
        If there is no such template.
    """
    import jinja2

    try:
        tpl = environment().get_template(template)
    except jinja2.TemplateNotFound:
        from ..errors import NotFound

        raise NotFound(
            f"template {template!r} is not in quantscope/_html/templates/; the installation "
            "is incomplete (reinstall quantscope)"
        ) from None
    return tpl.render(**context)
