"""Frozen data models describing an image and where it came from. No I/O here."""

from __future__ import annotations

import re
import string
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._vocab import (
    AcquisitionMode,
    Binning,
    ContrastMethod,
    Correction,
    DetectorType,
    FilterType,
    IlluminationType,
    Immersion,
    LightSourceKind,
    Medium,
)

__all__ = [
    "Acquisition",
    "Channel",
    "Detector",
    "Dichroic",
    "Filter",
    "Image",
    "ImagingEnvironment",
    "Instrument",
    "LightSource",
    "Objective",
    "ObjectiveSettings",
    "PlatePosition",
    "SourceFile",
    "StagePosition",
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
    """One channel of an image and how it was acquired.

    Units: wavelengths and pinhole in nm / µm as named, exposure in s, detector voltage in V,
    read-out rate in MHz; ``color`` is ``RRGGBB``; ``light_source_attenuation`` is a fraction
    (0-1). ``light_source_id``, ``detector_id`` and the filter ids refer to components of the
    image's :class:`Instrument`.
    """

    model_config = _FROZEN
    index: int = Field(ge=0)
    name: str
    color: str | None = None
    excitation_wavelength_nm: float | None = Field(default=None, gt=0)
    emission_wavelength_nm: float | None = Field(default=None, gt=0)
    exposure_time_s: float | None = Field(default=None, ge=0)
    fluor: str | None = None
    illumination_type: IlluminationType | None = None
    contrast_method: ContrastMethod | None = None
    acquisition_mode: AcquisitionMode | None = None
    pinhole_size_um: float | None = Field(default=None, ge=0)
    nd_filter: float | None = Field(default=None, ge=0)
    light_source_id: str | None = None
    light_source_wavelength_nm: float | None = Field(default=None, gt=0)
    light_source_attenuation: float | None = Field(default=None, ge=0, le=1)
    detector_id: str | None = None
    detector_gain: float | None = None
    detector_offset: float | None = None
    detector_binning: Binning | None = None
    detector_voltage_v: float | None = None
    detector_read_out_rate_mhz: float | None = Field(default=None, ge=0)
    excitation_filter_ids: tuple[str, ...] = ()
    dichroic_id: str | None = None
    emission_filter_ids: tuple[str, ...] = ()

    @field_validator("color")
    @classmethod
    def _hex_color(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9A-Fa-f]{6}", v):
            raise ValueError(f"color {v!r} is not RRGGBB hex")
        return v.upper() if v else v


class Objective(BaseModel):
    """Objective lens. Working distance in µm; ``lens_na`` is the numerical aperture."""

    model_config = _FROZEN
    id: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    nominal_magnification: float | None = Field(default=None, gt=0)
    calibrated_magnification: float | None = Field(default=None, gt=0)
    lens_na: float | None = Field(default=None, gt=0, le=2)
    immersion: Immersion | None = None
    correction: Correction | None = None
    working_distance_um: float | None = Field(default=None, ge=0)
    iris: bool | None = None


class ObjectiveSettings(BaseModel):
    """How the objective was used: medium in use, its refractive index, correction collar."""

    model_config = _FROZEN
    medium: Medium | None = None
    refractive_index: float | None = Field(default=None, gt=0)
    correction_collar: float | None = None


class LightSource(BaseModel):
    """A light source of the instrument. Power in mW, wavelength (lasers) in nm.

    ``type`` is the OME type of its kind (``Laser@Type`` such as "SolidState", ``Arc@Type``
    such as "Hg", ``Filament@Type`` such as "Halogen").
    """

    model_config = _FROZEN
    id: str
    kind: LightSourceKind
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    power_mw: float | None = None
    type: str | None = None
    wavelength_nm: float | None = Field(default=None, gt=0)
    tuneable: bool | None = None
    pulse: str | None = None


class Filter(BaseModel):
    """An optical filter. Cut-in/cut-out wavelengths in nm, transmittance a fraction (0-1)."""

    model_config = _FROZEN
    id: str
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    type: FilterType | None = None
    filter_wheel: str | None = None
    cut_in_nm: float | None = Field(default=None, gt=0)
    cut_out_nm: float | None = Field(default=None, gt=0)
    transmittance: float | None = Field(default=None, ge=0, le=1)


class Dichroic(BaseModel):
    """A dichroic mirror (OME describes no spectral attributes for it)."""

    model_config = _FROZEN
    id: str
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None


class Detector(BaseModel):
    """A detector of the instrument (its fixed properties; per-channel settings live on
    :class:`Channel`). Voltage in V."""

    model_config = _FROZEN
    id: str
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    type: DetectorType | None = None
    gain: float | None = None
    offset: float | None = None
    voltage_v: float | None = None
    zoom: float | None = None
    amplification_gain: float | None = None


class Instrument(BaseModel):
    """Microscope stand and its light sources, filters, dichroics and detectors.

    ``microscope_type`` is free text (NBO's list of stand types is larger than OME's; OME-XML
    export keeps only OME's Upright, Inverted, Dissection, Electrophysiology and Other).
    """

    model_config = _FROZEN
    manufacturer: str | None = None
    model: str | None = None
    microscope_type: str | None = None
    serial_number: str | None = None
    light_sources: tuple[LightSource, ...] = ()
    filters: tuple[Filter, ...] = ()
    dichroics: tuple[Dichroic, ...] = ()
    detectors: tuple[Detector, ...] = ()

    def detector(self, detector_id: str | None) -> Detector | None:
        """The detector with ``detector_id``, if any."""
        return next((d for d in self.detectors if d.id == detector_id), None)

    def light_source(self, source_id: str | None) -> LightSource | None:
        """The light source with ``source_id``, if any."""
        return next((s for s in self.light_sources if s.id == source_id), None)


class ImagingEnvironment(BaseModel):
    """Conditions during imaging: temperature in °C, air pressure in mbar, humidity and CO2 in
    percent (0-100)."""

    model_config = _FROZEN
    temperature_c: float | None = None
    air_pressure_mbar: float | None = Field(default=None, ge=0)
    humidity_percent: float | None = Field(default=None, ge=0, le=100)
    co2_percent: float | None = Field(default=None, ge=0, le=100)


class StagePosition(BaseModel):
    """Stage position of the first plane of an image, in µm, and the stage label's name."""

    model_config = _FROZEN
    x_um: float | None = None
    y_um: float | None = None
    z_um: float | None = None
    label: str | None = None


class Acquisition(BaseModel):
    """How and when the pixels were acquired. Time increment in s."""

    model_config = _FROZEN
    acquired_at: datetime | None = None
    instrument: Instrument | None = None
    objective: Objective | None = None
    objective_settings: ObjectiveSettings | None = None
    environment: ImagingEnvironment | None = None
    stage: StagePosition | None = None
    time_increment_s: float | None = Field(default=None, ge=0)


class PlatePosition(BaseModel):
    """Where an image sits on a multi-well plate.

    ``row`` and ``column`` are 0-based indices (row 0 is "A", column 0 is "01"); ``field`` is the
    1-based site number within the well, as microscopes and their file names number sites
    (ImageXpress ``_s1``), and as every quantscope output shows it.
    """

    model_config = _FROZEN
    plate: str = Field(min_length=1)
    row: int = Field(ge=0)
    column: int = Field(ge=0)
    field: int = Field(default=1, ge=1)

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
    significant_bits: int | None = Field(default=None, ge=1, le=64)
    description: str | None = None
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
