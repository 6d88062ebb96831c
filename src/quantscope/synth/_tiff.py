"""OME-XML for the synthetic images and atomic TIFF / text writes.

The OME-XML is built with ome-types and stored as the ImageDescription of the first IFD; the
pixel planes are written by tifffile as one page per channel (``DimensionOrder="XYCZT"``, one
``TiffData`` per plane). Nothing time-dependent (dates, UUIDs) is written, so the same pixels
and options give byte-identical files.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import numpy as np
import numpy.typing as npt

__all__ = [
    "FieldInfo",
    "build_ome_xml",
    "channel_spectrum",
    "ome_xml",
    "write_atomic",
    "write_label_tiff",
    "write_ome_tiff",
]

# name (upper case, alphanumerics only) -> excitation nm, emission nm, RGB display colour
_SPECTRA: dict[str, tuple[float, float, tuple[int, int, int]]] = {
    "DAPI": (405.0, 450.0, (0, 0, 255)),
    "HOECHST": (405.0, 461.0, (0, 0, 255)),
    "GFP": (488.0, 525.0, (0, 255, 0)),
    "FITC": (488.0, 525.0, (0, 255, 0)),
    "ALEXA488": (488.0, 519.0, (0, 255, 0)),
    "YFP": (514.0, 540.0, (255, 255, 0)),
    "CY3": (561.0, 570.0, (255, 128, 0)),
    "TRITC": (561.0, 576.0, (255, 128, 0)),
    "RFP": (561.0, 590.0, (255, 0, 0)),
    "MCHERRY": (561.0, 610.0, (255, 0, 0)),
    "TEXASRED": (561.0, 615.0, (255, 0, 0)),
    "ALEXA568": (561.0, 603.0, (255, 0, 0)),
    "CY5": (640.0, 670.0, (255, 0, 255)),
    "ALEXA647": (640.0, 668.0, (255, 0, 255)),
}
_EXPOSURE_MS = (50.0, 100.0)  # nuclear stain, other stains


def channel_spectrum(name: str) -> tuple[float, float, tuple[int, int, int]] | None:
    """Excitation and emission wavelength (nm) and display colour of a known stain name."""
    key = "".join(ch for ch in name.upper() if ch.isalnum())
    return _SPECTRA.get(key)


@dataclass(frozen=True)
class FieldInfo:
    """Where an image sits in the plate, for the OME Plate/Well/WellSample elements."""

    plate_name: str
    plate_rows: int
    plate_columns: int
    row: int  # 0-based
    column: int  # 0-based
    field: int  # 0-based
    fields_per_well: int


# Marks in the cached XML templates, replaced per file (names cannot contain "@").
_NAME_MARK = "@image-name@"
_ROW_MARK, _COLUMN_MARK, _FIELD_MARK = 60001, 60002, 60003


def ome_xml(
    *,
    name: str,
    channels: Sequence[str],
    channel_indices: Sequence[int],
    size_y: int,
    size_x: int,
    dtype: str,
    pixel_size_um: float,
    plate: FieldInfo | None = None,
) -> str:
    """OME-XML of one image with ``len(channels)`` planes (C, 1 Z, 1 T).

    Same result as :func:`build_ome_xml`, from a cached template (ome-types serialization
    costs ~20 ms per document; a plate has many files that differ only in name and position).
    """
    plate_key = None
    if plate is not None:
        plate_key = (plate.plate_name, plate.plate_rows, plate.plate_columns, plate.fields_per_well)
    xml = _template(
        tuple(channels), tuple(channel_indices), size_y, size_x, dtype, pixel_size_um, plate_key
    )
    if plate is not None:
        r, c, f = plate.row, plate.column, plate.field
        for old, new in (
            (f'"WellSample:{_ROW_MARK}:{_COLUMN_MARK}:{_FIELD_MARK}"', f'"WellSample:{r}:{c}:{f}"'),
            (f'"Well:{_ROW_MARK}:{_COLUMN_MARK}"', f'"Well:{r}:{c}"'),
            (f'Row="{_ROW_MARK}"', f'Row="{r}"'),
            (f'Column="{_COLUMN_MARK}"', f'Column="{c}"'),
            (f'Index="{_FIELD_MARK}"', f'Index="{f}"'),
        ):
            xml = xml.replace(old, new)
    return xml.replace(f'Name="{_NAME_MARK}"', f'Name="{xml_escape(name, {chr(34): "&quot;"})}"')


@functools.lru_cache(maxsize=32)
def _template(
    channels: tuple[str, ...],
    channel_indices: tuple[int, ...],
    size_y: int,
    size_x: int,
    dtype: str,
    pixel_size_um: float,
    plate_key: tuple[str, int, int, int] | None,
) -> str:
    plate = None
    if plate_key is not None:
        name, rows, columns, fields = plate_key
        plate = FieldInfo(name, rows, columns, _ROW_MARK, _COLUMN_MARK, _FIELD_MARK, fields)
    return build_ome_xml(
        name=_NAME_MARK,
        channels=channels,
        channel_indices=channel_indices,
        size_y=size_y,
        size_x=size_x,
        dtype=dtype,
        pixel_size_um=pixel_size_um,
        plate=plate,
    )


def build_ome_xml(
    *,
    name: str,
    channels: Sequence[str],
    channel_indices: Sequence[int],
    size_y: int,
    size_x: int,
    dtype: str,
    pixel_size_um: float,
    plate: FieldInfo | None = None,
) -> str:
    """OME-XML of one image with ``len(channels)`` planes (C, 1 Z, 1 T).

    Parameters
    ----------
    name : str
        Image name, e.g. ``"synth_A01_s1"``.
    channels : sequence of str
        Channel names of the planes in this file.
    channel_indices : sequence of int
        Index of each channel in the acquisition (sets the exposure time: channel 0 is the
        nuclear stain).
    size_y, size_x : int
        Image size, px.
    dtype : str
        ``"uint16"`` or ``"uint8"``.
    pixel_size_um : float
        PhysicalSizeX and PhysicalSizeY, µm.
    plate : FieldInfo, optional
        When given, an OME Plate with one Well and one WellSample (``Index`` = 0-based field)
        referencing the image, and a PlateAcquisition giving the number of fields per well.
    """
    from ome_types import model as m
    from ome_types import to_xml

    instrument = m.Instrument(
        id="Instrument:0",
        microscope=m.Microscope(
            manufacturer="quantscope", model="synthetic widefield", type=m.Microscope_Type.INVERTED
        ),
        detectors=[
            m.Detector(id="Detector:0:0", type=m.Detector_Type.CMOS, model="synthetic sCMOS")
        ],
        objectives=[
            m.Objective(
                id="Objective:0:0",
                manufacturer="quantscope",
                model="synthetic 20x/0.75 Plan Apo",
                nominal_magnification=20.0,
                lens_na=0.75,
                immersion=m.Objective_Immersion.AIR,
                correction=m.Objective_Correction.PLAN_APO,
                working_distance=1.0,
                working_distance_unit=m.UnitsLength.MILLIMETER,
            )
        ],
    )
    ome_channels = []
    planes = []
    tiff_data = []
    for plane, (channel, index) in enumerate(zip(channels, channel_indices, strict=True)):
        spectrum = channel_spectrum(channel)
        extra: dict[str, Any] = {}
        if spectrum is not None:
            extra = {
                "excitation_wavelength": spectrum[0],
                "excitation_wavelength_unit": m.UnitsLength.NANOMETER,
                "emission_wavelength": spectrum[1],
                "emission_wavelength_unit": m.UnitsLength.NANOMETER,
                "color": m.Color(spectrum[2]),
            }
        ome_channels.append(
            m.Channel(
                id=f"Channel:0:{plane}",
                name=channel,
                samples_per_pixel=1,
                illumination_type=m.Channel_IlluminationType.EPIFLUORESCENCE,
                acquisition_mode=m.Channel_AcquisitionMode.WIDE_FIELD,
                contrast_method=m.Channel_ContrastMethod.FLUORESCENCE,
                detector_settings=m.DetectorSettings(id="Detector:0:0", binning=m.Binning.TWOBYTWO),
                **extra,
            )
        )
        planes.append(
            m.Plane(
                the_c=plane,
                the_z=0,
                the_t=0,
                exposure_time=_EXPOSURE_MS[0 if index == 0 else 1],
                exposure_time_unit=m.UnitsTime.MILLISECOND,
            )
        )
        tiff_data.append(m.TiffData(ifd=plane, first_c=plane, first_z=0, first_t=0, plane_count=1))
    pixels = m.Pixels(
        id="Pixels:0",
        dimension_order=m.Pixels_DimensionOrder.XYCZT,
        type=m.PixelType(dtype),
        significant_bits=np.dtype(dtype).itemsize * 8,
        big_endian=False,
        size_x=size_x,
        size_y=size_y,
        size_c=len(ome_channels),
        size_z=1,
        size_t=1,
        physical_size_x=pixel_size_um,
        physical_size_x_unit=m.UnitsLength.MICROMETER,
        physical_size_y=pixel_size_um,
        physical_size_y_unit=m.UnitsLength.MICROMETER,
        channels=ome_channels,
        tiff_data_blocks=tiff_data,
        planes=planes,
    )
    image = m.Image(
        id="Image:0",
        name=name,
        instrument_ref=m.InstrumentRef(id="Instrument:0"),
        objective_settings=m.ObjectiveSettings(
            id="Objective:0:0", medium=m.ObjectiveSettings_Medium.AIR
        ),
        pixels=pixels,
    )
    plates = []
    if plate is not None:
        sample_id = f"WellSample:{plate.row}:{plate.column}:{plate.field}"
        plates.append(
            m.Plate(
                id="Plate:0",
                name=plate.plate_name,
                rows=plate.plate_rows,
                columns=plate.plate_columns,
                row_naming_convention=m.NamingConvention.LETTER,
                column_naming_convention=m.NamingConvention.NUMBER,
                wells=[
                    m.Well(
                        id=f"Well:{plate.row}:{plate.column}",
                        row=plate.row,
                        column=plate.column,
                        well_samples=[
                            m.WellSample(
                                id=sample_id,
                                index=plate.field,
                                image_ref=m.ImageRef(id="Image:0"),
                            )
                        ],
                    )
                ],
                plate_acquisitions=[
                    m.PlateAcquisition(
                        id="PlateAcquisition:0",
                        maximum_field_count=plate.fields_per_well,
                        well_sample_refs=[m.WellSampleRef(id=sample_id)],
                    )
                ],
            )
        )
    ome = m.OME(creator="quantscope.synth", instruments=[instrument], images=[image], plates=plates)
    return to_xml(ome)


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Write a file through a temporary name in the same folder, then rename it into place.

    Parameters
    ----------
    path : pathlib.Path
        Final file name.
    write : callable
        Called with the temporary file name (an empty file that it overwrites).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _resolution(pixel_size_um: float) -> dict[str, Any]:
    # TIFF resolution tags in pixels per centimetre, for readers that ignore OME-XML.
    per_cm = 1e4 / pixel_size_um
    return {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}


def write_ome_tiff(path: Path, pixels: npt.NDArray[Any], xml: str, pixel_size_um: float) -> None:
    """Write ``(C, Y, X)`` pixels as an OME-TIFF (one page per plane) with ``xml``, atomically."""
    import tifffile

    def write(tmp: str) -> None:
        tifffile.imwrite(
            tmp,
            pixels,
            photometric="minisblack",
            description=xml.encode("utf-8"),
            metadata=None,
            software="quantscope.synth",
            **_resolution(pixel_size_um),
        )

    write_atomic(path, write)


def write_label_tiff(path: Path, labels: npt.NDArray[Any], pixel_size_um: float) -> None:
    """Write a ``(Y, X)`` label image as a plain zlib-compressed TIFF, atomically."""
    import tifffile

    def write(tmp: str) -> None:
        tifffile.imwrite(
            tmp,
            labels,
            photometric="minisblack",
            compression="zlib",
            metadata=None,
            software="quantscope.synth",
            **_resolution(pixel_size_um),
        )

    write_atomic(path, write)
