"""One image as a short listing row: what ``quantscope ls --json`` prints per image, what an
ingest report lists for each image added, and the fields ``show --json`` adds to the record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Image

__all__ = ["image_row"]


def image_row(img: Image) -> dict[str, Any]:
    """The listing row of ``img``: id, name, first source file (``(+N)`` more), plate, well,
    field, dims (``TxCxZxYxX``), dtype, channel names and pixel size (x, y, z in µm)."""
    pos = img.position
    return {
        "id": img.id,
        "name": img.name,
        "source": Path(img.sources[0].path).name
        + (f" (+{len(img.sources) - 1})" if len(img.sources) > 1 else "")
        if img.sources
        else "",
        "plate": pos.plate if pos else None,
        "well": pos.well if pos else None,
        "field": pos.field if pos else None,
        "dims": "x".join(str(n) for n in img.shape),
        "dtype": img.dtype,
        "channels": [c.name for c in img.channels],
        "pixel_size_um": [img.physical_size_x_um, img.physical_size_y_um, img.physical_size_z_um],
    }
