"""Ground-truth sets in a repository: registration from folders or from ``quantscope.synth``.

A set is a list of items; each item is one annotated image. What is stored where, and why:

* The **ground-truth labels** are copied into the repository (``benchmarks/<set>/truth/
  <item>.tif``, zlib-compressed TIFF) and their SHA-256 recorded. A benchmark is only
  comparable over time if its ground truth cannot change under it; the copy is small
  (BBBC039's 40 label images take under 0.5 MB) and is verified on every run.
* The **images** are ingested into the repository with :func:`quantscope.ingestion.ingest`
  (OME-Zarr, checksums, metadata, QC), so pipelines run on them like on any other image and
  the item links to its image id. ``ingest=False`` stores only the source path and SHA-256
  (for sets scored from predictions made elsewhere, where the pixels are not needed).
* **Provenance**: the source folders, the ``--match`` pattern, how masks were labelled
  (connectivity), the source's SOURCE.md / license text, or the synthetic options and seed
  (the same options regenerate byte-identical files).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import plural
from ..errors import InvalidInput, NotFound
from ._files import file_sha256, pair_folders, read_labels, write_labels
from ._overlap import as_label_image
from ._semantic import label_mask

if TYPE_CHECKING:
    from ..catalog import BenchItemRecord, Repository
    from ._records import BenchSet

__all__ = [
    "BENCH_DIR",
    "MASK_MODES",
    "add_set",
    "add_synthetic_set",
    "load_truth",
    "set_folder",
]


#: Folder of the repository that holds benchmark files.
BENCH_DIR = "benchmarks"
#: How label files are read: instance labels as they are, binary masks labelled by connected
#: components, or colour/value-coded masks labelled per value.
MASK_MODES = ("labels", "binary", "by-value")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``."""


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"set name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )


def set_folder(repo: Repository, name: str) -> Path:
    """``<repo>/benchmarks/<name>``."""
    return repo.root / BENCH_DIR / name


def _license_from(folders: list[Path]) -> tuple[str | None, str | None]:
    """(license, text of SOURCE.md/LICENSE) found beside or above the data folders."""
    seen: set[Path] = set()
    for folder in folders:
        for base in (folder, folder.parent):
            for fname in ("SOURCE.md", "LICENSE", "LICENSE.txt", "LICENSE.md", "README.md"):
                p = (base / fname).resolve()
                if p in seen or not p.is_file():
                    continue
                seen.add(p)
                text = p.read_text(errors="replace")[:8000]
                m = re.search(r"licen[cs]e[^:\n]*:\s*(.+)", text, re.IGNORECASE)
                if m:
                    return m.group(1).strip(), text
                if fname.startswith("LICENSE"):
                    return text.strip().splitlines()[0], text
    return None, None


def _prepare(arr: np.ndarray, path: Path, mode: str, connectivity: int) -> np.ndarray:
    if mode == "labels":
        return as_label_image(arr, str(path))
    if arr.dtype.kind not in "biu":
        raise InvalidInput(f"{path}: pixels are {arr.dtype}; a mask must be boolean or integer")
    if mode == "binary":
        return label_mask(arr, connectivity, name=str(path))
    # by-value: components of each value separately (touching objects of different values)
    out = np.zeros(arr.shape, dtype=np.int64)
    top = 0
    for v in np.unique(arr):
        if v == 0:
            continue
        lab = label_mask(arr == v, connectivity, name=str(path))
        n = int(lab.max())
        out[lab > 0] = lab[lab > 0] + top
        top += n
    return out


def _ingest_images(
    repo: Repository, images: list[Path], jobs: int, qc: bool
) -> dict[Path, tuple[str, str]]:
    """Ingest ``images``; {path: (image id, sha256)}."""
    from ..ingestion import ingest

    report = ingest(repo, images, jobs=jobs, qc=qc)
    if report.failed:
        first = report.failed[0]
        raise InvalidInput(
            f"{first.path}: cannot ingest the image ({first.message})"
            + (f"; {len(report.failed) - 1} more failed" if len(report.failed) > 1 else "")
        )
    shas = {p: file_sha256(p) for p in images}
    known = repo.images.known_sources(list(shas.values()))
    out: dict[Path, tuple[str, str]] = {}
    for p, sha in shas.items():
        ids = sorted(set(known.get(sha, [])))
        if len(ids) != 1:
            raise InvalidInput(
                f"{p}: became {len(ids)} repository images (multi-scene or multi-file images "
                "cannot pair with one label image); split the file or use ingest=False"
            )
        out[p] = (ids[0], sha)
    return out


