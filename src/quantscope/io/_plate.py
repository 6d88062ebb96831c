"""NGFF 0.5 HCS plate, row and well group documents, rewritten atomically from the catalog."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..model import well_name

__all__ = ["write_plate_groups"]


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def _group(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"zarr_format": 3, "node_type": "group", "attributes": attrs}


def write_plate_groups(
    root: str | os.PathLike[str], name: str, fields: Iterable[tuple[int, int, int]]
) -> None:
    """Write the plate/row/well ``zarr.json`` documents of an HCS plate.

    ``fields`` are the (row, column, field) positions (0-based) that hold an image; the images
    themselves are already stored at ``<root>/<row>/<column>/<field>``. Rows and columns run
    from the first ("A", "01") to the last one used, so viewers lay the plate out correctly.
    """
    root = Path(root)
    wells: dict[tuple[int, int], set[int]] = {}
    for r, c, f in fields:  # a field listed twice is one image, not two
        wells.setdefault((r, c), set()).add(f)
    if not wells:
        return
    n_rows = max(r for r, _ in wells) + 1
    n_cols = max(c for _, c in wells) + 1
    row_names = [well_name(r, 0)[:-2] for r in range(n_rows)]
    col_names = [f"{c + 1:02d}" for c in range(n_cols)]
    well_list = [
        {"path": f"{row_names[r]}/{col_names[c]}", "rowIndex": r, "columnIndex": c}
        for r, c in sorted(wells)
    ]
    for (r, c), fs in sorted(wells.items()):
        images = [{"path": str(f)} for f in sorted(fs)]
        _atomic_json(
            root / row_names[r] / col_names[c] / "zarr.json",
            _group({"ome": {"version": "0.5", "well": {"images": images}}}),
        )
    for r in sorted({r for r, _ in wells}):
        _atomic_json(root / row_names[r] / "zarr.json", _group({}))
    plate = {
        "name": name,
        "rows": [{"name": n} for n in row_names],
        "columns": [{"name": n} for n in col_names],
        "wells": well_list,
        "field_count": max(len(fs) for fs in wells.values()),
    }
    _atomic_json(root / "zarr.json", _group({"ome": {"version": "0.5", "plate": plate}}))
