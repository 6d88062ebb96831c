"""Map OME metadata (ome-types) onto quantscope's model, converting every unit.

Lengths become µm, wavelengths nm, times s. A value whose unit cannot be converted (a pixel
size given in "pixel", say) is dropped rather than stored as a bare number of unknown unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import (
    Acquisition,
    AcquisitionMode,
    Binning,
    Channel,
    ContrastMethod,
    Correction,
    Detector,
    DetectorType,
    Dichroic,
    Filter,
    FilterType,
    IlluminationType,
    ImagingEnvironment,
    Immersion,
    Instrument,
    LightSource,
    LightSourceKind,
    Medium,
    Objective,
    ObjectiveSettings,
    PlatePosition,
    StagePosition,
)

__all__ = [
    "ImageMetadata",
    "frequency_mhz",
    "from_ome",
    "length_um",
    "power_mw",
    "pressure_mbar",
    "read_ome_xml",
    "temperature_c",
    "time_s",
    "voltage_v",
    "wavelength_nm",
]

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
_SI_EXP = {
    "Y": 24, "Z": 21, "E": 18, "P": 15, "T": 12, "G": 9, "M": 6, "k": 3, "h": 2, "da": 1,
    "": 0, "d": -1, "c": -2, "m": -3, "µ": -6, "u": -6, "\u03bc": -6, "n": -9, "p": -12,
    "f": -15, "a": -18, "z": -21, "y": -24,
}


def _pow10(k: int) -> tuple[float, float]:
    """10**k as (multiply, divide) with both exactly representable."""
    return (float(10**k), 1.0) if k >= 0 else (1.0, float(10**-k))


# (multiply, divide) pairs: value * m / d keeps round numbers exact (3 dW == 300 mW)
_POWER_MW = {f"{p}W": _pow10(e + 3) for p, e in _SI_EXP.items()}
_VOLTAGE_V = {f"{p}V": _pow10(e) for p, e in _SI_EXP.items()}
_FREQUENCY_MHZ = {f"{p}Hz": _pow10(e - 6) for p, e in _SI_EXP.items()}
_PRESSURE_MBAR = {f"{p}Pa": _pow10(e - 2) for p, e in _SI_EXP.items()} | {
    "bar": (1e3, 1.0), "Mbar": (1e9, 1.0), "kbar": (1e6, 1.0), "dbar": (100.0, 1.0),
    "cbar": (10.0, 1.0), "mbar": (1.0, 1.0), "atm": (1013.25, 1.0),
    "psi": (68.94757293168361, 1.0), "Torr": (1013.25, 760.0), "mTorr": (1013.25, 760e3),
    "mm Hg": (1.33322387415, 1.0),
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


def _scaled(v: float | None, factor: tuple[float, float] | None) -> float | None:
    return None if v is None or factor is None else v * factor[0] / factor[1]


def power_mw(value: Any, unit: Any = None) -> float | None:
    """A power in mW (OME's default unit for light-source power is mW)."""
    v = _num(value)
    return _scaled(v, _POWER_MW.get(_unit(unit, "mW")))


def voltage_v(value: Any, unit: Any = None) -> float | None:
    """An electric potential in V (OME's default unit for detector voltage is V)."""
    v = _num(value)
    return _scaled(v, _VOLTAGE_V.get(_unit(unit, "V")))


def frequency_mhz(value: Any, unit: Any = None) -> float | None:
    """A frequency in MHz (OME's default unit for read-out rates is MHz)."""
    v = _num(value)
    return _scaled(v, _FREQUENCY_MHZ.get(_unit(unit, "MHz")))


def pressure_mbar(value: Any, unit: Any = None) -> float | None:
    """A pressure in mbar (OME's default unit for air pressure is mbar)."""
    v = _num(value)
    return _scaled(v, _PRESSURE_MBAR.get(_unit(unit, "mbar")))


def temperature_c(value: Any, unit: Any = None) -> float | None:
    """A temperature in °C (OME's default unit for temperatures is °C)."""
    v = _num(value)
    if v is None:
        return None
    u = _unit(unit, "°C")
    if u == "°C":
        return v
    if u == "K":
        return v - 273.15
    if u == "°F":
        return (v - 32.0) * 5.0 / 9.0
    if u == "°R":
        return (v - 491.67) * 5.0 / 9.0
    return None


def _pos(v: Any) -> float | None:
    """A strictly positive finite number, else None (OME's PositiveFloat attributes)."""
    f = _num(v)
    return f if f is not None and f > 0 else None


def _frac(v: Any) -> float | None:
    f = _num(v)
    return f if f is not None and 0 <= f <= 1 else None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(getattr(v, "value", v)).strip()
    return s or None


@dataclass
class ImageMetadata:
    """What one OME Image says about itself, in quantscope's model and units."""

    name: str | None = None
    channels: list[Channel] = field(default_factory=list)
    physical_size: tuple[float | None, float | None, float | None] = (None, None, None)
    acquisition: Acquisition = field(default_factory=Acquisition)
    position: PlatePosition | None = None
    significant_bits: int | None = None
    description: str | None = None


def _color_hex(color: Any) -> str | None:
    if color is None:
        return None
    try:
        r, g, b = color.as_rgb_tuple(alpha=False)
    except (AttributeError, TypeError, ValueError):
        return None
    return f"{r:02X}{g:02X}{b:02X}"


def from_ome(ome: Any, index: int = 0) -> ImageMetadata:
    """Read image ``index`` of an ``ome_types.OME`` into :class:`ImageMetadata`.

    Instrument (stand, light sources, filters, dichroics, detectors), the objective and its
    settings, per-channel light-source / detector / light-path settings, imaging environment,
    the first plane's stage position, plate position and the pixel sizes are mapped, every value
    converted to quantscope's units (µm, nm, s, mW, V, MHz, °C, mbar). Values outside OME's
    vocabularies or ranges are dropped, never stored as an unknown-unit number.
    """
    if ome is None or index >= len(ome.images):
        return ImageMetadata()
    image = ome.images[index]
    px = image.pixels
    exposures: dict[int, float] = {}
    for plane in px.planes:
        t = time_s(plane.exposure_time, plane.exposure_time_unit)
        if t is not None and plane.the_c not in exposures:
            exposures[plane.the_c] = t
    channels = [_channel(i, ch, exposures.get(i)) for i, ch in enumerate(px.channels)]
    instrument = objective = settings = None
    inst = None
    if image.instrument_ref is not None:
        inst = next((x for x in ome.instruments if x.id == image.instrument_ref.id), None)
    if inst is None and len(ome.instruments) == 1:
        inst = ome.instruments[0]
    if inst is not None:
        instrument = _instrument(inst)
        if instrument == Instrument():  # an Instrument element with nothing in it
            instrument = None
        obj = None
        if image.objective_settings is not None:
            obj = next((o for o in inst.objectives if o.id == image.objective_settings.id), None)
        if obj is None and len(inst.objectives) == 1:
            obj = inst.objectives[0]
        if obj is not None:
            objective = _objective(obj)
    os_ = image.objective_settings
    if os_ is not None and any(
        v is not None for v in (os_.medium, os_.refractive_index, os_.correction_collar)
    ):
        settings = ObjectiveSettings(
            medium=Medium.parse(os_.medium),
            refractive_index=_pos(os_.refractive_index),
            correction_collar=_num(os_.correction_collar),
        )
    acquisition = Acquisition(
        acquired_at=image.acquisition_date,
        instrument=instrument,
        objective=objective,
        objective_settings=settings,
        environment=_environment(image.imaging_environment),
        stage=_stage(image, px),
        time_increment_s=_nonneg(time_s(px.time_increment, px.time_increment_unit)),
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
        significant_bits=int(px.significant_bits) if px.significant_bits else None,
        description=_text(image.description),
    )


def _nonneg(v: float | None) -> float | None:
    return v if v is not None and v >= 0 else None


def _channel(i: int, ch: Any, exposure: float | None) -> Channel:
    ls = ch.light_source_settings
    ds = ch.detector_settings
    lp = ch.light_path
    excitation: tuple[str, ...] = ()
    emission: tuple[str, ...] = ()
    dichroic = None
    if lp is not None:
        excitation = tuple(r.id for r in lp.excitation_filters)
        emission = tuple(r.id for r in lp.emission_filters)
        dichroic = lp.dichroic_ref.id if lp.dichroic_ref is not None else None
    return Channel(
        index=i,
        name=ch.name or f"C{i}",
        color=_color_hex(ch.color),
        excitation_wavelength_nm=_pos(
            wavelength_nm(ch.excitation_wavelength, ch.excitation_wavelength_unit)
        ),
        emission_wavelength_nm=_pos(
            wavelength_nm(ch.emission_wavelength, ch.emission_wavelength_unit)
        ),
        exposure_time_s=_nonneg(exposure),
        fluor=_text(ch.fluor),
        illumination_type=IlluminationType.parse(ch.illumination_type),
        contrast_method=ContrastMethod.parse(ch.contrast_method),
        acquisition_mode=AcquisitionMode.parse(ch.acquisition_mode),
        pinhole_size_um=_nonneg(length_um(ch.pinhole_size, ch.pinhole_size_unit)),
        nd_filter=_nonneg(_num(ch.nd_filter)),
        light_source_id=ls.id if ls is not None else None,
        light_source_wavelength_nm=(
            _pos(wavelength_nm(ls.wavelength, ls.wavelength_unit)) if ls is not None else None
        ),
        light_source_attenuation=_frac(ls.attenuation) if ls is not None else None,
        detector_id=ds.id if ds is not None else None,
        detector_gain=_num(ds.gain) if ds is not None else None,
        detector_offset=_num(ds.offset) if ds is not None else None,
        detector_binning=Binning.parse(ds.binning) if ds is not None else None,
        detector_voltage_v=voltage_v(ds.voltage, ds.voltage_unit) if ds is not None else None,
        detector_read_out_rate_mhz=(
            _nonneg(frequency_mhz(ds.read_out_rate, ds.read_out_rate_unit))
            if ds is not None
            else None
        ),
        excitation_filter_ids=excitation,
        dichroic_id=dichroic,
        emission_filter_ids=emission,
    )


def _objective(obj: Any) -> Objective:
    na = _pos(obj.lens_na)
    return Objective(
        id=obj.id,
        manufacturer=_text(obj.manufacturer),
        model=_text(obj.model),
        serial_number=_text(obj.serial_number),
        nominal_magnification=_pos(obj.nominal_magnification),
        calibrated_magnification=_pos(obj.calibrated_magnification),
        lens_na=na if na is not None and na <= 2 else None,
        immersion=Immersion.parse(obj.immersion),
        correction=Correction.parse(obj.correction),
        working_distance_um=_nonneg(length_um(obj.working_distance, obj.working_distance_unit)),
        iris=obj.iris,
    )


_SOURCES = (
    ("lasers", LightSourceKind.LASER),
    ("arcs", LightSourceKind.ARC),
    ("filaments", LightSourceKind.FILAMENT),
    ("light_emitting_diodes", LightSourceKind.LED),
    ("generic_excitation_sources", LightSourceKind.GENERIC),
)


def _instrument(inst: Any) -> Instrument:
    mic = inst.microscope
    sources = []
    for attr, kind in _SOURCES:
        for src in getattr(inst, attr):
            is_laser = kind is LightSourceKind.LASER
            sources.append(
                LightSource(
                    id=src.id,
                    kind=kind,
                    manufacturer=_text(src.manufacturer),
                    model=_text(src.model),
                    serial_number=_text(src.serial_number),
                    power_mw=power_mw(src.power, src.power_unit),
                    type=_text(getattr(src, "type", None)),
                    wavelength_nm=(
                        _pos(wavelength_nm(src.wavelength, src.wavelength_unit))
                        if is_laser
                        else None
                    ),
                    tuneable=src.tuneable if is_laser else None,
                    pulse=_text(src.pulse) if is_laser else None,
                )
            )
    filters = []
    for f in inst.filters:
        tr = f.transmittance_range
        filters.append(
            Filter(
                id=f.id,
                manufacturer=_text(f.manufacturer),
                model=_text(f.model),
                serial_number=_text(f.serial_number),
                type=FilterType.parse(f.type),
                filter_wheel=f.filter_wheel,
                cut_in_nm=_pos(wavelength_nm(tr.cut_in, tr.cut_in_unit)) if tr else None,
                cut_out_nm=_pos(wavelength_nm(tr.cut_out, tr.cut_out_unit)) if tr else None,
                transmittance=_frac(tr.transmittance) if tr else None,
            )
        )
    detectors = [
        Detector(
            id=d.id,
            manufacturer=_text(d.manufacturer),
            model=_text(d.model),
            serial_number=_text(d.serial_number),
            type=DetectorType.parse(d.type),
            gain=_num(d.gain),
            offset=_num(d.offset),
            voltage_v=voltage_v(d.voltage, d.voltage_unit),
            zoom=_num(d.zoom),
            amplification_gain=_num(d.amplification_gain),
        )
        for d in inst.detectors
    ]
    dichroics = [
        Dichroic(
            id=d.id,
            manufacturer=_text(d.manufacturer),
            model=_text(d.model),
            serial_number=_text(d.serial_number),
        )
        for d in inst.dichroics
    ]
    return Instrument(
        manufacturer=_text(mic.manufacturer) if mic is not None else None,
        model=_text(mic.model) if mic is not None else None,
        microscope_type=_text(mic.type) if mic is not None else None,
        serial_number=_text(mic.serial_number) if mic is not None else None,
        light_sources=tuple(sources),
        filters=tuple(filters),
        dichroics=tuple(dichroics),
        detectors=tuple(detectors),
    )


def _environment(env: Any) -> ImagingEnvironment | None:
    if env is None:
        return None

    def pct(v: Any) -> float | None:  # OME stores humidity and CO2 as fractions 0-1
        f = _frac(v)
        return None if f is None else f * 100.0

    out = ImagingEnvironment(
        temperature_c=temperature_c(env.temperature, env.temperature_unit),
        air_pressure_mbar=_nonneg(pressure_mbar(env.air_pressure, env.air_pressure_unit)),
        humidity_percent=pct(env.humidity),
        co2_percent=pct(env.co2_percent),
    )
    return out if out != ImagingEnvironment() else None


def _stage(image: Any, px: Any) -> StagePosition | None:
    """Stage position from the StageLabel, else from the first plane that has one; positions
    in a unit that is not a length (``reference frame``) are dropped."""
    label = image.stage_label
    name = label.name if label is not None and label.name else None
    xyz: tuple[float | None, ...] = (None, None, None)
    if label is not None:
        xyz = (
            length_um(label.x, label.x_unit),
            length_um(label.y, label.y_unit),
            length_um(label.z, label.z_unit),
        )
    if all(v is None for v in xyz):
        for plane in px.planes:
            xyz = (
                length_um(plane.position_x, plane.position_x_unit),
                length_um(plane.position_y, plane.position_y_unit),
                length_um(plane.position_z, plane.position_z_unit),
            )
            if any(v is not None for v in xyz):
                break
    if name is None and all(v is None for v in xyz):
        return None
    return StagePosition(x_um=xyz[0], y_um=xyz[1], z_um=xyz[2], label=name)


def _plate_position(ome: Any, image_id: str) -> PlatePosition | None:
    for plate in ome.plates:
        for well in plate.wells:
            for k, ws in enumerate(well.well_samples):
                if ws.image_ref is not None and ws.image_ref.id == image_id:
                    return PlatePosition(
                        plate=plate.name or plate.id,
                        row=int(well.row),
                        column=int(well.column),
                        field=_field(plate, k, ws) + 1,
                    )
    return None


def _field(plate: Any, position: int, sample: Any) -> int:
    """0-based field index of a WellSample (the site number is one more).

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


def read_ome_xml(path: Any, *, validate: bool = False) -> Any:
    """Parse an OME-XML file into an ``ome_types.OME``.

    Without ``validate`` the file is read leniently, as real acquisition software writes it
    (ome-types repairs IDs such as Micro-Manager's ``ID="Microscope"``); with ``validate`` it
    must conform to the OME 2016-06 schema.

    Raises
    ------
    NotFound
        No such file.
    CorruptFile
        Not XML, or XML that is not OME.
    InvalidInput
        ``validate`` and the document breaks the schema (the first problem and its line).
    """
    import re
    import warnings
    from pathlib import Path

    from ..errors import CorruptFile, InvalidInput, NotFound

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"{p}: no such OME-XML file")
    try:
        from ome_types import from_xml

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return from_xml(p, validate=validate)
    except Exception as e:  # ome-types raises XML, schema and pydantic errors alike
        text = str(e)
        problems = re.findall(r"^\s*- (line \d+: .*)$", text, flags=re.M)
        if problems:
            first = re.sub(r"\{[^}]*\}", "", problems[0]).strip()
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InvalidInput(f"{p}: not valid OME-XML (2016-06 schema): {first}{more}") from e
        first_line = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise CorruptFile(
            f"{p}: not readable as OME-XML ({type(e).__name__}: {first_line[:300]})"
        ) from e
