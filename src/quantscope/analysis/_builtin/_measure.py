"""Per-object measurements with CellProfiler-compatible names, and per-image aggregates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .._tool import BaseTool, Port, ToolContext

__all__ = ["Measure", "MeasureParams"]


class MeasureParams(BaseModel):
    """Parameters of ``measure``."""

    model_config = ConfigDict(extra="forbid")

    families: list[str] | None = Field(
        None,
        description=(
            "measurement families to compute (shape, intensity, texture, granularity, "
            "radial, neighbors, ...); null: the library's full default set"
        ),
    )
    physical_units: bool = Field(
        False,
        description=(
            "report sizes in µm (µm²) using the image's pixel size instead of pixels, as "
            "CellProfiler does not by default"
        ),
    )


class Measure(BaseTool):
    """Per-object shape, intensity, texture, granularity, radial-distribution and neighbour
    features (CellProfiler names: ``AreaShape_*``, ``Intensity_*_<channel>``, ...), one row per
    object, and the per-image summary (object count, means).

    The features themselves and their references are documented in
    :func:`quantscope.analysis.measure_objects`.
    """

    name: ClassVar[str] = "measure"
    version: ClassVar[str] = "1.0"
    summary: ClassVar[str] = (
        "Per-object features with CellProfiler names (shape, intensity, texture, granularity, "
        "radial distribution, neighbors) and per-image aggregates"
    )
    inputs: ClassVar[tuple[Port, ...]] = (
        Port("labels", "labels", "objects to measure"),
        Port("images", "image", "channels to measure intensities in", many=True, optional=True),
    )
    outputs: ClassVar[tuple[Port, ...]] = (
        Port("table", "table", "one row per object"),
        Port("summary", "table", "one row for the image: count and means"),
    )
    Parameters: ClassVar[type[BaseModel] | None] = MeasureParams

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        import pandas as pd

        from .._features import measure_objects, summarize_image

        assert isinstance(params, MeasureParams)
        kwargs: dict[str, Any] = {}
        if params.families is not None:
            kwargs["families"] = tuple(params.families)
        if params.physical_units and ctx.pixel_size_um is not None:
            kwargs["spacing"] = (ctx.pixel_size_um, ctx.pixel_size_um)
        images = dict(inputs.get("images") or {})
        table = measure_objects(inputs["labels"], images=images, **kwargs)
        summary = pd.DataFrame([summarize_image(table)])
        return {"table": table, "summary": summary}
