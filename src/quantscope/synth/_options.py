"""Options of the synthetic plate generator, their validation, and plate/well naming."""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

__all__ = ["DTYPES", "LAYOUTS", "SynthOptions", "parse_plate_shape"]

#: Pixel layouts on disk.
LAYOUTS: tuple[str, ...] = ("per-channel", "multichannel")
#: Pixel types of the image files.
DTYPES: tuple[str, ...] = ("uint16", "uint8")

MAX_ROWS = 16
MAX_COLUMNS = 24
MIN_SIZE = 16
MAX_SIZE = 16384

_PLATE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_plate_shape(text: str) -> tuple[int, int]:
    """Parse a plate shape such as ``"2x3"`` into ``(rows, columns)``.

    Parameters
    ----------
    text : str
        ``"ROWSxCOLS"``, e.g. ``"8x12"`` for a 96-well plate. Rows 1..16, columns 1..24
        (up to a 384-well plate).

    Returns
    -------
    tuple of int
        ``(rows, columns)``.

    Raises
    ------
    quantscope.errors.InvalidInput
        If the text is not of the form ``ROWSxCOLS`` or a number is out of range.

    Examples
    --------
    >>> parse_plate_shape("2x3")
    (2, 3)
    """
    if not isinstance(text, str):
        raise InvalidInput(
            f"plate: expected a string 'ROWSxCOLS' such as '2x3', got {text!r} "
            f"({type(text).__name__})"
        )
    match = _PLATE_RE.match(text)
    if match is None:
        raise InvalidInput(
            f"plate: {text!r} is not a plate shape; expected 'ROWSxCOLS' such as '2x3' or '8x12'"
        )
    rows, cols = int(match.group(1)), int(match.group(2))
    if not 1 <= rows <= MAX_ROWS or not 1 <= cols <= MAX_COLUMNS:
        raise InvalidInput(
            f"plate: {text!r} is out of range; rows must be 1..{MAX_ROWS} and columns "
            f"1..{MAX_COLUMNS} (e.g. '2x3', '16x24')"
        )
    return rows, cols


