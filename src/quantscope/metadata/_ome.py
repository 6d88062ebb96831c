"""Map OME metadata (ome-types) onto quantscope's model, converting every unit.

Lengths become µm, wavelengths nm, times s. A value whose unit cannot be converted (a pixel
size given in "pixel", say) is dropped rather than stored as a bare number of unknown unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Acquisition, Channel, Instrument, Objective, PlatePosition

__all__ = ["ImageMetadata", "from_ome", "length_um", "time_s", "wavelength_nm"]

# Every OME UnitsLength except "pixel" and "reference frame" (which are not lengths). "pc" is
# the parsec and "pt"/"li" the typographic point and line (1/72 and 1/12 inch), as in OME.
# fmt: off
_LENGTH_UM = {
    "ym": 1e-18, "zm": 1e-15, "am": 1e-12, "fm": 1e-9, "pm": 1e-6, "Å": 1e-4, "nm": 1e-3,
    "µm": 1.0, "mm": 1e3, "cm": 1e4, "dm": 1e5, "m": 1e6, "dam": 1e7, "hm": 1e8, "km": 1e9,
    "Mm": 1e12, "Gm": 1e15, "Tm": 1e18, "Pm": 1e21, "Em": 1e24, "Zm": 1e27, "Ym": 1e30,
    "in": 25400.0, "ft": 304800.0, "yd": 914400.0, "mi": 1.609344e9, "thou": 25.4,
    "li": 25400.0 / 12, "pt": 25400.0 / 72,
    "ua": 1.495978707e17, "ly": 9.4607304725808e21, "pc": 3.0856775814913673e22,
    # spellings found outside OME-XML (ImageJ, vendor metadata): ASCII "u" and Greek mu
    "um": 1.0, "\u03bcm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "nanometer": 1e-3, "millimeter": 1e3,
}
_TIME_S = {
    "ys": 1e-24, "zs": 1e-21, "as": 1e-18, "fs": 1e-15, "ps": 1e-12, "ns": 1e-9, "µs": 1e-6,
    "ms": 1e-3, "cs": 1e-2, "ds": 0.1, "s": 1.0, "das": 10.0, "hs": 100.0, "ks": 1e3,
    "Ms": 1e6, "Gs": 1e9, "Ts": 1e12, "Ps": 1e15, "Es": 1e18, "Zs": 1e21, "Ys": 1e24,
    "min": 60.0, "h": 3600.0, "d": 86400.0,
    "us": 1e-6, "\u03bcs": 1e-6, "sec": 1.0,
}
# fmt: on


def _unit(u: Any, default: str) -> str:
    if u is None:
        return default
    return str(getattr(u, "value", u))


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def length_um(value: Any, unit: Any = None) -> float | None:
    """A length in µm, or None if missing or in a unit that is not a length (e.g. pixel)."""
    v = _num(value)
    factor = _LENGTH_UM.get(_unit(unit, "µm"))
    return None if v is None or factor is None else v * factor


def wavelength_nm(value: Any, unit: Any = None) -> float | None:
    """A wavelength in nm (OME's default unit for wavelengths is nm)."""
    v = _num(value)
    factor = _LENGTH_UM.get(_unit(unit, "nm"))
    # factor in nm per unit first, so that nm -> nm is exact (700 nm stays 700.0, not 700.0000001)
    return None if v is None or factor is None else v * (factor / _LENGTH_UM["nm"])


def time_s(value: Any, unit: Any = None) -> float | None:
    """A time in s (OME's default unit for times is s)."""
    v = _num(value)
    factor = _TIME_S.get(_unit(unit, "s"))
    return None if v is None or factor is None else v * factor


@dataclass
class ImageMetadata:
    """What one OME Image says about itself, in quantscope's model and units."""

    name: str | None = None
    channels: list[Channel] = field(default_factory=list)
    physical_size: tuple[float | None, float | None, float | None] = (None, None, None)
    acquisition: Acquisition = field(default_factory=Acquisition)
    position: PlatePosition | None = None


def _color_hex(color: Any) -> str | None:
    if color is None:
        return None
    try:
        r, g, b = color.as_rgb_tuple(alpha=False)
    except (AttributeError, TypeError, ValueError):
        return None
    return f"{r:02X}{g:02X}{b:02X}"


def from_ome(ome: Any, index: int = 0) -> ImageMetadata:
    """Read image ``index`` of an ``ome_types.OME`` into :class:`ImageMetadata`."""
    if ome is None or index >= len(ome.images):
        return ImageMetadata()
    image = ome.images[index]
    px = image.pixels
    exposures: dict[int, float] = {}
    for plane in px.planes:
        t = time_s(plane.exposure_time, plane.exposure_time_unit)
        if t is not None and plane.the_c not in exposures:
            exposures[plane.the_c] = t
    channels = [
        Channel(
            index=i,
            name=ch.name or f"C{i}",
            color=_color_hex(ch.color),
            excitation_wavelength_nm=wavelength_nm(
                ch.excitation_wavelength, ch.excitation_wavelength_unit
            ),
            emission_wavelength_nm=wavelength_nm(
                ch.emission_wavelength, ch.emission_wavelength_unit
            ),
            exposure_time_s=exposures.get(i),
            fluor=ch.fluor,
        )
        for i, ch in enumerate(px.channels)
    ]
    instrument = objective = None
    inst = None
    if image.instrument_ref is not None:
        inst = next((x for x in ome.instruments if x.id == image.instrument_ref.id), None)
    if inst is None and len(ome.instruments) == 1:
        inst = ome.instruments[0]
    if inst is not None:
        mic = inst.microscope
        if mic is not None:
            instrument = Instrument(
                manufacturer=mic.manufacturer,
                model=mic.model,
                microscope_type=_unit(mic.type, "") or None if mic.type is not None else None,
            )
        obj = None
        if image.objective_settings is not None:
            obj = next((o for o in inst.objectives if o.id == image.objective_settings.id), None)
        if obj is None and len(inst.objectives) == 1:
            obj = inst.objectives[0]
        if obj is not None:
            objective = Objective(
                manufacturer=obj.manufacturer,
                model=obj.model,
                nominal_magnification=_num(obj.nominal_magnification),
                lens_na=_num(obj.lens_na),
                immersion=_unit(obj.immersion, "") or None if obj.immersion is not None else None,
            )
    acquisition = Acquisition(
        acquired_at=image.acquisition_date,
        instrument=instrument,
        objective=objective,
        time_increment_s=time_s(px.time_increment, px.time_increment_unit),
    )
    return ImageMetadata(
        name=image.name,
        channels=channels,
        physical_size=(
            length_um(px.physical_size_x, px.physical_size_x_unit),
            length_um(px.physical_size_y, px.physical_size_y_unit),
            length_um(px.physical_size_z, px.physical_size_z_unit),
        ),
        acquisition=acquisition,
        position=_plate_position(ome, image.id),
    )


def _plate_position(ome: Any, image_id: str) -> PlatePosition | None:
    for plate in ome.plates:
        for well in plate.wells:
            for k, ws in enumerate(well.well_samples):
                if ws.image_ref is not None and ws.image_ref.id == image_id:
                    return PlatePosition(
                        plate=plate.name or plate.id,
                        row=int(well.row),
                        column=int(well.column),
                        field=_field(plate, k, ws),
                    )
    return None


def _field(plate: Any, position: int, sample: Any) -> int:
    """0-based field of a WellSample.

    OME defines WellSample/@Index as unique within a plate (it orders all samples of the plate),
    so the field is the sample's position within its well. Two cases carry the field in
    @Index instead, and only there is it used: a file that describes one field on its own (a
    single WellSample in the plate, as quantscope's OME-XML and per-field OME-TIFFs write it),
    and files whose indices repeat across wells (so they cannot be plate-wide).
    """
    indices = [ws.index for w in plate.wells for ws in w.well_samples]
    if len(indices) == 1 or len(set(indices)) < len(indices):
        return int(sample.index)
    return position
