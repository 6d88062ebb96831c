"""Plate, well, field and channel from file names: ImageXpress names or a user pattern."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field

from ..errors import InvalidInput
from ..model import parse_well

__all__ = ["NamePattern", "ParsedName"]

# ImageXpress: <plate>_<well>_s<site>[_w<wavelength>][<GUID>].<ext>, e.g. BBBC039's
# IXMtest_A02_s1_w1051DAA7C-7042-435F-99F0-1E847D9B42CB.tif
_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_IXM = re.compile(
    r"^(?P<plate>.+?)_(?P<well>[A-Za-z]{1,2}\d{1,3})_s(?P<field>\d+)"
    rf"(?:_w(?P<channel>\d))?(?:{_GUID})?"
    r"(?:\.[A-Za-z0-9.]+)?$"
)
# A {channel} that ends the pattern has no literal text after it to stop its lazy match, so it
# would capture one character ("wDAPI" -> "D", "w10" -> "1"). It must run to the end of the
# alphanumeric token instead, leaving out a trailing ImageXpress GUID ("w1<GUID>" -> "1").
_TRAILING_CHANNEL = rf"(?P<channel>[A-Za-z0-9]+?)(?=(?:{_GUID})?(?:[^A-Za-z0-9]|$))"

_PLACEHOLDERS = {
    "plate": r"(?P<plate>.+?)",
    "well": r"(?P<well>[A-Za-z]{1,2}\d{1,3})",
    "row": r"(?P<row>[A-Za-z]{1,2})",
    "column": r"(?P<column>\d{1,3})",
    "field": r"(?P<field>\d+)",
    "field0": r"(?P<field0>\d+)",
    "channel": r"(?P<channel>[A-Za-z0-9]+?)",
    "any": r".*?",
}


@dataclass(frozen=True)
class ParsedName:
    """Plate position from a file name: 0-based row and column, 1-based field; channel token.

    ``row`` and ``column`` are None for a pattern without a well (sites of a slide, whose
    channel files are merged without a plate). ``channel_name`` is the token with the letters
    that precede it in the pattern when it is a number (``d0`` for ``…d{channel}``, ``w1``
    for ImageXpress; ``DAPI`` stays ``DAPI``);
    ``site_key`` is the file name without its channel token: files sharing it are one site.
    """

    plate: str
    row: int | None
    column: int | None
    field: int
    channel: str | None
    channel_name: str | None = dc_field(default=None, compare=False)
    site_key: str = dc_field(default="", compare=False)

    @property
    def on_plate(self) -> bool:
        return self.row is not None and self.column is not None


class NamePattern:
    """A file-name pattern such as ``"{plate}_{well}_s{field}_w{channel}"``.

    Placeholders: ``{plate}``, ``{well}`` (``A01``), or ``{row}`` (``A``) with ``{column}``
    (``1``), ``{field}`` (1-based site number, as ImageXpress writes it) or ``{field0}``
    (0-based; stored as site ``field0 + 1``), ``{channel}`` and ``{any}``. The pattern matches
    from the start of the file name; text after the last placeholder (a GUID, the extension) is
    allowed. ``None`` selects the ImageXpress convention. A pattern without a well but with
    ``{channel}`` merges the channel files of each site of a slide into one image (files that
    differ only in their channel token), without a plate position.
    """

    def __init__(self, pattern: str | None = None) -> None:
        self.pattern = pattern
        self.channel_prefix = "w"  # ImageXpress: _w1
        if pattern is None:
            self.regex = _IXM
            return
        parts = [part for part in re.split(r"(\{[^{}]*\})", pattern) if part]
        out = []
        seen = set()
        for i, part in enumerate(parts):
            if part.startswith("{") and part.endswith("}"):
                key = part[1:-1]
                if key not in _PLACEHOLDERS:
                    raise InvalidInput(
                        f"pattern {pattern!r}: unknown placeholder {part}; "
                        f"use {', '.join('{' + k + '}' for k in _PLACEHOLDERS)}"
                    )
                if key in seen and key != "any":
                    raise InvalidInput(f"pattern {pattern!r}: placeholder {part} appears twice")
                seen.add(key)
                if key == "channel":  # the letters just before {channel} name the channel
                    before = parts[i - 1] if i and not parts[i - 1].startswith("{") else ""
                    self.channel_prefix = re.search(r"[A-Za-z]*$", before).group()  # type: ignore[union-attr]
                last = i == len(parts) - 1
                out.append(_TRAILING_CHANNEL if key == "channel" and last else _PLACEHOLDERS[key])
            elif "{" in part or "}" in part:
                raise InvalidInput(f"pattern {pattern!r}: unbalanced braces in {part!r}")
            else:
                out.append(re.escape(part))
        if {"row", "column"} & seen and not {"row", "column"} <= seen:
            raise InvalidInput(
                f"pattern {pattern!r}: needs {{well}} or both {{row}} and {{column}}"
            )
        if not ({"well"} <= seen or {"row", "column"} <= seen or "channel" in seen):
            raise InvalidInput(
                f"pattern {pattern!r}: needs {{well}} or both {{row}} and {{column}} to place "
                "images on a plate, or {channel} to merge the channel files of each site"
            )
        if "field" in seen and "field0" in seen:
            raise InvalidInput(f"pattern {pattern!r}: use either {{field}} or {{field0}}, not both")
        self.regex = re.compile("^" + "".join(out))

    def _channel_name(self, token: str) -> str:
        """A numeric token keeps the letters before it (``d0``, ``w1``); a name stays as is."""
        return self.channel_prefix + token if token.isdigit() else token

    def parse(self, filename: str) -> ParsedName | None:
        """Position encoded in ``filename``, or None when the name does not match."""
        m = self.regex.match(filename)
        if not m:
            return None
        g = m.groupdict()
        row: int | None = None
        column: int | None = None
        try:
            if g.get("well"):
                row, column = parse_well(g["well"])
            elif g.get("row") is not None:
                row, _ = parse_well(g["row"] + "1")
                column = int(g["column"]) - 1
        except ValueError:
            return None
        if column is not None and column < 0:
            return None
        if g.get("field0") is not None:
            field = int(g["field0"]) + 1
        elif g.get("field") is not None:
            field = int(g["field"])
            if field < 1:
                raise InvalidInput(
                    f"{filename}: site number 0 in a pattern with {{field}} (1-based); "
                    "use {field0} for 0-based site numbers"
                )
        else:
            field = 1
        token = g.get("channel")
        site_key = filename
        if token is not None:
            site_key = filename[: m.start("channel")] + "\0" + filename[m.end("channel") :]
        return ParsedName(
            g.get("plate") or "plate",
            row,
            column,
            field,
            token,
            channel_name=None if token is None else self._channel_name(token),
            site_key=site_key,
        )
