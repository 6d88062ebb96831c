"""Model weights given by path are part of a step's cache key: new weights at the same path
recompute (the Cellpose/StarDist adapters' weights were keyed by path only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from _analysis_support import fixture_repo
from quantscope.analysis import (
    BaseTool,
    Port,
    parse_pipeline,
    register_tool,
    run_pipeline,
    unregister_tool,
)
from quantscope.analysis._builtin._adapters import CellposeParams, CellposeSegment
from quantscope.analysis._tool import files_digest


class WeightsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: Path


class Weighted(BaseTool):
    """Thresholds at the percentile written in its 'weights' file."""

    name: ClassVar[str] = "test-weighted"
    version: ClassVar[str] = "1.0"
    inputs: ClassVar[tuple[Port, ...]] = (Port("image", "image"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("labels", "labels"),)
    Parameters: ClassVar[type[BaseModel] | None] = WeightsParams
    pixel_size: ClassVar[Any] = "unused"

    def data_identity(self, params: BaseModel | None) -> str | None:
        assert isinstance(params, WeightsParams)
        return files_digest(params.weights)

    def run(self, inputs: Mapping[str, Any], params: BaseModel, ctx: Any) -> Mapping[str, Any]:
        assert isinstance(params, WeightsParams)
        pct = float(params.weights.read_text())
        img = np.asarray(inputs["image"], dtype=np.float32)
        return {"labels": (img > np.percentile(img, pct)).astype(np.int32)}


PIPELINE = """\
name: weighted
channels:
  DNA: [DAPI, 0]
steps:
  - id: seg
    tool: test-weighted
    inputs: {image: DNA}
    parameters: {weights: %s}
    outputs: {labels: Mask}
"""


def test_new_weights_at_the_same_path_recompute(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    weights = tmp_path / "model.txt"
    weights.write_text("50")
    gen = fixture_repo(tmp_path_factory, tmp_path)
    repo = next(gen)
    register_tool(Weighted(), replace=True)
    try:
        spec = parse_pipeline(PIPELINE % weights)
        first = run_pipeline(repo, spec)
        assert first.ok and first.computed == 3
        assert run_pipeline(repo, spec).computed == 0
        weights.write_text("90")  # retrained model, same file name
        again = run_pipeline(repo, parse_pipeline(PIPELINE % weights))
        assert again.ok and (again.computed, again.reused) == (3, 0)
    finally:
        unregister_tool("test-weighted")
        gen.close()


def test_files_digest_covers_every_file_of_a_model_folder(tmp_path: Path) -> None:
    model = tmp_path / "stardist"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "weights.h5").write_bytes(b"\0" * 10)
    before = files_digest(model)
    (model / "sub" / "weights.h5").write_bytes(b"\1" * 10)
    assert files_digest(model) != before
    tool = CellposeSegment()
    assert tool.data_identity(CellposeParams(weights=model / "config.json")) == files_digest(
        model / "config.json"
    )
