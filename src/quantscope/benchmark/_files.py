"""Label image files: reading (TIFF, PNG, NumPy), pairing folders by name, stored copies."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .._text import plural
from ..errors import CorruptFile, InvalidInput, NotFound

__all__ = [
    "LABEL_SUFFIXES",
    "file_sha256",
    "index_label_files",
    "match_name",
    "pair_folders",
    "read_labels",
    "stem",
    "write_labels",
]

#: File name endings read as label images.
LABEL_SUFFIXES: tuple[str, ...] = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png", ".npy")
_IMAGE_SKIP = {".md", ".txt", ".csv", ".json", ".yaml", ".yml", ".xml", ".html", ".log", ".py"}
_MULTI_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".nii.gz")


def stem(path: str | os.PathLike[str]) -> str:
    """File name without its format suffix (``a.ome.tif`` -> ``a``, ``b.png`` -> ``b``)."""
    name = Path(path).name
    low = name.lower()
    for suf in _MULTI_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_pattern(match: str) -> None:
    if match.count("{name}") != 1 or re.search(r"\{(?!name\})", match):
        raise InvalidInput(
            f"--match {match!r}: the pattern must contain '{{name}}' exactly once and no other "
            "placeholder, e.g. '{name}' or '{name}_cp_masks'"
        )


def match_name(match: str, name: str) -> str:
    """The stem the counterpart of ``name`` must have under pattern ``match``."""
    _check_pattern(match)
    return match.replace("{name}", name)


def _reverse(match: str) -> re.Pattern[str]:
    _check_pattern(match)
    before, after = match.split("{name}")
    return re.compile(re.escape(before) + "(?P<name>.+)" + re.escape(after) + r"\Z")


def _colour_code(arr: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    rgb = arr[..., :3].astype(np.int64)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def read_labels(path: str | os.PathLike[str], *, colour: str = "error") -> npt.NDArray[np.generic]:
    """Read a label (or mask) image: TIFF / OME-TIFF, PNG or ``.npy``.

    Singleton axes are dropped (a ``(1, 1, 1, Y, X)`` OME-TIFF becomes ``(Y, X)``).

    Parameters
    ----------
    path : path
        The file.
    colour : {"error", "code"}
        What to do with an RGB(A) PNG: refuse it (instance labels are single-channel), or turn
        each colour into one value (for colour-coded masks such as BBBC039's, where touching
        nuclei get different colours; alpha is ignored).

    Raises
    ------
    NotFound
        The file does not exist.
    CorruptFile
        The file cannot be read.
    InvalidInput
        Unsupported suffix, or a colour image where ``colour="error"``.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"{p}: no such label file")
    low = p.name.lower()
    try:
        if low.endswith((".tif", ".tiff")):
            import tifffile

            arr = np.asarray(tifffile.imread(p))
        elif low.endswith(".png"):
            import imageio.v3 as iio

            arr = np.asarray(iio.imread(p))
            if arr.ndim == 3 and arr.shape[-1] in (3, 4):
                if colour != "code":
                    raise InvalidInput(
                        f"{p}: a colour image {arr.shape}, not a single-channel label image; "
                        "for colour-coded masks register the set with --by-value"
                    )
                arr = _colour_code(arr)
        elif low.endswith(".npy"):
            arr = np.load(p, allow_pickle=False)
        else:
            raise InvalidInput(
                f"{p}: not a label image file (expected one of {', '.join(LABEL_SUFFIXES)})"
            )
    except (InvalidInput, NotFound):
        raise
    except Exception as e:
        raise CorruptFile(f"{p}: cannot read the label image ({type(e).__name__}: {e})") from e
    if arr.size == 0:
        raise CorruptFile(
            f"{p}: cannot read the label image (no pixels); the file is truncated or damaged"
        )
    if arr.ndim > 2:
        arr = arr.reshape([s for s in arr.shape if s != 1] or [1])
    return arr


def index_label_files(folder: Path, what: str) -> dict[str, Path]:
    """{stem: path} of the label files in ``folder`` (not recursive).

    Raises
    ------
    NotFound
        The folder does not exist.
    InvalidInput
        Two files share a stem, or there are no label files.
    """
    if not folder.is_dir():
        raise NotFound(f"{what} folder {folder} does not exist")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if not p.name.lower().endswith(LABEL_SUFFIXES):
            continue
        key = stem(p)
        if key in out:
            raise InvalidInput(
                f"{what} folder {folder}: {out[key].name} and {p.name} have the same name; "
                "keep one of them"
            )
        out[key] = p
    if not out:
        raise InvalidInput(
            f"{what} folder {folder} holds no label images ({', '.join(LABEL_SUFFIXES)})"
        )
    return out


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise NotFound(f"images folder {folder} does not exist")
    files = [
        p
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".")
        and (p.is_file() or p.name.lower().endswith(".zarr"))
        and p.suffix.lower() not in _IMAGE_SKIP
    ]
    if not files:
        raise InvalidInput(f"images folder {folder} holds no image files")
    return files


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def pair_folders(
    labels_dir: Path, images_dir: Path | None = None, match: str = "{name}"
) -> list[tuple[str, Path | None, Path]]:
    """Pair images with their label files by name: ``[(name, image or None, labels)]``.

    With ``images_dir``, each image ``<name>.<ext>`` needs the label file whose stem is
    ``match`` with ``{name}`` replaced; without it, every label file is an item and its name
    is recovered from ``match``.

    Raises
    ------
    InvalidInput
        An image has no label file, or a label file has no image (both named), or a label file
        does not fit the pattern.
    """
    labels = index_label_files(labels_dir, "labels")
    if images_dir is None:
        rx = _reverse(match)
        out: list[tuple[str, Path | None, Path]] = []
        bad = []
        for key, path in labels.items():
            m = rx.match(key)
            if m is None:
                bad.append(path.name)
            else:
                out.append((m.group("name"), None, path))
        if bad:
            raise InvalidInput(
                f"labels folder {labels_dir}: {_listing(bad)} do not fit --match {match!r}"
            )
        return out
    pairs: list[tuple[str, Path | None, Path]] = []
    missing: list[str] = []
    used: set[str] = set()
    for img in _image_files(images_dir):
        name = stem(img)
        key = match_name(match, name)
        if key not in labels:
            missing.append(f"{img.name} (expected {key}.tif/.png/.npy)")
            continue
        used.add(key)
        pairs.append((name, img, labels[key]))
    if missing:
        raise InvalidInput(
            f"labels folder {labels_dir}: no label image for {plural(len(missing), 'image')} of "
            f"{images_dir}: {_listing(missing)}; add them or fix --match"
        )
    orphans = [labels[k].name for k in labels if k not in used]
    if orphans:
        raise InvalidInput(
            f"images folder {images_dir}: no image for {plural(len(orphans), 'label file')} of "
            f"{labels_dir}: {_listing(orphans)}; add the images or remove those labels"
        )
    return pairs


def write_labels(path: Path, labels: npt.NDArray[np.integer]) -> str:
    """Write a label image as a zlib-compressed TIFF atomically; returns its SHA-256.

    The smallest of uint16 / uint32 / uint64 that holds the largest label is used.
    """
    import tifffile

    top = int(labels.max()) if labels.size else 0
    dtype = np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tifffile.imwrite(tmp, np.ascontiguousarray(labels, dtype=dtype), compression="zlib")
        digest = file_sha256(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return digest
