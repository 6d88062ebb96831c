"""Illumination correction: apply the plate's stored flat-field profile, or estimate one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...errors import InvalidInput
from .._tool import BaseTool, PixelSizeUse, Port, ToolContext
from . import BUILTIN_VERSION

__all__ = ["IlluminationCorrection", "IlluminationParams"]


class IlluminationParams(BaseModel):
    """Parameters of ``illumination-correction``."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "stored", "estimate", "none"] = Field(
        "auto",
        description=(
            "stored: divide by the plate's stored flat field (`quantscope qc --profiles`), fail "
            "where there is none; auto: the stored profile where one exists, else the image "
            "unchanged; estimate: a flat field fitted to this image alone (CellProfiler's "
            "CorrectIlluminationCalculate 'Each'); none: unchanged"
        ),
    )
    degree: int = Field(
        4,
        ge=1,
        le=8,
        description="estimate: total degree of the smooth 2-D Legendre polynomial fitted",
    )
    percentile: float = Field(
        50.0,
        ge=0.0,
        le=100.0,
        description="estimate: per-pixel percentile of the normalized image",
    )


class IlluminationCorrection(BaseTool):
    """Correct uneven illumination: ``(image - dark) / flat`` (float32 out).

    References
    ----------
    .. [1] Peng, T. et al. (2017). A BaSiC tool for background and shading correction of
       optical microscopy images. Nat Commun 8, 14836. :doi:`10.1038/ncomms14836`
    .. [2] Singh, S. et al. (2014). Pipeline for illumination correction of images for
       high-throughput microscopy. J Microsc 256, 231-236. :doi:`10.1111/jmi.12178`
    """

    name: ClassVar[str] = "illumination-correction"
    version: ClassVar[str] = BUILTIN_VERSION
    summary: ClassVar[str] = (
        "Flat-field correction with the plate's stored profile (auto/stored) or one estimated "
        "from the image (estimate)"
    )
    inputs: ClassVar[tuple[Port, ...]] = (
        Port("image", "image", "raw channel to correct"),
        Port(
            "profile",
            "profile",
            "the plate's stored profile of that channel (bound automatically)",
            optional=True,
        ),
    )
    outputs: ClassVar[tuple[Port, ...]] = (
        Port(
            "image",
            "image",
            "corrected image, float32 scaled as the measurements read integers (value / dtype "
            "maximum), or the input unchanged",
        ),
    )
    Parameters: ClassVar[type[BaseModel] | None] = IlluminationParams
    pixel_size: ClassVar[PixelSizeUse] = "unused"
    code_modules: ClassVar[tuple[str, ...]] = ("quantscope.quality._profile",)

    def run(
        self, inputs: Mapping[str, Any], params: BaseModel, ctx: ToolContext
    ) -> Mapping[str, Any]:
        import numpy as np

        from ...quality import apply_flatfield, estimate_illumination_profile

        assert isinstance(params, IlluminationParams)
        image = np.asarray(inputs["image"])
        profile = inputs.get("profile")
        if params.mode == "none" or (params.mode == "auto" and profile is None):
            return {"image": image}
        # integers are read as fractions of their dtype's maximum downstream (as CellProfiler
        # does); a corrected float image keeps that scale
        scale = float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0
        if params.mode == "estimate":
            est = estimate_illumination_profile(
                [image], degree=params.degree, percentile=params.percentile
            )
            return {"image": apply_flatfield(image, est.flat) / np.float32(scale)}
        if profile is None:
            where = f"plate {ctx.plate!r}" if ctx.plate else "an image that is not on a plate"
            raise InvalidInput(
                f"illumination-correction (mode 'stored'): no stored illumination profile for "
                f"{where}, channel {ctx.channels.get('image')}; estimate one with "
                "`quantscope qc REPO --profiles` or use mode 'auto' or 'estimate'"
            )
        flat, dark = profile
        if flat.shape != image.shape:
            from skimage.transform import resize

            flat = resize(flat, image.shape, order=1, preserve_range=True).astype(np.float32)
            if dark is not None:
                dark = resize(dark, image.shape, order=1, preserve_range=True).astype(np.float32)
        return {"image": apply_flatfield(image, flat, dark) / np.float32(scale)}
