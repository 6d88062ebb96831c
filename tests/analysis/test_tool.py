"""The Tool protocol: parameter descriptions (defaults, ranges, units), parameter hashes, lazy
parameter models, availability, and the built-in tools on small arrays."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

from quantscope.analysis import (
    BaseTool,
    Port,
    Tool,
    ToolContext,
    ToolUnavailable,
    describe_parameters,
    describe_tool,
    get_tool,
    params_hash,
)
from quantscope.errors import InvalidInput, NotFound


class P(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size_um: float = Field(2.5, ge=0.5, le=100, json_schema_extra={"unit": "µm"}, description="d")
    method: Literal["otsu", "li"] = "otsu"
    count: int | None = Field(None, gt=0)
    weights: str


def test_describe_parameters_gives_type_default_range_unit() -> None:
    d = {p["name"]: p for p in describe_parameters(P)}
    assert d["size_um"] == {
        "name": "size_um",
        "type": "number",
        "default": 2.5,
        "required": False,
        "minimum": 0.5,
        "maximum": 100,
        "unit": "µm",
        "description": "d",
    }
    assert d["method"]["type"] == "one of ['otsu', 'li']" and d["method"]["default"] == "otsu"
    assert d["count"]["type"] == "integer | null" and d["count"]["minimum"] is None
    assert d["weights"]["required"] and d["weights"]["default"] is None


def test_params_hash_is_canonical() -> None:
    a = P(weights="w")
    assert params_hash(a) == params_hash(P(weights="w", size_um=2.5))
    assert params_hash(a) != params_hash(P(weights="w", size_um=2.6))
    assert len(params_hash(a)) == 64


class Lazy(BaseTool):
    name: ClassVar[str] = "lazy"
    version: ClassVar[str] = "1"
    parameters_ref: ClassVar[str | None] = "quantscope.analysis._builtin._measure:MeasureParams"


class Missing(BaseTool):
    name: ClassVar[str] = "missing"
    version: ClassVar[str] = "1"
    parameters_ref: ClassVar[str | None] = "no_such_mod:Params"
    requires: ClassVar[tuple[str, ...]] = ("no_such_package_abc",)


def test_lazy_parameter_models_and_availability() -> None:
    from quantscope.analysis._builtin._measure import MeasureParams

    assert Lazy().parameters() is MeasureParams
    assert isinstance(Lazy(), Tool)
    with pytest.raises(ToolUnavailable, match="tool 'missing': its parameter model no_such_mod"):
        Missing().parameters()
    assert "no_such_package_abc" in (Missing().unavailable() or "")
    d = describe_tool(Missing())
    assert d["available"] is False and d["parameters"] is None
    assert Lazy().parameters is not None and describe_tool(Lazy())["available"]
    assert repr(Lazy()) == "<tool lazy 1>"


def test_ports_describe_themselves() -> None:
    p = Port("images", "image", "channels", many=True, optional=True)
    assert p.describe() == {
        "name": "images",
        "kind": "image",
        "description": "channels",
        "many": True,
        "optional": True,
    }


def _blobs() -> np.ndarray:
    img = np.full((96, 96), 100, np.uint16)
    yy, xx = np.mgrid[:96, :96]
    for cy, cx in ((25, 25), (60, 65), (30, 70)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 3000
    rng = np.random.default_rng(0)
    return (img + rng.integers(0, 20, img.shape)).astype(np.uint16)


def test_builtin_illumination_modes() -> None:
    tool = get_tool("illumination-correction")
    model = tool.parameters()
    img = _blobs()
    ctx = ToolContext(image_id="x", plate="P", channels={"image": 0})
    same = tool.run({"image": img}, model(), ctx)["image"]
    assert same is img or np.array_equal(same, img)  # auto without a profile: unchanged
    flat = np.full(img.shape, 2.0, np.float32)
    out = tool.run({"image": img, "profile": (flat, None)}, model(mode="stored"), ctx)["image"]
    np.testing.assert_allclose(out, img / 2.0 / 65535, rtol=1e-6)
    est = tool.run({"image": img}, model(mode="estimate"), ctx)["image"]
    assert est.dtype == np.float32 and est.shape == img.shape and 0 < est.max() < 1
    with pytest.raises(InvalidInput, match="no stored illumination profile for plate 'P'"):
        tool.run({"image": img, "profile": None}, model(mode="stored"), ctx)
    # a profile stored at a lower resolution is resized to the image
    small = np.full((48, 48), 2.0, np.float32)
    out = tool.run({"image": img, "profile": (small, None)}, model(mode="stored"), ctx)["image"]
    np.testing.assert_allclose(out, img / 2.0 / 65535, rtol=1e-5)


def test_builtin_segmentation_and_measure_chain() -> None:
    img = _blobs()
    ctx = ToolContext(image_id="x", pixel_size_um=0.65)
    seg = get_tool("segment-nuclei")
    labels = seg.run({"image": img}, seg.parameters()(), ctx)["labels"]
    assert labels.max() == 3
    cells_tool = get_tool("segment-cells")
    cells = cells_tool.run({"nuclei": labels, "image": img}, cells_tool.parameters()(), ctx)[
        "labels"
    ]
    cyto_tool = get_tool("cytoplasm")
    cyto = cyto_tool.run({"cells": cells, "nuclei": labels}, cyto_tool.parameters()(), ctx)
    assert set(np.unique(cyto["labels"])) <= set(np.unique(cells))
    measure = get_tool("measure")
    out = measure.run(
        {"labels": labels, "images": {"DNA": img}},
        measure.parameters()(families=["shape", "intensity"]),
        ctx,
    )
    table, summary = out["table"], out["summary"]
    assert len(table) == 3 and "AreaShape_Area" in table and "Intensity_MeanIntensity_DNA" in table
    assert summary.loc[0, "Count"] == 3
    um = measure.run(
        {"labels": labels}, measure.parameters()(families=["shape"], physical_units=True), ctx
    )["table"]
    np.testing.assert_allclose(um["AreaShape_Area"], table["AreaShape_Area"] * 0.65**2)


def test_adapters_need_their_library_and_local_weights(tmp_path: object) -> None:
    for name in ("cellpose", "stardist"):
        tool = get_tool(name)
        model = tool.parameters()
        with pytest.raises(Exception, match="weights"):
            model()  # the weights path is required
        reason = tool.unavailable()
        if reason is not None:
            assert name in reason
    from quantscope.analysis._builtin._adapters import _weights

    with pytest.raises(NotFound, match="never downloads weights"):
        _weights(tmp_path / "nope.pt", "cellpose")  # type: ignore[operator]
