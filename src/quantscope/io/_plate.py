"""NGFF 0.5 HCS plate, row and well group documents, rewritten atomically from the catalog."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._files import atomic_write
from ..model import well_name

__all__ = ["next_field_slot", "write_plate_groups"]


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(doc))


def _group(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"zarr_format": 3, "node_type": "group", "attributes": attrs}


def write_plate_groups(
    root: str | os.PathLike[str], name: str, fields: Iterable[tuple[int, int, int, str]]
) -> None:
    """Write the plate/row/well ``zarr.json`` documents of an HCS plate.

    ``fields`` are ``(row, column, site, path)``: the 0-based row and column of a well, the
    1-based site number of one of its fields, and the folder that holds that field's image
    (``<root>/<row>/<column>/<path>``). Rows and columns run from the first ("A", "01") to the
    last one used, so viewers lay the plate out correctly.

    Readers such as ome-zarr-py and napari-ome-zarr take the field paths of the *first* well for
    every well, so each well's fields must be the folders ``0..n-1``; the well lists them in
    that order (the site numbers need not be contiguous: they are recorded beside the paths,
    under the ``quantscope`` key of the well's attributes, and in the catalog).
    """
    root = Path(root)
    wells: dict[tuple[int, int], dict[str, int]] = {}
    for r, c, site, path in fields:  # a field listed twice is one image, not two
        wells.setdefault((r, c), {})[str(path)] = int(site)
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
    for (r, c), paths in sorted(wells.items()):
        order = sorted(paths, key=_path_order)
        _atomic_json(
            root / row_names[r] / col_names[c] / "zarr.json",
            _group(
                {
                    "ome": {"version": "0.5", "well": {"images": [{"path": p} for p in order]}},
                    "quantscope": {"sites": {p: paths[p] for p in order}},
                }
            ),
        )
    for r in sorted({r for r, _ in wells}):
        _atomic_json(root / row_names[r] / "zarr.json", _group({}))
    plate = {
        "version": "0.5",
        "name": name,
        "rows": [{"name": n} for n in row_names],
        "columns": [{"name": n} for n in col_names],
        "wells": well_list,
        "field_count": max(len(fs) for fs in wells.values()),
    }
    _atomic_json(root / "zarr.json", _group({"ome": {"version": "0.5", "plate": plate}}))


def _path_order(path: str) -> tuple[int, int | str]:
    return (0, int(path)) if path.isdigit() else (1, path)


def next_field_slot(used: Iterable[str]) -> int:
    """The lowest field folder number (``0, 1, …``) of a well that ``used`` does not hold."""
    taken = {int(u) for u in used if str(u).isdigit()}
    slot = 0
    while slot in taken:
        slot += 1
    return slot
