"""Write quantscope's model of an image as OME-XML (2016-06 schema).

The document is small and of fixed shape, so it is built with ``xml.etree`` directly: ome-types'
serializer costs ~10 ms per document and ~1 s of import, which dominated the ingest of small
images (bench/ingest.py). Tests parse every document written here with ome-types against the
OME schema (``from_xml(validate=True)``) and check the round trip.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum

from ..errors import InvalidInput
from ..model import (
    Channel,
    Filter,
    Image,
    ImagingEnvironment,
    LightSource,
    LightSourceKind,
    PlatePosition,
)

__all__ = ["image_to_ome_xml"]

_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_Q = f"{{{_NS}}}"  # ElementTree's prefix of the OME namespace
_PIXEL_TYPES = {
    "int8": "int8", "int16": "int16", "int32": "int32", "uint8": "uint8", "uint16": "uint16",
    "uint32": "uint32", "float32": "float", "float64": "double", "bool": "bit",
}  # fmt: skip
_MICROSCOPE_TYPES = {"Upright", "Inverted", "Dissection", "Electrophysiology", "Other"}
_LASER_TYPES = {
    "Excimer", "Gas", "MetalVapor", "SolidState", "Dye", "Semiconductor", "FreeElectron", "Other",
}  # fmt: skip
_ARC_TYPES = {"Hg", "Xe", "HgXe", "Other"}
_FILAMENT_TYPES = {"Incandescent", "Halogen", "Other"}
_PULSES = {"CW", "Single", "QSwitched", "Repetitive", "ModeLocked", "Other"}
_SOURCE_TYPES = {
    LightSourceKind.LASER: _LASER_TYPES,
    LightSourceKind.ARC: _ARC_TYPES,
    LightSourceKind.FILAMENT: _FILAMENT_TYPES,
}


def _set(el: ET.Element, **attrs: object) -> ET.Element:
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float):
            text = repr(value)
        elif isinstance(value, StrEnum):
            text = value.value
        else:
            text = str(value)
        el.set(key, text)
    return el


def _color(hex6: str | None) -> int | None:
    """OME Color: RGBA packed into a signed 32-bit integer (alpha 255)."""
    if not hex6:
        return None
    return int.from_bytes(bytes.fromhex(hex6) + b"\xff", "big", signed=True)


def _ids(kind: str, wanted: list[str | None]) -> dict[str | None, str]:
    """OME ids (``Kind:...`` or an LSID, as the schema's patterns allow) for the model's ids,
    kept where already valid."""
    out: dict[str | None, str] = {}
    used: set[str] = set()
    for n, raw in enumerate(wanted):
        ok = (
            raw is not None
            and re.fullmatch(rf"(urn:lsid:([\w\-.]+\.[\w\-.]+)+:{kind}:\S+)|({kind}:\S+)", raw)
            and raw not in used
        )
        ome_id = raw if ok and raw is not None else f"{kind}:{n}"
        while ome_id in used:
            ome_id += "_"
        used.add(ome_id)
        if raw not in out:
            out[raw] = ome_id
    return out


def _fraction(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0


def image_to_ome_xml(image: Image) -> str:
    """OME-XML (2016-06 schema) describing ``image`` (metadata only, no pixel data).

    Everything the model holds is written: instrument (stand, light sources, detectors,
    objective, filters, dichroics), objective settings, imaging environment, stage position,
    per-channel settings with their references, per-channel exposure times (as one Plane per
    channel) and the plate position. Values are written in OME's default units (µm, nm, s, mW,
    V, MHz, °C, mbar); values outside OME's vocabularies (a microscope type "Spinning disk")
    are left out so the document stays valid.

    Raises
    ------
    InvalidInput
        The image's dtype has no OME pixel type (int64, uint64, float16…).
    """
    if image.dtype not in _PIXEL_TYPES:
        raise InvalidInput(
            f"dtype {image.dtype} has no OME pixel type (OME knows {', '.join(_PIXEL_TYPES)})"
        )
    ome = ET.Element(f"{_Q}OME")
    ome.set(f"{{{_XSI}}}schemaLocation", f"{_NS} {_NS}/ome.xsd")
    ome.set("Creator", "quantscope")
    if image.position is not None:
        _add_plate(ome, image.position)
    refs = _Refs.of(image)
    acq = image.acquisition
    has_instrument = acq.instrument is not None or acq.objective is not None
    if has_instrument:
        _add_instrument(ome, image, refs)
    img = _set(ET.SubElement(ome, f"{_Q}Image"), ID="Image:0", Name=image.name)
    _add_image_settings(img, image, refs, has_instrument)
    pixels = _add_pixels(img, image)
    for ch in image.channels:
        _add_channel(pixels, ch, refs)
    ET.SubElement(pixels, f"{_Q}MetadataOnly")
    _add_planes(pixels, image)
    ET.indent(ome)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ome_tostring(ome) + "\n"


@dataclass(frozen=True)
class _Refs:
    """The OME ids of an image's instrument components, by the model's ids; they include the
    ids channels refer to without the component being described."""

    sources: dict[str | None, str]
    detectors: dict[str | None, str]
    filters: dict[str | None, str]
    dichroics: dict[str | None, str]
    objective: dict[str | None, str]

    @classmethod
    def of(cls, image: Image) -> _Refs:
        acq = image.acquisition
        inst = acq.instrument
        return cls(
            sources=_ids("LightSource", [s.id for s in (inst.light_sources if inst else ())]),
            detectors=_ids("Detector", [d.id for d in (inst.detectors if inst else ())]),
            filters=_ids("Filter", [f.id for f in (inst.filters if inst else ())]),
            dichroics=_ids("Dichroic", [d.id for d in (inst.dichroics if inst else ())]),
            objective=_ids("Objective", [acq.objective.id if acq.objective else None]),
        )


def _add_plate(ome: ET.Element, pos: PlatePosition) -> None:
    """The plate, well and well sample that hold the image."""
    plate = _set(ET.SubElement(ome, f"{_Q}Plate"), ID="Plate:0", Name=pos.plate)
    well = _set(ET.SubElement(plate, f"{_Q}Well"), ID="Well:0", Column=pos.column, Row=pos.row)
    sample = _set(ET.SubElement(well, f"{_Q}WellSample"), ID="WellSample:0", Index=pos.field - 1)
    _set(ET.SubElement(sample, f"{_Q}ImageRef"), ID="Image:0")


def _add_instrument(ome: ET.Element, image: Image, refs: _Refs) -> None:
    """The instrument: stand, light sources, detectors, objective, filters, dichroics."""
    acq = image.acquisition
    inst_m = acq.instrument
    inst = _set(ET.SubElement(ome, f"{_Q}Instrument"), ID="Instrument:0")
    if inst_m is not None and any(
        v is not None
        for v in (
            inst_m.manufacturer,
            inst_m.model,
            inst_m.microscope_type,
            inst_m.serial_number,
        )
    ):
        _set(
            ET.SubElement(inst, f"{_Q}Microscope"),
            Manufacturer=inst_m.manufacturer,
            Model=inst_m.model,
            SerialNumber=inst_m.serial_number,
            Type=inst_m.microscope_type if inst_m.microscope_type in _MICROSCOPE_TYPES else None,
        )
    order = list(LightSourceKind)  # the order in which OME readers list them
    for src in sorted(inst_m.light_sources if inst_m else (), key=lambda s: order.index(s.kind)):
        _add_light_source(inst, src, refs)
    for det in inst_m.detectors if inst_m else ():
        _set(
            ET.SubElement(inst, f"{_Q}Detector"),
            Manufacturer=det.manufacturer,
            Model=det.model,
            SerialNumber=det.serial_number,
            Gain=det.gain,
            Voltage=det.voltage_v,
            Offset=det.offset,
            Zoom=det.zoom,
            AmplificationGain=det.amplification_gain,
            ID=refs.detectors[det.id],
            Type=det.type,
        )
    if acq.objective is not None:
        o = acq.objective
        _set(
            ET.SubElement(inst, f"{_Q}Objective"),
            Manufacturer=o.manufacturer,
            Model=o.model,
            SerialNumber=o.serial_number,
            ID=refs.objective[o.id],
            Correction=o.correction,
            Immersion=o.immersion,
            LensNA=o.lens_na,
            NominalMagnification=o.nominal_magnification,
            CalibratedMagnification=o.calibrated_magnification,
            WorkingDistance=o.working_distance_um,
            Iris=o.iris,
        )
    for f in inst_m.filters if inst_m else ():
        _add_filter(inst, f, refs)
    for d in inst_m.dichroics if inst_m else ():
        _set(
            ET.SubElement(inst, f"{_Q}Dichroic"),
            Manufacturer=d.manufacturer,
            Model=d.model,
            SerialNumber=d.serial_number,
            ID=refs.dichroics[d.id],
        )


def _add_light_source(inst: ET.Element, src: LightSource, refs: _Refs) -> None:
    allowed = _SOURCE_TYPES.get(src.kind, set())
    el = _set(
        ET.SubElement(inst, f"{_Q}{src.kind.value}"),
        Manufacturer=src.manufacturer,
        Model=src.model,
        SerialNumber=src.serial_number,
        ID=refs.sources[src.id],
        Power=src.power_mw,
        Type=src.type if src.type in allowed else None,
    )
    if src.kind is LightSourceKind.LASER:
        _set(
            el,
            Wavelength=src.wavelength_nm,
            Tuneable=src.tuneable,
            Pulse=src.pulse if src.pulse in _PULSES else None,
        )


def _add_filter(inst: ET.Element, f: Filter, refs: _Refs) -> None:
    el = _set(
        ET.SubElement(inst, f"{_Q}Filter"),
        Manufacturer=f.manufacturer,
        Model=f.model,
        SerialNumber=f.serial_number,
        Type=f.type,
        FilterWheel=f.filter_wheel,
        ID=refs.filters[f.id],
    )
    if any(v is not None for v in (f.cut_in_nm, f.cut_out_nm, f.transmittance)):
        _set(
            ET.SubElement(el, f"{_Q}TransmittanceRange"),
            CutIn=f.cut_in_nm,
            CutOut=f.cut_out_nm,
            Transmittance=f.transmittance,
        )


def _add_image_settings(img: ET.Element, image: Image, refs: _Refs, has_instrument: bool) -> None:
    """What the Image element holds before its pixels: acquisition date, description,
    instrument and objective settings, imaging environment, stage label."""
    acq = image.acquisition
    if acq.acquired_at is not None:
        ET.SubElement(img, f"{_Q}AcquisitionDate").text = acq.acquired_at.isoformat()
    if image.description:
        ET.SubElement(img, f"{_Q}Description").text = image.description
    if has_instrument:
        _set(ET.SubElement(img, f"{_Q}InstrumentRef"), ID="Instrument:0")
    if acq.objective is not None:
        os_ = acq.objective_settings
        _set(
            ET.SubElement(img, f"{_Q}ObjectiveSettings"),
            ID=refs.objective[acq.objective.id],
            CorrectionCollar=os_.correction_collar if os_ else None,
            Medium=os_.medium if os_ else None,
            RefractiveIndex=os_.refractive_index if os_ else None,
        )
    env = acq.environment
    if env is not None and env != ImagingEnvironment():
        _set(
            ET.SubElement(img, f"{_Q}ImagingEnvironment"),
            Temperature=env.temperature_c,
            AirPressure=env.air_pressure_mbar,
            Humidity=_fraction(env.humidity_percent),
            CO2Percent=_fraction(env.co2_percent),
        )
    stage = acq.stage
    if stage is not None and stage.label is not None:
        _set(
            ET.SubElement(img, f"{_Q}StageLabel"),
            Name=stage.label,
            X=stage.x_um,
            XUnit="µm" if stage.x_um is not None else None,  # OME's default: reference frame
            Y=stage.y_um,
            YUnit="µm" if stage.y_um is not None else None,
            Z=stage.z_um,
            ZUnit="µm" if stage.z_um is not None else None,
        )


def _add_pixels(img: ET.Element, image: Image) -> ET.Element:
    """The Pixels element: type, sizes, physical sizes, time increment."""
    t, c, z, y, x = image.shape
    return _set(
        ET.SubElement(img, f"{_Q}Pixels"),
        ID="Pixels:0",
        DimensionOrder="XYZCT",
        Type=_PIXEL_TYPES[image.dtype],
        SignificantBits=image.significant_bits,
        SizeX=x,
        SizeY=y,
        SizeZ=z,
        SizeC=c,
        SizeT=t,
        PhysicalSizeX=image.physical_size_x_um,
        PhysicalSizeY=image.physical_size_y_um,
        PhysicalSizeZ=image.physical_size_z_um,
        TimeIncrement=image.acquisition.time_increment_s,
    )


def _add_channel(pixels: ET.Element, ch: Channel, refs: _Refs) -> None:
    """One channel with its light source and detector settings and its light path."""
    el = _set(
        ET.SubElement(pixels, f"{_Q}Channel"),
        ID=f"Channel:0:{ch.index}",
        Name=ch.name,
        SamplesPerPixel=1,
        IlluminationType=ch.illumination_type,
        PinholeSize=ch.pinhole_size_um,
        AcquisitionMode=ch.acquisition_mode,
        ContrastMethod=ch.contrast_method,
        ExcitationWavelength=ch.excitation_wavelength_nm,
        EmissionWavelength=ch.emission_wavelength_nm,
        Fluor=ch.fluor,
        NDFilter=ch.nd_filter,
        Color=_color(ch.color),
    )
    if ch.light_source_id in refs.sources:
        _set(
            ET.SubElement(el, f"{_Q}LightSourceSettings"),
            ID=refs.sources[ch.light_source_id],
            Attenuation=ch.light_source_attenuation,
            Wavelength=ch.light_source_wavelength_nm,
        )
    if ch.detector_id in refs.detectors:
        _set(
            ET.SubElement(el, f"{_Q}DetectorSettings"),
            ID=refs.detectors[ch.detector_id],
            Offset=ch.detector_offset,
            Gain=ch.detector_gain,
            Voltage=ch.detector_voltage_v,
            ReadOutRate=ch.detector_read_out_rate_mhz,
            Binning=ch.detector_binning,
        )
    ex = [refs.filters[i] for i in ch.excitation_filter_ids if i in refs.filters]
    em = [refs.filters[i] for i in ch.emission_filter_ids if i in refs.filters]
    dich = refs.dichroics.get(ch.dichroic_id) if ch.dichroic_id is not None else None
    if ex or em or dich:
        lp = ET.SubElement(el, f"{_Q}LightPath")
        for ref in ex:
            _set(ET.SubElement(lp, f"{_Q}ExcitationFilterRef"), ID=ref)
        if dich:
            _set(ET.SubElement(lp, f"{_Q}DichroicRef"), ID=dich)
        for ref in em:
            _set(ET.SubElement(lp, f"{_Q}EmissionFilterRef"), ID=ref)


def _add_planes(pixels: ET.Element, image: Image) -> None:
    """One Plane per channel (t=0, z=0) for exposure times and the stage position."""
    chans = image.channels
    stage = image.acquisition.stage
    stage_xyz = (
        (stage.x_um, stage.y_um, stage.z_um)
        if stage is not None and stage.label is None
        else (None, None, None)
    )
    plane_cs = [ch.index for ch in chans if ch.exposure_time_s is not None]
    if any(v is not None for v in stage_xyz) and not plane_cs:
        plane_cs = [0]
    exposure = {ch.index: ch.exposure_time_s for ch in chans}
    for ci in plane_cs:
        if ci >= image.shape[1]:
            continue
        _set(
            ET.SubElement(pixels, f"{_Q}Plane"),
            TheZ=0,
            TheT=0,
            TheC=ci,
            ExposureTime=exposure.get(ci),
            PositionX=stage_xyz[0],
            PositionXUnit="µm" if stage_xyz[0] is not None else None,
            PositionY=stage_xyz[1],
            PositionYUnit="µm" if stage_xyz[1] is not None else None,
            PositionZ=stage_xyz[2],
            PositionZUnit="µm" if stage_xyz[2] is not None else None,
        )


_PREFIX = "ome"


def ome_tostring(root: ET.Element) -> str:
    """``root``, built by quantscope with every element in the OME namespace, as text with OME
    as the document's default namespace.

    ``ET.register_namespace("", OME)`` would do that by changing ElementTree's process-wide
    prefix table: every later serialization would then write OME elements unprefixed, and vendor
    elements without a namespace (original metadata kept in OME documents) would silently move
    into the OME namespace. Here the OME elements get a prefix of their own, which is then
    dropped from the tags this document holds ("<" cannot occur unescaped in text or values).
    """
    ET.register_namespace(_PREFIX, _NS)  # a named prefix changes no other document's meaning
    text = ET.tostring(root, encoding="unicode")
    return (
        text.replace(f"<{_PREFIX}:", "<")
        .replace(f"</{_PREFIX}:", "</")
        .replace(f' xmlns:{_PREFIX}="', ' xmlns="', 1)
    )
