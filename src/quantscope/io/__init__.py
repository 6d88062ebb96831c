"""Readers (tifffile and bioio plugins behind one function) and the OME-Zarr writer."""

from ._formats import (
    FORMATS,
    Detected,
    Format,
    detect_format,
    installed_formats,
    supported_formats_text,
)
from ._plate import next_field_slot, write_plate_groups
from ._sources import SourceImage, open_sources
from ._zarr_reader import OmeZarrPlanes, UnsupportedLayout
from ._zarr_writer import (
    ChannelDisplay,
    ImageSpec,
    ManifestEntry,
    WriteResult,
    pyramid_shapes,
    write_image,
)

__all__ = [
    "FORMATS",
    "ChannelDisplay",
    "Detected",
    "Format",
    "ImageSpec",
    "ManifestEntry",
    "OmeZarrPlanes",
    "SourceImage",
    "UnsupportedLayout",
    "WriteResult",
    "detect_format",
    "installed_formats",
    "next_field_slot",
    "open_sources",
    "pyramid_shapes",
    "supported_formats_text",
    "write_image",
    "write_plate_groups",
]
