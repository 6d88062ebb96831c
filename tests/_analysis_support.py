"""Support of the analysis framework tests (no tests here; the test modules import from it): a
small synthetic plate ingested once per session (each test gets its own copy), and tools
registered in process for testing the framework on its own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

from quantscope.analysis import BaseTool, Port, ToolContext, register_tool, unregister_tool
from quantscope.catalog import Repository

FAIL_LIST_ENV = "QUANTSCOPE_TEST_FAIL_IMAGES"


class ThresholdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_area: int = Field(4, ge=0, le=10_000, json_schema_extra={"unit": "px"})


class ThresholdSegment(BaseTool):
    """Otsu threshold + connected components; fails for the image ids listed (comma-separated)
    in the environment variable QUANTSCOPE_TEST_FAIL_IMAGES."""

    name: ClassVar[str] = "test-threshold"
    version: ClassVar[str] = "0.1"
    summary: ClassVar[str] = "test: Otsu + connected components"
    inputs: ClassVar[tuple[Port, ...]] = (Port("image", "image"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("labels", "labels"),)
    Parameters: ClassVar[type[BaseModel] | None] = ThresholdParams

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        from skimage.filters import threshold_otsu
        from skimage.measure import label
        from skimage.morphology import remove_small_objects

        assert isinstance(params, ThresholdParams)
        if ctx.image_id in os.environ.get(FAIL_LIST_ENV, "").split(","):
            raise RuntimeError(f"deliberate test failure on image {ctx.image_id}")
        img = np.asarray(inputs["image"], dtype=np.float32)
        mask = img > threshold_otsu(img)
        mask = remove_small_objects(mask, max_size=params.min_area)
        return {"labels": label(mask).astype(np.int32)}


class AreaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale: float = Field(1.0, gt=0)


class AreaMeasure(BaseTool):
    """Area (x scale), centroid and mean intensity per object."""

    name: ClassVar[str] = "test-area"
    version: ClassVar[str] = "0.1"
    summary: ClassVar[str] = "test: area and centroid"
    inputs: ClassVar[tuple[Port, ...]] = (
        Port("labels", "labels"),
        Port("images", "image", many=True, optional=True),
    )
    outputs: ClassVar[tuple[Port, ...]] = (Port("table", "table"),)
    Parameters: ClassVar[type[BaseModel] | None] = AreaParams

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        import pandas as pd
        from skimage.measure import regionprops_table

        assert isinstance(params, AreaParams)
        props = regionprops_table(inputs["labels"], properties=("label", "area", "centroid"))
        df = pd.DataFrame(
            {
                "ObjectNumber": props["label"],
                "Location_Center_X": props["centroid-1"],
                "Location_Center_Y": props["centroid-0"],
                "AreaShape_Area": props["area"] * params.scale,
            }
        )
        for name, img in (inputs.get("images") or {}).items():
            lab = inputs["labels"]
            sums = np.bincount(lab.ravel(), weights=np.asarray(img, float).ravel())
            counts = np.bincount(lab.ravel())
            df[f"Intensity_MeanIntensity_{name}"] = (sums / np.maximum(counts, 1))[props["label"]]
        return {"table": df}


TEST_PIPELINE = """\
name: test
channels:
  DNA: [DAPI, 0]
steps:
  - id: seg
    tool: test-threshold
    inputs: {image: DNA}
    parameters: {min_area: %(min_area)d}
    outputs: {labels: Nuclei}
  - id: measure
    tool: test-area
    inputs: {labels: Nuclei, images: [DNA]}
    parameters: {scale: %(scale)s}
    outputs: {table: Nuclei_features}
"""


def pipeline_text(min_area: int = 4, scale: float = 1.0) -> str:
    return TEST_PIPELINE % {"min_area": min_area, "scale": scale}


def install_test_tools() -> None:
    """Register ``test-threshold`` and ``test-area`` (replacing earlier registrations)."""
    register_tool(ThresholdSegment(), replace=True)
    register_tool(AreaMeasure(), replace=True)


def remove_test_tools() -> None:
    unregister_tool("test-threshold")
    unregister_tool("test-area")


_TEMPLATE: dict[str, tuple[Path, Any]] = {}


def synth_template(factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A repository holding a 1x3 synthetic plate (one 128 px field per well, DAPI + GFP),
    and the synth result with its exact ground truth; made once per session."""
    from quantscope.ingestion import ingest
    from quantscope.synth import synth_plate

    if "t" not in _TEMPLATE:
        base = factory.mktemp("synth")
        result = synth_plate(
            base / "plate", plate="1x3", fields=1, size=128, seed=3, channels=("DAPI", "GFP")
        )
        repo = Repository.init(base / "repo")
        report = ingest(repo, [base / "plate" / "images"], qc=False)
        assert len(report.added) == 3, report.failed
        repo.close()
        _TEMPLATE["t"] = (base / "repo", result)
    return _TEMPLATE["t"]


def copy_repo(factory: pytest.TempPathFactory, dest: Path) -> Repository:
    """A fresh copy of the synthetic repository at ``dest``."""
    src, _ = synth_template(factory)
    shutil.copytree(src, dest)
    return Repository.open(dest)


def fixture_repo(factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[Repository]:
    repo = copy_repo(factory, tmp_path / "repo")
    yield repo
    repo.close()
