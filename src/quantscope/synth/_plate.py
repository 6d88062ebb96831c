"""Writing a synthetic plate to disk: OME-TIFF images, label images, truth table, manifest."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._text import noun
from ..errors import InvalidInput
from ..model import well_name
from ._options import SynthOptions
from ._render import render_field
from ._tiff import FieldInfo, ome_xml, write_atomic, write_label_tiff, write_ome_tiff

__all__ = ["TRUTH_COLUMNS", "SynthField", "SynthResult", "synth_plate"]

#: Columns of ``truth.csv``, in order.
TRUTH_COLUMNS: tuple[str, ...] = (
    "plate",
    "well",
    "field",
    "object_id",
    "nucleus_area_px",
    "cell_area_px",
    "centroid_y",
    "centroid_x",
)
_MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class SynthField:
    """One generated field (site) of a well and its ground truth.

    Attributes
    ----------
    plate : str
        Plate name.
    well : str
        Well name such as ``"A01"``.
    row, column : int
        0-based well row and column.
    field : int
        0-based field index in the well (file names use the 1-based site ``field + 1``).
    images : tuple of pathlib.Path
        Image file of each channel, in the order of ``SynthOptions.channels``; in the
        multichannel layout every entry is the same file.
    nuclei_labels, cell_labels : pathlib.Path
        Nucleus and cell label images (plain TIFF, 0 = background, 1..N).
    n_objects : int
        Number of cells (= nuclei) in the field.
    nucleus_areas, cell_areas : tuple of int
        Area in px of object ``1..N`` (entry ``i`` is object ``i + 1``).
    empty : bool
        Whether the field was generated without cells (see ``SynthOptions.empty_fraction``).
    """

    plate: str
    well: str
    row: int
    column: int
    field: int
    images: tuple[Path, ...]
    nuclei_labels: Path
    cell_labels: Path
    n_objects: int
    nucleus_areas: tuple[int, ...]
    cell_areas: tuple[int, ...]
    empty: bool = False

    @property
    def site(self) -> int:
        """1-based site number, as in the file names."""
        return self.field + 1

    @property
    def name(self) -> str:
        """Base name of the field's files, e.g. ``"synth_A01_s1"``."""
        return f"{self.plate}_{self.well}_s{self.site}"


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synth_plate` wrote.

    Attributes
    ----------
    root : pathlib.Path
        The output folder.
    fields : tuple of SynthField
        Every field, ordered by well row, well column, field.
    options : SynthOptions
        The options used.
    """

    root: Path
    fields: tuple[SynthField, ...]
    options: SynthOptions

    @property
    def images_dir(self) -> Path:
        """Folder of the OME-TIFF images."""
        return self.root / "images"

    @property
    def labels_dir(self) -> Path:
        """Folder of the label images."""
        return self.root / "labels"

    @property
    def truth_csv(self) -> Path:
        """The per-object ground truth table."""
        return self.root / "truth.csv"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the folder, the number of fields and of objects (cells) written; what
        ``quantscope synth --json`` prints."""
        return {
            "root": str(self.root),
            "fields": len(self.fields),
            "objects": sum(f.n_objects for f in self.fields),
        }

    @property
    def manifest(self) -> Path:
        """``synth.json``: options and per-field object counts."""
        return self.root / "synth.json"

    @property
    def image_files(self) -> tuple[Path, ...]:
        """All image files, without repeats, in field order."""
        return tuple(dict.fromkeys(p for f in self.fields for p in f.images))

    @property
    def n_objects(self) -> int:
        """Total number of cells in the plate."""
        return sum(f.n_objects for f in self.fields)


def _resolve_options(options: SynthOptions | None, overrides: dict[str, Any]) -> SynthOptions:
    known = {f.name for f in dataclasses.fields(SynthOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidInput(
            f"unknown {noun(len(unknown), 'option')} {', '.join(unknown)}; "
            f"known options: {', '.join(sorted(known))}"
        )
    if options is None:
        return SynthOptions(**overrides)
    if not isinstance(options, SynthOptions):
        raise InvalidInput(f"options: expected SynthOptions, got {type(options).__name__}")
    return dataclasses.replace(options, **overrides) if overrides else options


def field_seed(seed: int, row: int, column: int, field: int) -> np.random.SeedSequence:
    """Seed of one field: independent of the plate shape and of the other fields."""
    return np.random.SeedSequence([seed, row, column, field])


def _empty_fields(
    options: SynthOptions, keys: list[tuple[int, int, int]]
) -> set[tuple[int, int, int]]:
    """Exactly ``round(empty_fraction * n_fields)`` fields, chosen by a per-field draw."""
    n_empty = math.floor(options.empty_fraction * len(keys) + 0.5)
    if n_empty == 0:
        return set()
    draws = [(float(np.random.default_rng([options.seed, *key, 1]).random()), key) for key in keys]
    return {key for _, key in sorted(draws)[:n_empty]}


def _object_table(
    nuclei: npt.NDArray[Any], cells: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64], Any]:
    """Areas (px) of nuclei and cells and nucleus centroids (y, x in px) of objects 1..N."""
    n = int(nuclei.max(initial=0))
    flat = nuclei.ravel()
    nucleus_area = np.bincount(flat, minlength=n + 1)
    cell_area = np.bincount(cells.ravel(), minlength=n + 1)
    yy, xx = np.indices(nuclei.shape, dtype=np.float64)
    safe = np.maximum(nucleus_area, 1)
    cy = np.bincount(flat, weights=yy.ravel(), minlength=n + 1) / safe
    cx = np.bincount(flat, weights=xx.ravel(), minlength=n + 1) / safe
    return nucleus_area[1:], cell_area[1:], cy[1:], cx[1:]


_IMAGE_RE = r"_[A-P]\d{2}_s\d+(_w\d+)?\.ome\.tif"
_LABEL_RE = r"_[A-P]\d{2}_s\d+_(nuclei|cells)\.tif"


def _remove_stale(folder: Path, pattern: str, written: set[Path]) -> None:
    """Remove this generator's files (and temporaries) left in ``folder`` by an earlier run."""
    regex = re.compile(pattern)
    for path in folder.iterdir():
        name = path.name
        tmp = name.startswith(".") and name.endswith(".tmp")
        candidate = name[1:].rsplit(".tif.", 1)[0] + ".tif" if tmp else name
        if regex.fullmatch(candidate) and (tmp or path not in written) and path.is_file():
            path.unlink(missing_ok=True)


def _usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(text.encode("utf-8"))

    write_atomic(path, write)


def _make_field(
    opts: SynthOptions, root: Path, key: tuple[int, int, int], empty: bool
) -> tuple[SynthField, list[tuple[Any, ...]]]:
    """Render one field, write its image and label files; return it and its truth rows."""
    row, column, field = key
    rows, columns = opts.shape
    channels = opts.channels
    images_dir, labels_dir = root / "images", root / "labels"
    well = well_name(row, column)
    base = f"{opts.plate_name}_{well}_s{field + 1}"
    rng = np.random.default_rng(field_seed(opts.seed, row, column, field))
    image, nuclei, cells = render_field(opts, rng, empty=empty)

    xml_args: dict[str, Any] = {
        "size_y": opts.size,
        "size_x": opts.size,
        "dtype": opts.dtype,
        "pixel_size_um": opts.pixel_size_um,
    }
    paths: list[Path]
    if opts.layout == "multichannel":
        path = images_dir / f"{base}.ome.tif"
        info = FieldInfo(opts.plate_name, rows, columns, row, column, field, opts.fields)
        xml = ome_xml(
            name=base,
            channels=channels,
            channel_indices=range(len(channels)),
            plate=info,
            **xml_args,
        )
        write_ome_tiff(path, image, xml, opts.pixel_size_um)
        paths = [path] * len(channels)
    else:
        paths = []
        for c, channel in enumerate(channels):
            path = images_dir / f"{base}_w{c + 1}.ome.tif"
            xml = ome_xml(
                name=f"{base}_w{c + 1}", channels=[channel], channel_indices=[c], **xml_args
            )
            write_ome_tiff(path, image[c : c + 1], xml, opts.pixel_size_um)
            paths.append(path)
    nuclei_path = labels_dir / f"{base}_nuclei.tif"
    cells_path = labels_dir / f"{base}_cells.tif"
    write_label_tiff(nuclei_path, nuclei, opts.pixel_size_um)
    write_label_tiff(cells_path, cells, opts.pixel_size_um)

    nucleus_area, cell_area, cy, cx = _object_table(nuclei, cells)
    truth_rows = [
        (
            opts.plate_name,
            well,
            field,
            i + 1,
            int(nucleus_area[i]),
            int(cell_area[i]),
            f"{cy[i]:.3f}",
            f"{cx[i]:.3f}",
        )
        for i in range(nucleus_area.size)
    ]
    synth_field = SynthField(
        plate=opts.plate_name,
        well=well,
        row=row,
        column=column,
        field=field,
        images=tuple(paths),
        nuclei_labels=nuclei_path,
        cell_labels=cells_path,
        n_objects=int(nucleus_area.size),
        nucleus_areas=tuple(int(a) for a in nucleus_area),
        cell_areas=tuple(int(a) for a in cell_area),
        empty=empty,
    )
    return synth_field, truth_rows


def synth_plate(
    out: str | os.PathLike[str],
    options: SynthOptions | None = None,
    **overrides: Any,
) -> SynthResult:
    """Generate a synthetic fluorescence plate with exact ground truth and write it to ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder, created if needed. Files of an earlier run with the same plate name
        are overwritten (stale ones removed).
    options : SynthOptions, optional
        What to generate; defaults to ``SynthOptions()``.
    **overrides
        Option values replacing those of ``options``, e.g. ``size=512, seed=1``.

    Returns
    -------
    SynthResult
        The output folder, every field with its files and object counts, and the options.

    Raises
    ------
    quantscope.errors.InvalidInput
        For a bad option value or an unknown option name, or when ``out`` is not a folder.

    Notes
    -----
    Layout of ``out``:

    - ``images/{plate}_{well}_s{site}_w{wavelength}.ome.tif`` (``layout="per-channel"``, site
      and wavelength 1-based, ImageXpress-like) or ``images/{plate}_{well}_s{site}.ome.tif``
      (``layout="multichannel"``, all channels and an OME Plate/Well/WellSample);
    - ``labels/{plate}_{well}_s{site}_nuclei.tif`` and ``..._cells.tif``: instance labels;
    - ``truth.csv``: one row per object (columns :data:`TRUTH_COLUMNS`; ``field`` 0-based,
      areas in px, nucleus centroid in px);
    - ``synth.json``: options and per-field object counts.

    Every field is rendered from its own seed ``SeedSequence([seed, row, column, field])``, so
    a field does not depend on the plate shape; the same options give byte-identical files.

    Examples
    --------
    >>> result = synth_plate(tmp_path, plate="1x1", fields=1, size=64)  # doctest: +SKIP
    >>> result.fields[0].images[0].name  # doctest: +SKIP
    'synth_A01_s1_w1.ome.tif'
    """
    opts = _resolve_options(options, overrides)
    rows, columns = opts.shape
    root = Path(out)
    images_dir, labels_dir = root / "images", root / "labels"
    try:
        images_dir.mkdir(parents=True, exist_ok=True)
        labels_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInput(
            f"out: {root} cannot hold the plate (it, or its images/ or labels/, is a file); "
            f"choose another output folder"
        ) from None

    keys = [(r, c, f) for r in range(rows) for c in range(columns) for f in range(opts.fields)]
    empties = _empty_fields(opts, keys)

    def make(key: tuple[int, int, int]) -> tuple[SynthField, list[tuple[Any, ...]]]:
        return _make_field(opts, root, key, key in empties)

    # Fields are independent (own seed, own files): render them in a few threads (numpy,
    # scipy and scikit-image release the GIL for much of the work); order is kept.
    workers = max(1, min(4, _usable_cpus(), len(keys)))
    if workers == 1:
        results = [make(key) for key in keys]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth") as pool:
            results = list(pool.map(make, keys))

    fields = [field for field, _ in results]
    truth = io.StringIO()
    table = csv.writer(truth, lineterminator="\n")
    table.writerow(TRUTH_COLUMNS)
    for _, rows_of_field in results:
        table.writerows(rows_of_field)
    written = {p for f in fields for p in (*f.images, f.nuclei_labels, f.cell_labels)}

    _write_text(root / "truth.csv", truth.getvalue())
    _write_text(root / "synth.json", _manifest(opts, rows, columns, fields, root))
    prefix = re.escape(opts.plate_name)
    _remove_stale(images_dir, prefix + _IMAGE_RE, written)
    _remove_stale(labels_dir, prefix + _LABEL_RE, written)
    return SynthResult(root=root, fields=tuple(fields), options=opts)


def _manifest(
    opts: SynthOptions, rows: int, columns: int, fields: list[SynthField], root: Path
) -> str:
    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    doc = {
        "generator": "quantscope.synth",
        "format": _MANIFEST_FORMAT,
        "options": opts.to_dict(),
        "plate": {"name": opts.plate_name, "rows": rows, "columns": columns},
        "n_fields": len(fields),
        "n_objects": sum(f.n_objects for f in fields),
        "truth": "truth.csv",
        "fields": [
            {
                "well": f.well,
                "row": f.row,
                "column": f.column,
                "field": f.field,
                "site": f.site,
                "empty": f.empty,
                "n_objects": f.n_objects,
                "images": [rel(p) for p in dict.fromkeys(f.images)],
                "nuclei_labels": rel(f.nuclei_labels),
                "cell_labels": rel(f.cell_labels),
            }
            for f in fields
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