def _recover(final: Path) -> None:
    """Undo what a killed registration left (call under the write lock): a set folder moved
    aside but not replaced is moved back; staging and moved-aside folders are removed."""
    parent = final.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{final.name}.old-*"))
    if olds and not final.exists():
        olds.pop().rename(final)
    for leftover in [*olds, *parent.glob(f".{final.name}.new-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def add_set(
    repo: Repository,
    name: str,
    labels_dir: str | os.PathLike[str],
    images_dir: str | os.PathLike[str] | None = None,
    *,
    match: str = "{name}",
    masks: str = "labels",
    connectivity: int = 1,
    license: str | None = None,
    description: str | None = None,
    ingest: bool = True,
    qc: bool = True,
    jobs: int = 1,
    replace: bool = False,
    provenance: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> BenchSet:
    """Register a ground-truth set from a folder of label images (and one of images).

    Parameters
    ----------
    repo : Repository
        An open repository.
    name : str
        Set name (letters, digits, ``._-``).
    labels_dir : path
        Folder of instance label images (TIFF, PNG, ``.npy``; 0 = background) or masks.
    images_dir : path, optional
        Folder of the images; each needs a label file named by ``match``. Without it the set
        holds labels only (enough to score predictions made elsewhere).
    match : str
        Stem of the label file of image ``{name}``, e.g. ``"{name}"`` or ``"{name}_masks"``.
    masks : {"labels", "binary", "by-value"}
        ``"labels"``: files are instance labels. ``"binary"``: non-zero pixels are foreground
        and each connected component (``connectivity``) becomes an object; touching objects
        merge. ``"by-value"``: components of each distinct value (or colour, for RGB PNGs) are
        objects, for colour-coded masks where touching objects get different values.
    connectivity : int
        1 = 4-connected (2-D) / 6-connected (3-D), 2 = 8-connected, 3 = 26-connected; used by
        ``"binary"`` and ``"by-value"``.
    license : str, optional
        License of the set; default: read from a SOURCE.md / LICENSE beside the folders, else
        recorded as not stated.
    description : str, optional
        Free text.
    ingest : bool
        Ingest the images into the repository (default) or only record path and SHA-256.
    qc : bool
        Quality-control the ingested images.
    jobs : int
        Threads for ingest.
    replace : bool
        Replace a set of the same name (its runs are deleted).
    provenance : dict, optional
        Extra provenance entries (e.g. synthetic options).
    progress : callable, optional
        ``progress(phase, done, total)``.

    Returns
    -------
    BenchSet
        The registered set as :meth:`Repository.bench.get_set` returns it.

    Raises
    ------
    InvalidInput
        Bad name, pattern, mode, unpaired files (named), non-integer labels (named), an
        existing set without ``replace``.
    NotFound
        A folder does not exist.
    """
    _check_name(name)
    if masks not in MASK_MODES:
        raise InvalidInput(f"masks: {masks!r} is not one of {', '.join(MASK_MODES)}")
    if not 1 <= connectivity <= 3:
        raise InvalidInput(f"connectivity: {connectivity} is not 1, 2 or 3")
    labels_path = Path(labels_dir).resolve()
    images_path = Path(images_dir).resolve() if images_dir is not None else None
    pairs = pair_folders(labels_path, images_path, match)
    if not replace:
        _check_new(repo, name)
    # read and check every label file before anything is written
    prepared = _read_pairs(pairs, masks, connectivity, progress)
    found_license, source_text = _license_from(
        [labels_path] + ([images_path] if images_path else [])
    )
    lic = license or found_license or "not stated (pass --license)"
    image_files = [p.image for p in prepared if p.image is not None]
    images_info = _image_sources(repo, image_files, ingest, jobs, qc, progress)
    prov: dict[str, Any] = {
        "labels_dir": str(labels_path),
        "images_dir": str(images_path) if images_path else None,
        "match": match,
        "masks": masks,
        "connectivity": connectivity if masks != "labels" else None,
        "images_ingested": bool(image_files and ingest),
        "source_text": source_text,
    }
    prov.update(provenance or {})
    final = set_folder(repo, name)
    staging = final.parent / f".{name}.new-{os.getpid()}"
    with repo.write_lock():
        _recover(final)
        items = _store_truth(staging, name, prepared, images_info, progress)
        with _swapped_in(final, staging):
            repo.bench.add_set(
                name,
                kind="instance",
                license=lic,
                provenance=prov,
                items=items,
                description=description,
                replace=replace,
            )
    from ._records import BenchSet

    return BenchSet.of(repo.bench.get_set(name))


@contextlib.contextmanager
def _swapped_in(final: Path, staging: Path) -> Iterator[None]:
    """Put the folder ``staging`` in place of the set folder ``final`` for the registration
    in the ``with`` block (call under the write lock); if the block fails, the old folder is
    put back, else removed. A kill in between is undone by :func:`_recover`."""
    trash = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        final.rename(trash)
    staging.rename(final)
    try:
        yield
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        if trash.exists():
            trash.rename(final)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _check_new(repo: Repository, name: str) -> None:
    """Refuse to add a set under the name of an existing one (without ``replace``)."""
    existing = {s.name for s in repo.bench.sets()}
    if name in existing:
        raise InvalidInput(
            f"benchmark set {name!r} already exists in {repo.root}; choose another name or "
            "replace it (--replace), which deletes its runs"
        )


@dataclass(frozen=True)
class _Pair:
    """One item of a set being added: its name, image file, label file and labels as read."""

    item: str
    image: Path | None
    labels_file: Path
    labels: np.ndarray


def _read_pairs(
    pairs: list[tuple[str, Path | None, Path]],
    masks: str,
    connectivity: int,
    progress: Progress | None,
) -> list[_Pair]:
    """Read and check every label file (as instance labels, per ``masks``)."""
    prepared: list[_Pair] = []
    colour = "code" if masks == "by-value" else "error"
    for k, (item, img, lab) in enumerate(pairs):
        arr = _prepare(read_labels(lab, colour=colour), lab, masks, connectivity)
        prepared.append(_Pair(item, img, lab, arr))
        if progress:
            progress("read", k + 1, len(pairs))
    return prepared


def _image_sources(
    repo: Repository,
    image_files: list[Path],
    ingest: bool,
    jobs: int,
    qc: bool,
    progress: Progress | None,
) -> dict[Path, tuple[str | None, str]]:
    """{image file: (its repository image id, SHA-256)}: the files ingested, or (without
    ``ingest``) only hashed, with no image id ("" for a file that is not there)."""
    images_info: dict[Path, tuple[str | None, str]] = {}
    if image_files and ingest:
        images_info.update(_ingest_images(repo, image_files, jobs, qc))
    elif image_files:
        for k, img in enumerate(image_files):
            images_info[img] = (None, file_sha256(img) if img.is_file() else "")
            if progress:
                progress("hash", k + 1, len(image_files))
    return images_info


def _store_truth(
    staging: Path,
    name: str,
    prepared: list[_Pair],
    images_info: dict[Path, tuple[str | None, str]],
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """Write the ground-truth labels of the set ``name`` under ``staging`` (its folder to be);
    the items' records, with the paths the labels will have in the repository."""
    items = []
    for k, p in enumerate(prepared):
        arr = p.labels
        rel = Path(BENCH_DIR) / name / "truth" / f"{p.item}.tif"
        sha = write_labels(staging / "truth" / f"{p.item}.tif", arr)
        image_id, image_sha = images_info.get(p.image, (None, None)) if p.image else (None, None)
        items.append(
            {
                "name": p.item,
                "image_id": image_id,
                "image_path": str(p.image) if p.image else None,
                "image_sha256": image_sha or None,
                "labels_path": rel.as_posix(),
                "labels_sha256": sha,
                "source_labels_path": str(p.labels_file),
                "shape": list(arr.shape),
                "n_objects": int(np.count_nonzero(np.bincount(arr.reshape(-1))[1:]))
                if arr.size and arr.max() < 4 * arr.size
                else int(np.unique(arr[arr > 0]).size),
            }
        )
        if progress:
            progress("store", k + 1, len(prepared))
    return items


def add_synthetic_set(
    repo: Repository,
    name: str,
    *,
    n_images: int = 8,
    size: int = 256,
    density: float = 1.0,
    touching: float = 0.0,
    snr: float = 1.0,
    blur: float = 0.0,
    seed: int = 0,
    objects: str = "nuclei",
    replace: bool = False,
    jobs: int = 1,
    qc: bool = True,
    progress: Progress | None = None,
) -> BenchSet:
    """Register a synthetic set generated by :func:`quantscope.synth.synth_plate`.

    The images (one field per image, a nuclear stain, plus a cytoplasmic stain when
    ``objects="cells"``) are ingested; the exact labels become the ground truth. Difficulty:
    ``density`` (objects per area, x default), ``touching`` (0..1, clumps of touching nuclei),
    ``snr`` (x default signal-to-noise), ``blur`` (defocus sigma, px). The options and seed are
    recorded; the same options regenerate byte-identical files.

    Raises
    ------
    InvalidInput
        Bad option values (named), ``objects`` not nuclei/cells.
    """
    from .. import __version__
    from ..synth import SynthOptions, synth_plate

    _check_name(name)
    if objects not in ("nuclei", "cells"):
        raise InvalidInput(f"objects: {objects!r} is not 'nuclei' or 'cells'")
    if not 1 <= int(n_images) <= 10_000:
        raise InvalidInput(f"n_images: {n_images} is not in 1..10000")
    plate_name = re.sub(r"[^A-Za-z0-9]", "", name)[:40] or "bench"
    opts = SynthOptions(
        plate="1x1",
        fields=int(n_images),
        channels=("DAPI",) if objects == "nuclei" else ("DAPI", "GFP"),
        size=size,
        seed=seed,
        density=density,
        touching=touching,
        snr=snr,
        blur=blur,
        layout="multichannel",
        plate_name=plate_name,
    )
    with tempfile.TemporaryDirectory(prefix="qs-bench-synth-") as tmp:
        synth_plate(tmp, opts)
        other = "cells" if objects == "nuclei" else "nuclei"
        for f in (Path(tmp) / "labels").glob(f"*_{other}.tif"):
            f.unlink()  # only the chosen objects are ground truth
        return add_set(
            repo,
            name,
            Path(tmp) / "labels",
            Path(tmp) / "images",
            match="{name}_" + objects,
            license="CC0-1.0 (synthetic images generated by quantscope.synth)",
            description=(
                f"synthetic {objects}: {plural(n_images, 'image')} {size}x{size}, "
                f"density {density}, touching {touching}, snr {snr}, blur {blur}, seed {seed}"
            ),
            replace=replace,
            jobs=jobs,
            qc=qc,
            provenance={
                "synthetic": {
                    "generator": "quantscope.synth.synth_plate",
                    "quantscope_version": __version__,
                    "objects": objects,
                    "options": opts.to_dict(),
                },
                "labels_dir": None,
                "images_dir": None,
                "source_text": None,
            },
            progress=progress,
        )


def load_truth(repo: Repository, item: BenchItemRecord) -> np.ndarray:
    """The stored ground-truth labels of a set item, checked against their SHA-256.

    Raises
    ------
    IntegrityError
        The stored file is missing or changed since registration.
    """
    from ..errors import IntegrityError

    path = repo.root / item.labels_path
    if not path.is_file():
        raise IntegrityError(
            f"{path}: the ground truth of item {item.name!r} is missing; re-register the set"
        )
    if file_sha256(path) != item.labels_sha256:
        raise IntegrityError(
            f"{path}: the ground truth of item {item.name!r} changed since it was "
            "registered (SHA-256 differs); re-register the set with --replace"
        )
    try:
        return read_labels(path)
    except NotFound as e:  # pragma: no cover - checked above
        raise IntegrityError(str(e)) from e
