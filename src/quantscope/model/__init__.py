"""Frozen pydantic models of images, channels, acquisition and plate positions. No I/O."""

from ._image import (
    Acquisition,
    Channel,
    Image,
    Instrument,
    Objective,
    PlatePosition,
    SourceFile,
    parse_well,
    well_name,
)

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
