"""Metadata: OME metadata onto quantscope's model (units converted), OME-XML out, sidecars,
annotation keys (REMBI), tier completeness (NBO, REMBI) and standard exports."""

from ._keys import (
    CUSTOM_PREFIX,
    KeySpec,
    ParsedValue,
    annotation_keys,
    key_spec,
    parse_quantity,
    parse_value,
    suggest_key,
)
from ._ome import (
    ImageMetadata,
    frequency_mhz,
    from_ome,
    length_um,
    power_mw,
    pressure_mbar,
    temperature_c,
    time_s,
    voltage_v,
    wavelength_nm,
)
from ._ome_xml import image_to_ome_xml
from ._sidecar import (
    SIDECAR_NAMES,
    Selector,
    Sidecar,
    SidecarEntry,
    find_sidecars,
    load_sidecar,
    parse_sidecar_text,
)

__all__ = [
    "CUSTOM_PREFIX",
    "SIDECAR_NAMES",
    "ImageMetadata",
    "KeySpec",
    "ParsedValue",
    "Selector",
    "Sidecar",
    "SidecarEntry",
    "annotation_keys",
    "find_sidecars",
    "frequency_mhz",
    "from_ome",
    "image_to_ome_xml",
    "key_spec",
    "length_um",
    "load_sidecar",
    "parse_quantity",
    "parse_sidecar_text",
    "parse_value",
    "power_mw",
    "pressure_mbar",
    "suggest_key",
    "temperature_c",
    "time_s",
    "voltage_v",
    "wavelength_nm",
]
