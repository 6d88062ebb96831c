"""Mapping vendor and OME metadata onto quantscope's model, with units converted."""

from ._ome import ImageMetadata, from_ome, length_um, time_s, wavelength_nm

__all__ = ["ImageMetadata", "from_ome", "length_um", "time_s", "wavelength_nm"]
