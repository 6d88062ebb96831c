"""Mapping vendor and OME metadata onto quantscope's model, with units converted."""

from ._ome import ImageMetadata, from_ome, length_um, time_s, wavelength_nm
from ._ome_xml import image_to_ome_xml

__all__ = ["ImageMetadata", "from_ome", "image_to_ome_xml", "length_um", "time_s", "wavelength_nm"]
