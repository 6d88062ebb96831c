"""Frozen data models describing an image and where it came from. No I/O here."""

from __future__ import annotations

import re
import string
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Acquisition",
    "Channel",
    "Image",
    "Instrument",
    "Objective",
    "PlatePosition",
    "SourceFile",
    "parse_well",
    "well_name",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$", re.ASCII)
_MAX_ROWS = 26 + 26 * 26  # "A".."Z", then "AA".."ZZ"
_MAX_COLUMNS = 999


def _row_letters(row: int) -> str:
    letters = string.ascii_uppercase
    return letters[row] if row < 26 else letters[row // 26 - 1] + letters[row % 26]


def well_name(row: int, column: int) -> str:
    """Name of a well from 0-based row and column, e.g. ``(0, 1) -> "A02"``.

    Raises
    ------
    ValueError
        If ``row`` is not in ``0..701`` ("A".."ZZ") or ``column`` not in ``0..998``.
    """
    if not 0 <= row < _MAX_ROWS or not 0 <= column < _MAX_COLUMNS:
        raise ValueError(
            f"no well name for row {row}, column {column} (0-based): rows run from 0 to "
            f"{_MAX_ROWS - 1} ('A'..'ZZ'), columns from 0 to {_MAX_COLUMNS - 1}"
        )
    return f"{_row_letters(row)}{column + 1:02d}"


def parse_well(name: str) -> tuple[int, int]:
    """0-based (row, column) of a well name such as ``"A02"``, ``"b7"`` or ``"AA12"``.

    Raises
    ------
    ValueError
        If ``name`` is not a well name.
    """
    m = _WELL_RE.match(name)
    if not m or int(m.group(2)) < 1:
        raise ValueError(
            f"{name!r} is not a well name (expected a row letter and a column number, e.g. 'A01')"
        )
    letters = m.group(1).upper()
    row = ord(letters[-1]) - 65
    if len(letters) == 2:
        row += 26 * (ord(letters[0]) - 64)
    return row, int(m.group(2)) - 1


class Channel(BaseModel):
    """One channel of an image. Wavelengths in nm, exposure in s, color as ``RRGGBB``."""

    model_config = _FROZEN
    index: int = Field(ge=0)
    name: str
    color: str | None = None
    excitation_wavelength_nm: float | None = None
    emission_wavelength_nm: float | None = None
    exposure_time_s: float | None = None
    fluor: str | None = None

    @field_validator("color")
    @classmethod
    def _hex_color(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9A-Fa-f]{6}", v):
            raise ValueError(f"color {v!r} is not RRGGBB hex")
        return v.upper() if v else v


class Objective(BaseModel):
    """Objective lens: nominal magnification, lens numerical aperture, immersion medium."""

    model_config = _FROZEN
    manufacturer: str | None = None
    model: str | None = None
    nominal_magnification: float | None = None
    lens_na: float | None = None
    immersion: str | None = None


class Instrument(BaseModel):
    """Microscope stand."""

    model_config = _FROZEN
    manufacturer: str | None = None
    model: str | None = None
    microscope_type: str | None = None


class Acquisition(BaseModel):
    """How and when the pixels were acquired. Time increment in s."""

    model_config = _FROZEN
    acquired_at: datetime | None = None
    instrument: Instrument | None = None
    objective: Objective | None = None
    time_increment_s: float | None = None


class PlatePosition(BaseModel):
    """Where an image sits on a multi-well plate (0-based row, column and field)."""

    model_config = _FROZEN
    plate: str = Field(min_length=1)
    row: int = Field(ge=0)
    column: int = Field(ge=0)
    field: int = Field(default=0, ge=0)

    @property
    def well(self) -> str:
        return well_name(self.row, self.column)

    @property
    def row_name(self) -> str:
        return _row_letters(self.row)

    @property
    def column_name(self) -> str:
        return f"{self.column + 1:02d}"


class SourceFile(BaseModel):
    """A file an image was read from. Size in bytes, SHA-256 of its whole content."""

    model_config = _FROZEN
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reader: str
    scene: int = 0
    channel_offset: int = 0


class Image(BaseModel):
    """One image in a repository: an n-dimensional array stored as one OME-Zarr multiscale.

    ``shape`` is always in ``(t, c, z, y, x)`` order. Physical sizes are in µm.
    """

    model_config = _FROZEN
    id: str
    name: str
    shape: tuple[int, int, int, int, int]
    dtype: str
    physical_size_x_um: float | None = None
    physical_size_y_um: float | None = None
    physical_size_z_um: float | None = None
    channels: tuple[Channel, ...] = ()
    acquisition: Acquisition = Acquisition()
    position: PlatePosition | None = None
    sources: tuple[SourceFile, ...] = ()
    store_path: str = ""
    levels: int = 1
    bytes_stored: int = 0
    created_at: datetime | None = None

    @property
    def dims(self) -> str:
        return "TCZYX"
