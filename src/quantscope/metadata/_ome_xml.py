"""Write quantscope's model of an image as OME-XML (2016-06 schema).

The document is small and of fixed shape, so it is built with ``xml.etree`` directly: ome-types'
serializer costs ~10 ms per document and ~1 s of import, which dominated the ingest of small
images (bench/ingest.py). Tests parse every document written here with ome-types against the
OME schema (``from_xml(validate=True)``) and check the round trip.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..errors import InvalidInput
from ..model import Image

__all__ = ["image_to_ome_xml"]

_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_PIXEL_TYPES = {
    "int8": "int8", "int16": "int16", "int32": "int32", "uint8": "uint8", "uint16": "uint16",
    "uint32": "uint32", "float32": "float", "float64": "double", "bool": "bit",
}  # fmt: skip
_MICROSCOPE_TYPES = {"Upright", "Inverted", "Dissection", "Electrophysiology", "Other"}
_IMMERSIONS = {"Oil", "Water", "WaterDipping", "Air", "Multi", "Glycerol", "Other"}


def _set(el: ET.Element, **attrs: object) -> ET.Element:
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        el.set(key, text)
    return el


def _color(hex6: str | None) -> int | None:
    """OME Color: RGBA packed into a signed 32-bit integer (alpha 255)."""
    if not hex6:
        return None
    return int.from_bytes(bytes.fromhex(hex6) + b"\xff", "big", signed=True)


def image_to_ome_xml(image: Image) -> str:
    """OME-XML describing ``image`` (pixels metadata only, no pixel data).

    Raises
    ------
    InvalidInput
        The image's dtype has no OME pixel type (int64, uint64, float16…).
    """
    if image.dtype not in _PIXEL_TYPES:
        raise InvalidInput(
            f"dtype {image.dtype} has no OME pixel type (OME knows {', '.join(_PIXEL_TYPES)})"
        )
    ET.register_namespace("", _NS)
    q = f"{{{_NS}}}"
    ome = ET.Element(f"{q}OME")
    ome.set(f"{{{_XSI}}}schemaLocation", f"{_NS} {_NS}/ome.xsd")
    ome.set("Creator", "quantscope")
    pos = image.position
    if pos is not None:
        plate = _set(ET.SubElement(ome, f"{q}Plate"), ID="Plate:0", Name=pos.plate)
        well = _set(ET.SubElement(plate, f"{q}Well"), ID="Well:0", Column=pos.column, Row=pos.row)
        sample = _set(ET.SubElement(well, f"{q}WellSample"), ID="WellSample:0", Index=pos.field)
        _set(ET.SubElement(sample, f"{q}ImageRef"), ID="Image:0")
    acq = image.acquisition
    has_instrument = acq.instrument is not None or acq.objective is not None
    if has_instrument:
        inst = _set(ET.SubElement(ome, f"{q}Instrument"), ID="Instrument:0")
        if acq.instrument is not None:
            i = acq.instrument
            _set(
                ET.SubElement(inst, f"{q}Microscope"),
                Manufacturer=i.manufacturer,
                Model=i.model,
                Type=i.microscope_type if i.microscope_type in _MICROSCOPE_TYPES else None,
            )
        if acq.objective is not None:
            o = acq.objective
            _set(
                ET.SubElement(inst, f"{q}Objective"),
                Manufacturer=o.manufacturer,
                Model=o.model,
                ID="Objective:0:0",
                Immersion=o.immersion if o.immersion in _IMMERSIONS else None,
                LensNA=o.lens_na,
                NominalMagnification=o.nominal_magnification,
            )
    img = _set(ET.SubElement(ome, f"{q}Image"), ID="Image:0", Name=image.name)
    if acq.acquired_at is not None:
        ET.SubElement(img, f"{q}AcquisitionDate").text = acq.acquired_at.isoformat()
    if has_instrument:
        _set(ET.SubElement(img, f"{q}InstrumentRef"), ID="Instrument:0")
        if acq.objective is not None:
            _set(ET.SubElement(img, f"{q}ObjectiveSettings"), ID="Objective:0:0")
    t, c, z, y, x = image.shape
    pixels = _set(
        ET.SubElement(img, f"{q}Pixels"),
        ID="Pixels:0",
        DimensionOrder="XYZCT",
        Type=_PIXEL_TYPES[image.dtype],
        SizeX=x,
        SizeY=y,
        SizeZ=z,
        SizeC=c,
        SizeT=t,
        PhysicalSizeX=image.physical_size_x_um,
        PhysicalSizeY=image.physical_size_y_um,
        PhysicalSizeZ=image.physical_size_z_um,
        TimeIncrement=acq.time_increment_s,
    )
    for ch in image.channels:
        _set(
            ET.SubElement(pixels, f"{q}Channel"),
            ID=f"Channel:0:{ch.index}",
            Name=ch.name,
            SamplesPerPixel=1,
            Color=_color(ch.color),
            ExcitationWavelength=ch.excitation_wavelength_nm,
            EmissionWavelength=ch.emission_wavelength_nm,
            Fluor=ch.fluor,
        )
    ET.SubElement(pixels, f"{q}MetadataOnly")
    ET.indent(ome)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(ome, encoding="unicode") + "\n"
