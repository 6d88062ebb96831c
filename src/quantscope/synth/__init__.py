"""Synthetic fluorescence microscopy plates with exact ground truth.

:func:`synth_plate` writes a multi-well plate of widefield-like fluorescence images (OME-TIFF,
a nuclear and a cytoplasmic stain, optional further stains) together with instance label images
of nuclei and cells, a per-object truth table and a manifest. Knobs add the artefacts that
quality control and segmentation benchmarks care about: defocus blur, vignetting, saturation,
noise, touching nuclei and empty fields. Output is deterministic: the same options give
byte-identical files.

Examples
--------
>>> from quantscope.synth import synth_plate
>>> result = synth_plate("plate", plate="2x3", fields=2, size=512, seed=1)  # doctest: +SKIP
>>> result.fields[0].n_objects  # doctest: +SKIP
"""

from __future__ import annotations

from ._options import SynthOptions, parse_plate_shape
from ._plate import SynthField, SynthResult, synth_plate
from ._render import render_field

__all__ = [
    "SynthField",
    "SynthOptions",
    "SynthResult",
    "parse_plate_shape",
    "render_field",
    "synth_plate",
]
