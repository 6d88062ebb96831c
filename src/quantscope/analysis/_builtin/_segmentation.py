"""Segmentation tools: nuclei (classical), cells from nuclei seeds, cytoplasm.

The algorithms live in :mod:`quantscope.analysis._segment` and its helper modules
``_threshold`` and ``_morphology``; these wrappers give them the Tool interface. Parameters are
that module's pydantic models, imported when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from ...errors import InvalidInput
from .._tool import BaseTool, PixelSizeUse, Port, ToolContext, pixel_size_message
from . import BUILTIN_VERSION

__all__ = ["Cytoplasm", "SegmentCells", "SegmentNuclei"]

_SEGMENT = "quantscope.analysis._segment"
#: Every module whose source makes up the segmentation: a change to any of them recomputes.
_SEGMENT_CODE = (
    _SEGMENT,
    "quantscope.analysis._threshold",
    "quantscope.analysis._morphology",
)


def _need_pixel_size(tool: str, ctx: ToolContext) -> None:
    if ctx.pixel_size_um is None:
        raise InvalidInput(pixel_size_message(tool, ctx.image_id))


class SegmentNuclei(BaseTool):
    """Nuclei from a nuclear stain: smoothing, automatic threshold, distance-transform markers,
    watershed, size and border filters; sizes in µm (the step fails where no pixel size is
    known: set the image's, or give the run or the pipeline one)."""

    name: ClassVar[str] = "segment-nuclei"
    version: ClassVar[str] = BUILTIN_VERSION
    summary: ClassVar[str] = (
        "Classical nuclei segmentation: smoothing, Otsu/Li/local threshold, marker watershed, "
        "size and border filters (µm)"
    )
    inputs: ClassVar[tuple[Port, ...]] = (Port("image", "image", "nuclear stain (DAPI, Hoechst)"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("labels", "labels", "nuclei, 1..N"),)
    parameters_ref: ClassVar[str | None] = f"{_SEGMENT}:NucleiParams"
    pixel_size: ClassVar[PixelSizeUse] = "required"
    code_modules: ClassVar[tuple[str, ...]] = _SEGMENT_CODE

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        from .._segment import NucleiParams, segment_nuclei

        assert isinstance(params, NucleiParams)
        _need_pixel_size(self.name, ctx)
        labels = segment_nuclei(inputs["image"], params=params, pixel_size_um=ctx.pixel_size_um)
        return {"labels": labels}


class SegmentCells(BaseTool):
    """Cells grown from nuclei seeds on a cytoplasm channel (propagation / seeded watershed, as
    CellProfiler's IdentifySecondaryObjects)."""

    name: ClassVar[str] = "segment-cells"
    version: ClassVar[str] = BUILTIN_VERSION
    summary: ClassVar[str] = (
        "Cells from nuclei seeds on a cytoplasm channel (propagation / watershed)"
    )
    inputs: ClassVar[tuple[Port, ...]] = (
        Port("nuclei", "labels", "nuclei (seeds)"),
        Port("image", "image", "cytoplasm or cell-body stain"),
    )
    outputs: ClassVar[tuple[Port, ...]] = (
        Port("labels", "labels", "cells, numbered as their nuclei"),
    )
    parameters_ref: ClassVar[str | None] = f"{_SEGMENT}:CellParams"
    pixel_size: ClassVar[PixelSizeUse] = "required"
    code_modules: ClassVar[tuple[str, ...]] = _SEGMENT_CODE

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        from .._segment import CellParams, segment_cells

        assert isinstance(params, CellParams)
        _need_pixel_size(self.name, ctx)
        labels = segment_cells(
            inputs["nuclei"], inputs["image"], params=params, pixel_size_um=ctx.pixel_size_um
        )
        return {"labels": labels}


class Cytoplasm(BaseTool):
    """Cytoplasm: each cell minus its nucleus (CellProfiler's IdentifyTertiaryObjects)."""

    name: ClassVar[str] = "cytoplasm"
    version: ClassVar[str] = BUILTIN_VERSION
    summary: ClassVar[str] = "Cytoplasm = cell minus nucleus, numbered as the cell"
    inputs: ClassVar[tuple[Port, ...]] = (
        Port("cells", "labels", "cells"),
        Port("nuclei", "labels", "nuclei"),
    )
    outputs: ClassVar[tuple[Port, ...]] = (Port("labels", "labels", "cytoplasm"),)
    pixel_size: ClassVar[PixelSizeUse] = "unused"
    code_modules: ClassVar[tuple[str, ...]] = _SEGMENT_CODE

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        from .._segment import cytoplasm

        return {"labels": cytoplasm(inputs["cells"], inputs["nuclei"])}
