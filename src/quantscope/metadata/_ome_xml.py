"""Write quantscope's model of an image as OME-XML (2016-06 schema) with ome-types."""

from __future__ import annotations

from typing import Any

from ..model import Image

__all__ = ["image_to_ome_xml"]

_PIXEL_TYPES = {
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "float32": "float",
    "float64": "double",
    "bool": "bit",
}


def _pixel_type(dtype: str) -> Any:
    if dtype not in _PIXEL_TYPES:
        from ..errors import InvalidInput

        raise InvalidInput(
            f"dtype {dtype} has no OME pixel type (OME knows {', '.join(_PIXEL_TYPES)})"
        )
    from ome_types.model import PixelType

    return PixelType(_PIXEL_TYPES[dtype])


def _enum(kind: Any, value: str | None) -> Any:
    """The OME enumeration member named ``value``, or None when OME has no such member."""
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return None


def _color(hex6: str | None) -> Any:
    if not hex6:
        return None
    from ome_types.model import Color

    return Color(f"#{hex6}")


def image_to_ome_xml(image: Image) -> str:
    """OME-XML describing ``image`` (pixels metadata only, no pixel data)."""
    from ome_types import OME
    from ome_types import model as m

    t, c, z, y, x = image.shape
    channels = []
    for ch in image.channels:
        extra = {"color": _color(ch.color)} if ch.color else {}
        channels.append(
            m.Channel(
                id=f"Channel:0:{ch.index}",
                name=ch.name,
                excitation_wavelength=ch.excitation_wavelength_nm,
                emission_wavelength=ch.emission_wavelength_nm,
                fluor=ch.fluor,
                samples_per_pixel=1,
                **extra,
            )
        )
    pixels = m.Pixels(
        id="Pixels:0",
        dimension_order=m.Pixels_DimensionOrder.XYZCT,
        type=_pixel_type(image.dtype),
        size_t=t,
        size_c=c,
        size_z=z,
        size_y=y,
        size_x=x,
        physical_size_x=image.physical_size_x_um,
        physical_size_y=image.physical_size_y_um,
        physical_size_z=image.physical_size_z_um,
        time_increment=image.acquisition.time_increment_s,
        channels=channels,
        metadata_only=m.MetadataOnly(),
    )
    acq = image.acquisition
    instruments = []
    obj_settings = None
    inst_ref = None
    if acq.instrument is not None or acq.objective is not None:
        inst = m.Instrument(id="Instrument:0")
        if acq.instrument is not None:
            inst.microscope = m.Microscope(
                manufacturer=acq.instrument.manufacturer,
                model=acq.instrument.model,
                type=_enum(m.Microscope_Type, acq.instrument.microscope_type),
            )
        if acq.objective is not None:
            o = acq.objective
            inst.objectives.append(
                m.Objective(
                    id="Objective:0:0",
                    manufacturer=o.manufacturer,
                    model=o.model,
                    nominal_magnification=o.nominal_magnification,
                    lens_na=o.lens_na,
                    immersion=_enum(m.Objective_Immersion, o.immersion),
                )
            )
            obj_settings = m.ObjectiveSettings(id="Objective:0:0")
        instruments.append(inst)
        inst_ref = m.InstrumentRef(id="Instrument:0")
    img = m.Image(
        id="Image:0",
        name=image.name,
        acquisition_date=acq.acquired_at,
        pixels=pixels,
        instrument_ref=inst_ref,
        objective_settings=obj_settings,
    )
    plates = []
    if image.position is not None:
        p = image.position
        plates.append(
            m.Plate(
                id="Plate:0",
                name=p.plate,
                wells=[
                    m.Well(
                        id="Well:0",
                        row=p.row,
                        column=p.column,
                        well_samples=[
                            m.WellSample(
                                id="WellSample:0", index=p.field, image_ref=m.ImageRef(id="Image:0")
                            )
                        ],
                    )
                ],
            )
        )
    ome = OME(images=[img], instruments=instruments, plates=plates, creator="quantscope")
    return ome.to_xml()
