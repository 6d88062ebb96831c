"""Per-object measurements with CellProfiler-compatible names, and per-image aggregates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .._tool import BaseTool, Port, ToolContext
from . import BUILTIN_VERSION

__all__ = ["Measure", "MeasureParams"]


class MeasureParams(BaseModel):
    """Parameters of ``measure`` (those of :func:`quantscope.analysis.measure_objects`)."""

    model_config = ConfigDict(extra="forbid")

    families: list[str] | None = Field(
        None,
        description=(
            "measurement families to compute (shape, intensity, texture, granularity, "
            "radial, neighbors); null: all of them"
        ),
    )
    texture_scale: int = Field(
        3,
        ge=1,
        le=64,
        description="Haralick co-occurrence distance",
        json_schema_extra={"unit": "px"},
    )
    texture_gray_levels: int = Field(256, ge=2, le=256, description="grey levels for texture")
    granularity_spectrum_length: int = Field(
        16, ge=1, le=64, description="granularity spectrum length (MeasureGranularity)"
    )
    granularity_element_size: int = Field(
        10,
        ge=1,
        le=256,
        description="granularity background structuring element radius",
        json_schema_extra={"unit": "px"},
    )
    radial_bins: int = Field(4, ge=1, le=32, description="radial distribution rings")
    neighbor_distance: int | None = Field(
        None,
        ge=0,
        description="neighbour distance; null: touching objects",
        json_schema_extra={"unit": "px"},
    )
    zernike: bool = Field(True, description="Zernike shape features")
    moments: bool = Field(True, description="image-moment shape features")
    physical_units: bool = Field(
        False,
        description=(
            "shape lengths in µm and areas in µm² from the image's pixel size (CellProfiler "
            "reports pixels)"
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
    version: ClassVar[str] = BUILTIN_VERSION
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
    code_modules: ClassVar[tuple[str, ...]] = ("quantscope.analysis._features",)

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        import pandas as pd

        from .._features import measure_objects, summarize_image

        assert isinstance(params, MeasureParams)
        kwargs: dict[str, Any] = params.model_dump(exclude={"families", "physical_units"})
        if params.families is not None:
            kwargs["families"] = tuple(params.families)
        if params.physical_units:
            if ctx.pixel_size_um is None:
                from ...errors import InvalidInput
                from .._tool import pixel_size_message

                raise InvalidInput(
                    pixel_size_message(self.name, ctx.image_id)
                    + "; or measure in pixels (physical_units: false)"
                )
            kwargs["spacing"] = ctx.pixel_size_um
        images = dict(inputs.get("images") or {})
        table = measure_objects(inputs["labels"], images=images, **kwargs)
        summary = pd.DataFrame([summarize_image(table)])
        return {"table": table, "summary": summary}