def _as_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{name}: expected an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InvalidInput(
            f"{name}: expected an integer, got {value!r} ({type(value).__name__})"
        ) from None
    if number < low or (high is not None and number > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise InvalidInput(f"{name}: {value!r} is out of range; it must be {bound}")
    return number


def _as_float(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{name}: expected a number, got {value!r} ({type(value).__name__})"
        ) from None
    too_low = number <= low if low_open else number < low
    if not math.isfinite(number) or too_low or number > high:
        lo = f"> {low:g}" if low_open else f">= {low:g}"
        raise InvalidInput(f"{name}: {value!r} is out of range; it must be {lo} and <= {high:g}")
    return number


def _as_channels(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    try:
        names = tuple(value)
    except TypeError:
        raise InvalidInput(
            f"channels: expected a sequence of channel names such as ('DAPI', 'GFP'), got {value!r}"
        ) from None
    if not names:
        raise InvalidInput("channels: at least one channel name is needed, e.g. ('DAPI', 'GFP')")
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise InvalidInput(
                f"channels: {name!r} is not a valid channel name; use non-empty names without "
                f"surrounding spaces, e.g. 'DAPI'"
            )
    if len(set(names)) != len(names):
        raise InvalidInput(f"channels: names must be unique, got {names!r}")
    return names


@dataclass(frozen=True)
class SynthOptions:
    """What to generate: plate format, image size, content and acquisition artefacts.

    All options are validated on construction; a bad value raises
    :class:`quantscope.errors.InvalidInput` naming the option and the value.

    Parameters
    ----------
    plate : str
        Plate shape ``"ROWSxCOLS"``, rows 1..16, columns 1..24.
    fields : int
        Fields (sites) per well, >= 1.
    channels : tuple of str
        Channel names. The first is the nuclear stain, the second (if any) a cytoplasmic
        stain; further channels alternate between a punctate (vesicle-like) and a membrane
        pattern. A comma-separated string such as ``"DAPI,GFP"`` is accepted.
    size : int
        Images are ``size x size`` px, 16..16384.
    seed : int
        Seed (>= 0) of all randomness; the same seed gives byte-identical files.
    density : float
        Multiplier of the default number of cells per field (about 30 per 256 x 256 px
        field, proportional to the area), 0..20.
    blur : float
        Extra Gaussian blur sigma in px (defocus), added in quadrature to the 1 px PSF, 0..50.
    vignetting : float
        Fraction of the intensity lost in the image corners (radial falloff), 0..1.
    saturation : float
        Fraction of the brightest nuclei made so bright that they clip at the dtype maximum, 0..1.
    snr : float
        Multiplier on the signal-to-noise ratio (lower is noisier); mean intensities do not
        change, the shot and read noise scale with ``1 / snr``. 0 < snr <= 1000.
    touching : float
        How strongly nuclei are packed into touching clumps, 0..1.
    empty_fraction : float
        Fraction of the fields in the plate that contain no cells (background and noise only),
        0..1.
    pixel_size_um : float
        Physical pixel size in µm (written as PhysicalSizeX/Y), 0 < pixel_size_um <= 1000.
    plate_name : str
        Plate name used in file names and metadata: letters, digits, ``.``, ``_``, ``-``.
    layout : str
        ``"per-channel"`` (one OME-TIFF per field and channel, ImageXpress-like names) or
        ``"multichannel"`` (one OME-TIFF per field with all channels and OME Plate metadata).
    dtype : str
        ``"uint16"`` or ``"uint8"``.
    """

    plate: str = "2x3"
    fields: int = 2
    channels: tuple[str, ...] = ("DAPI", "GFP")
    size: int = 256
    seed: int = 0
    density: float = 1.0
    blur: float = 0.0
    vignetting: float = 0.0
    saturation: float = 0.0
    snr: float = 1.0
    touching: float = 0.0
    empty_fraction: float = 0.0
    pixel_size_um: float = 0.65
    plate_name: str = "synth"
    layout: str = "per-channel"
    dtype: str = "uint16"

    def __post_init__(self) -> None:
        parse_plate_shape(self.plate)
        values: dict[str, Any] = {
            "fields": _as_int("fields", self.fields, 1),
            "channels": _as_channels(self.channels),
            "size": _as_int("size", self.size, MIN_SIZE, MAX_SIZE),
            "seed": _as_int("seed", self.seed, 0),
            "density": _as_float("density", self.density, 0.0, 20.0),
            "blur": _as_float("blur", self.blur, 0.0, 50.0),
            "vignetting": _as_float("vignetting", self.vignetting, 0.0, 1.0),
            "saturation": _as_float("saturation", self.saturation, 0.0, 1.0),
            "snr": _as_float("snr", self.snr, 0.0, 1000.0, low_open=True),
            "touching": _as_float("touching", self.touching, 0.0, 1.0),
            "empty_fraction": _as_float("empty_fraction", self.empty_fraction, 0.0, 1.0),
            "pixel_size_um": _as_float(
                "pixel_size_um", self.pixel_size_um, 0.0, 1000.0, low_open=True
            ),
        }
        if not isinstance(self.plate_name, str) or not _NAME_RE.match(self.plate_name):
            raise InvalidInput(
                f"plate_name: {self.plate_name!r} is not usable in file names; use 1-64 "
                f"letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if self.layout not in LAYOUTS:
            raise InvalidInput(
                f"layout: unknown layout {self.layout!r}; expected one of {', '.join(LAYOUTS)}"
            )
        if self.dtype not in DTYPES:
            raise InvalidInput(
                f"dtype: unknown dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}"
            )
        # Normalize types (numpy scalars, lists, "DAPI,GFP") so equal options compare equal.
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, int]:
        """Plate shape as ``(rows, columns)``."""
        return parse_plate_shape(self.plate)

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-serializable dict (channels as a list)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
