"""One image as a short listing row (what ``quantscope ls --json`` prints per image, what an
ingest report lists for each image added) and as a full record (``quantscope show --json``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Image
    from ._repository import Repository

__all__ = ["image_record", "image_row"]


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


def image_record(repo: Repository, image: str | Image) -> dict[str, Any]:
    """Everything known about one image, JSON-ready: its model (channels as full records), the
    fields of :func:`image_row` it lacks, its folder (``path``) and the number of stored files.

    Parameters
    ----------
    repo
        An open repository.
    image
        An image id (or a unique prefix), or an image of ``repo``.

    Raises
    ------
    NotFound
        No such image.
    InvalidInput
        An ambiguous prefix or an id that is not text.
    """
    from ..model import Image

    img = image if isinstance(image, Image) else repo.images.get(image)
    doc: dict[str, Any] = img.model_dump(mode="json")
    doc.update({k: v for k, v in image_row(img).items() if k not in doc})
    doc["path"] = str(repo.root / img.store_path)
    doc["stored_files"] = len(repo.images.stored_files(img.id))
    return doc
