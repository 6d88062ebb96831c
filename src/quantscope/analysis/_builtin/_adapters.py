"""Optional adapters for deep-learning segmenters: Cellpose and StarDist.

They load weights from a path the user gives (no download at run time) and are listed as
unavailable, with the reason, where the library is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ...errors import NotFound
from .._tool import BaseTool, PixelSizeUse, Port, ToolContext, files_digest
from . import BUILTIN_VERSION

__all__ = ["CellposeParams", "CellposeSegment", "StarDistParams", "StarDistSegment"]


def _weights(path: Path, tool: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise NotFound(
            f"{tool}: weights not found at {p}; give the path of a model you have downloaded "
            "(quantscope never downloads weights at run time)"
        )
    return p


class CellposeParams(BaseModel):
    """Parameters of ``cellpose``."""

    model_config = ConfigDict(extra="forbid")

    weights: Path = Field(description="path of a Cellpose model file (pretrained_model)")
    diameter_px: float | None = Field(
        None,
        gt=0,
        description="typical object diameter; null: the model's own estimate",
        json_schema_extra={"unit": "px"},
    )
    flow_threshold: float = Field(0.4, ge=0.0, le=3.0, description="maximum flow error")
    cellprob_threshold: float = Field(0.0, ge=-6.0, le=6.0, description="cell probability cut")
    gpu: bool = Field(False, description="use a GPU where torch sees one")


class CellposeSegment(BaseTool):
    """Cellpose (Stringer et al. 2021, :doi:`10.1038/s41592-020-01018-x`) with local weights."""

    name: ClassVar[str] = "cellpose"
    version: ClassVar[str] = BUILTIN_VERSION
    summary: ClassVar[str] = "Cellpose segmentation with weights from a local path (optional)"
    inputs: ClassVar[tuple[Port, ...]] = (Port("image", "image", "channel to segment"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("labels", "labels", "objects"),)
    Parameters: ClassVar[type[BaseModel] | None] = CellposeParams
    pixel_size: ClassVar[PixelSizeUse] = "unused"  # diameter_px is in pixels
    requires: ClassVar[tuple[str, ...]] = ("cellpose",)

    def data_identity(self, params: BaseModel | None) -> str | None:
        assert isinstance(params, CellposeParams)
        return files_digest(_weights(params.weights, self.name))

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        import numpy as np
        from cellpose import models  # type: ignore[import-not-found]

        assert isinstance(params, CellposeParams)
        model = models.CellposeModel(
            pretrained_model=str(_weights(params.weights, self.name)), gpu=params.gpu
        )
        masks, *_ = model.eval(
            np.asarray(inputs["image"]),
            diameter=params.diameter_px,
            flow_threshold=params.flow_threshold,
            cellprob_threshold=params.cellprob_threshold,
        )
        return {"labels": np.asarray(masks, dtype=np.int32)}


class StarDistParams(BaseModel):
    """Parameters of ``stardist``."""

    model_config = ConfigDict(extra="forbid")

    weights: Path = Field(description="folder of a StarDist2D model (config.json + weights)")
    prob_thresh: float | None = Field(
        None, ge=0.0, le=1.0, description="probability threshold; null: the model's own"
    )
    nms_thresh: float | None = Field(
        None, ge=0.0, le=1.0, description="overlap threshold; null: the model's own"
    )
    normalize_low: float = Field(1.0, ge=0.0, le=100.0, description="low percentile")
    normalize_high: float = Field(99.8, ge=0.0, le=100.0, description="high percentile")


class StarDistSegment(BaseTool):
    """StarDist 2-D (Schmidt et al. 2018, :doi:`10.1007/978-3-030-00934-2_30`) with local
    weights."""

    name: ClassVar[str] = "stardist"
    version: ClassVar[str] = BUILTIN_VERSION
    summary: ClassVar[str] = (
        "StarDist nuclei segmentation with a model from a local folder (optional)"
    )
    inputs: ClassVar[tuple[Port, ...]] = (Port("image", "image", "nuclear stain"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("labels", "labels", "nuclei"),)
    Parameters: ClassVar[type[BaseModel] | None] = StarDistParams
    pixel_size: ClassVar[PixelSizeUse] = "unused"
    requires: ClassVar[tuple[str, ...]] = ("stardist", "csbdeep")

    def data_identity(self, params: BaseModel | None) -> str | None:
        assert isinstance(params, StarDistParams)
        return files_digest(_weights(params.weights, self.name))

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        import numpy as np
        from csbdeep.utils import normalize  # type: ignore[import-not-found]
        from stardist.models import StarDist2D  # type: ignore[import-not-found]

        assert isinstance(params, StarDistParams)
        folder = _weights(params.weights, self.name)
        model = StarDist2D(None, name=folder.name, basedir=str(folder.parent))
        img = normalize(np.asarray(inputs["image"]), params.normalize_low, params.normalize_high)
        labels, _ = model.predict_instances(
            img, prob_thresh=params.prob_thresh, nms_thresh=params.nms_thresh
        )
        return {"labels": np.asarray(labels, dtype=np.int32)}
