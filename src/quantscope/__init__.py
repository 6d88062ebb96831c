"""quantscope: quantitative cell imaging — read any microscope file, store OME-Zarr in a
queryable catalog, measure quality, segment and measure cells with provenance, benchmark tools.

The names below are loaded on first use, so ``import quantscope`` stays cheap (the command line
starts in well under a second).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Repository": "quantscope.catalog",
    "ingest": "quantscope.ingestion",
    "verify": "quantscope.ingestion",
    "IngestReport": "quantscope.ingestion",
    "open_sources": "quantscope.io",
    "detect_format": "quantscope.io",
    "write_image": "quantscope.io",
    "synth_plate": "quantscope.synth",
    "SynthOptions": "quantscope.synth",
    "Image": "quantscope.model",
    "Channel": "quantscope.model",
    "PlatePosition": "quantscope.model",
    "QuantscopeError": "quantscope.errors",
    "run_pipeline": "quantscope.analysis",
    "load_pipeline": "quantscope.analysis",
    "segment_nuclei": "quantscope.analysis",
    "measure_objects": "quantscope.analysis",
    "score_instances": "quantscope.benchmark",
    "lineage": "quantscope.provenance",
}

__all__ = [
    "Channel",
    "Image",
    "IngestReport",
    "PlatePosition",
    "QuantscopeError",
    "Repository",
    "SynthOptions",
    "__version__",
    "detect_format",
    "ingest",
    "lineage",
    "load_pipeline",
    "measure_objects",
    "open_sources",
    "run_pipeline",
    "score_instances",
    "segment_nuclei",
    "synth_plate",
    "verify",
    "write_image",
]

if TYPE_CHECKING:
    from .analysis import load_pipeline, measure_objects, run_pipeline, segment_nuclei
    from .benchmark import score_instances
    from .catalog import Repository
    from .errors import QuantscopeError
    from .ingestion import IngestReport, ingest, verify
    from .io import detect_format, open_sources, write_image
    from .model import Channel, Image, PlatePosition
    from .provenance import lineage
    from .synth import SynthOptions, synth_plate


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quantscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
