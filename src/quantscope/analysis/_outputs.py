"""Where analysis outputs go, written atomically.

- Label images: into the image's OME-Zarr ``labels/`` group, as NGFF 0.5 image-label
  multiscales with the image's axes, levels and scales (nearest-neighbour pyramid: every level
  keeps the label values), int32, listed in ``labels/zarr.json``.
- Tables: Parquet files under ``tables/<run>/``.

Every output is written under a temporary name of its own and renamed into place; it is then
read back and compared with its checksum, and only then registered in the catalog, so a killed
run leaves nothing half-written registered and an output that cannot be read back is an error,
not a result. Writers of label images of one image are independent: each writes its own
temporary folder (no writer removes another's; leftovers of killed runs are removed by the
executor at the start of a run, while it holds the repository's write lock), and the rename
into place and the ``labels/zarr.json`` listing are updated under a lock of that ``labels/``
group (a thread lock, and ``flock`` on the folder where the platform has it, for writers in
other processes). The checksum of a label image is the SHA-256 of its level-0 values (int32,
little-endian, C order), so it does not depend on the compressor; that of a table is the
file's SHA-256. Arrays use the chunk-key encoding of the image writer (``"."`` separator).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import plural
from ..errors import CorruptFile, IntegrityError, InvalidInput, NotFound, QuantscopeError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LABELS_GROUP",
    "WrittenOutput",
    "labels_digest",
    "output_damage",
    "read_labels",
    "read_table",
    "remove_partial",
    "verify_output",
    "write_labels",
    "write_table",
]

LABELS_GROUP = "labels"
_TMP = ".tmp-"
#: Chunk-key encoding of every array quantscope writes (the image writer's, see
#: :func:`quantscope.io.chunk_path`): one folder per level, chunk files ``c.0.0.0.0.0``.
CHUNK_KEY_ENCODING: dict[str, Any] = {"name": "default", "separator": "."}


@dataclass(frozen=True)
class WrittenOutput:
    """A file or folder written: path (relative to the repository root), SHA-256, bytes."""

    path: str
    sha256: str
    size: int
    n_objects: int | None = None


def labels_digest(labels: np.ndarray) -> str:
    """SHA-256 of a label image's values (int32 little-endian, C order) and shape."""
    a = np.ascontiguousarray(labels, dtype="<i4")
    h = hashlib.sha256(json.dumps(list(a.shape)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}{_TMP}{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _image_multiscale(image_store: Path) -> dict[str, Any]:
    try:
        doc = json.loads((image_store / "zarr.json").read_text(encoding="utf-8"))
        return dict(doc["attributes"]["ome"]["multiscales"][0])
    except FileNotFoundError:
        raise NotFound(f"{image_store}: the image's OME-Zarr is missing") from None
    except (KeyError, IndexError, TypeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"{image_store}: not an OME-Zarr multiscale image ({e!r})") from e


def remove_partial(folder: Path) -> list[Path]:
    """Remove what interrupted writes left in ``folder`` (entries with a temporary name).

    Only call this where no writer can be at work in ``folder`` (the executor does it at the
    start of a run, holding the repository's write lock): a temporary entry may be the folder
    another writer is filling.
    """
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and _TMP in p.name:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


_group_locks: dict[str, threading.Lock] = {}
_group_locks_guard = threading.Lock()


@contextlib.contextmanager
def _group_lock(group_dir: Path) -> Iterator[None]:
    """Exclusive access to one ``labels/`` group: a thread lock per folder in this process,
    and ``flock`` on the folder itself for writers in other processes (dask workers)."""
    key = os.path.realpath(group_dir)
    with _group_locks_guard:
        lock = _group_locks.setdefault(key, threading.Lock())
    with lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: threads of this process only
            yield
            return
        fd = os.open(key, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


def _read_listing(group_json: Path) -> list[str]:
    """Names listed in a ``labels/zarr.json`` (empty where there is none or it is unreadable)."""
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return [str(n) for n in json.loads(group_json.read_text())["attributes"]["ome"]["labels"]]
    return []


def _write_listing(group_json: Path, names: list[str]) -> None:
    _atomic_json(
        group_json,
        {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": {"version": "0.5", "labels": names}},
        },
    )


def write_labels(
    repo_root: Path, image_store_path: str, name: str, labels: np.ndarray
) -> WrittenOutput:
    """Store a 2-D label image in the image's ``labels/<name>`` (replacing an unregistered one).

    Parameters
    ----------
    repo_root : pathlib.Path
        Repository root.
    image_store_path : str
        The image's OME-Zarr, relative to the root.
    name : str
        Name of the label image in the ``labels/`` group.
    labels : numpy.ndarray
        ``(y, x)`` integer labels, 0 = background, the shape of the image's level 0.

    Returns
    -------
    WrittenOutput
        ``path`` of the label multiscale, the SHA-256 of its values, bytes written and the
        number of objects (distinct non-zero labels).
    """
    import zarr
    from zarr.codecs import BloscCodec

    image_store = repo_root / image_store_path
    ms = _image_multiscale(image_store)
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.dtype.kind not in "iub":
        raise InvalidInput(
            f"label image {name!r}: expected a 2-D integer array, got {lab.ndim}-D {lab.dtype}"
        )
    if lab.size and (lab.min() < 0 or lab.max() > np.iinfo(np.int32).max):
        raise InvalidInput(f"label image {name!r}: values outside 0..2**31-1")
    lab = lab.astype(np.int32, copy=False)
    level0 = json.loads((image_store / ms["datasets"][0]["path"] / "zarr.json").read_text())
    img_shape = [int(n) for n in level0["shape"]]
    if tuple(img_shape[-2:]) != lab.shape:
        raise InvalidInput(
            f"label image {name!r}: shape {lab.shape} differs from the image's {img_shape[-2:]}"
        )
    group_dir = image_store / LABELS_GROUP
    group_dir.mkdir(exist_ok=True)
    # a name of this writer's own: no other writer touches it, and this one touches no other
    tmp = group_dir / f".{name}{_TMP}{uuid.uuid4().hex}"
    dest = group_dir / name
    axes = ms["axes"]
    datasets = []
    try:
        g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        for level, ds in enumerate(ms["datasets"]):
            meta = json.loads((image_store / ds["path"] / "zarr.json").read_text())
            shp = [int(n) for n in meta["shape"]]
            f = 2**level
            data = lab[::f, ::f][: shp[-2], : shp[-1]]
            full = data.reshape((1,) * (len(shp) - 2) + data.shape)
            arr = g.create_array(
                str(level),
                shape=full.shape,
                chunks=tuple([1] * (len(shp) - 2) + [min(1024, n) for n in data.shape]),
                dtype="int32",
                compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),
                fill_value=0,
                dimension_names=[a["name"] for a in axes],
                chunk_key_encoding=CHUNK_KEY_ENCODING,  # type: ignore[arg-type]
            )
            arr[...] = full
            datasets.append(
                {"path": str(level), "coordinateTransformations": ds["coordinateTransformations"]}
            )
        g.attrs["ome"] = {
            "version": "0.5",
            "image-label": {"source": {"image": "../../"}},
            "multiscales": [
                {
                    "name": name,
                    "axes": axes,
                    "datasets": datasets,
                    "type": "nearest",
                    "metadata": {
                        "description": "every level takes every 2nd pixel of the previous one",
                        "method": "quantscope.analysis.write_labels",
                    },
                }
            ],
        }
        digest = labels_digest(lab)
        with _group_lock(group_dir):
            old = None
            if dest.exists():  # an unregistered leftover of an interrupted run with this key
                old = group_dir / f".{name}{_TMP}old-{uuid.uuid4().hex}"
                os.rename(dest, old)
            os.rename(tmp, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            problem = _readback_problem(repo_root, dest, digest)
            group_json = group_dir / "zarr.json"
            listed = _read_listing(group_json)
            if problem is not None:
                shutil.rmtree(dest, ignore_errors=True)
                if name in listed:
                    _write_listing(group_json, [n for n in listed if n != name])
                raise IntegrityError(
                    f"{dest}: the label image just written cannot be read back ({problem}); "
                    "it was removed and is not registered: run the pipeline again"
                )
            if name not in listed:
                _write_listing(group_json, [*listed, name])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    n = int(np.count_nonzero(np.bincount(lab.ravel())[1:])) if lab.size else 0
    return WrittenOutput(str(dest.relative_to(repo_root)), digest, size, n)


def _readback_problem(repo_root: Path, full: Path, digest: str) -> str | None:
    """Why a stored label image does not hold ``digest`` (None when it does): every level's
    metadata present, level 0 readable and equal to the values written."""
    try:
        ms = _image_multiscale(full)
        for ds in ms["datasets"]:
            if not (full / ds["path"] / "zarr.json").is_file():
                return f"level {ds['path']} has no zarr.json"
        got = labels_digest(read_labels(repo_root, str(full.relative_to(repo_root))))
    except (OSError, ValueError, KeyError, InvalidInput, NotFound) as e:
        return str(e) or type(e).__name__
    if got != digest:
        return "its values differ from those written"
    return None


def read_labels(repo_root: Path, path: str) -> np.ndarray:
    """Level 0 of a stored label image as a 2-D int32 array."""
    from ..io import OmeZarrPlanes, UnsupportedLayout

    full = repo_root / path
    if not (full / "zarr.json").is_file():
        raise NotFound(f"{full}: stored label image not found")
    try:
        try:
            return OmeZarrPlanes(full).plane(0, 0, 0).astype(np.int32, copy=False)
        except UnsupportedLayout:
            import zarr

            arr = zarr.open_array(str(full / "0"), mode="r")
            return np.asarray(arr[0, 0, 0], dtype=np.int32)
    except QuantscopeError:
        raise
    except Exception as e:  # a damaged chunk: decoders raise what they like (blosc: RuntimeError)
        raise CorruptFile(
            f"{full}: level 0 cannot be decoded ({type(e).__name__}: {e}); the label image is "
            "damaged: delete it and run the pipeline again"
        ) from e


def write_table(repo_root: Path, path: str, table: pd.DataFrame) -> WrittenOutput:
    """Write a table as Parquet at ``path`` (relative to the root), atomically."""
    dest = repo_root / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}{_TMP}{uuid.uuid4().hex[:12]}")
    try:
        table.to_parquet(tmp, index=False)
        with tmp.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        size = tmp.stat().st_size
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return WrittenOutput(path, digest, size, len(table))


def read_table(repo_root: Path, path: str) -> pd.DataFrame:
    """A stored Parquet table."""
    import pandas as pd

    full = repo_root / path
    if not full.is_file():
        raise NotFound(f"{full}: stored table not found")
    return pd.read_parquet(full)


def output_damage(repo_root: Path, kind: str, path: str, size: int | None = None) -> str | None:
    """A cheap look at a stored output (no pixels read): None where it looks intact, else what
    is wrong. A label image needs its metadata and every level's ``zarr.json``; a table its
    file, of the recorded ``size`` where one is given. :func:`verify_output` re-hashes."""
    full = repo_root / path
    if kind == "labels":
        if not (full / "zarr.json").is_file():
            return f"{path}: missing"
        try:
            ms = _image_multiscale(full)
            levels = [str(ds["path"]) for ds in ms["datasets"]]
        except (QuantscopeError, KeyError, TypeError) as e:
            return f"{path}: cannot be read ({e})"
        for level in levels:
            if not (full / level / "zarr.json").is_file():
                return f"{path}: level {level} has no zarr.json"
        return None
    try:
        st = full.stat()
    except FileNotFoundError:
        return f"{path}: missing"
    if size is not None and st.st_size != size:
        return f"{path}: {plural(st.st_size, 'byte')}, {size} recorded"
    return None


def verify_output(repo_root: Path, kind: str, path: str, sha256: str) -> str | None:
    """Re-hash a stored output; None when it matches its recorded checksum, else what is wrong.

    A label image is hashed by its level-0 values (:func:`labels_digest`), after checking
    that every level has its metadata (:func:`output_damage`); a table by its file's bytes.
    """
    full = repo_root / path
    if not full.exists():
        return f"{path}: missing"
    if kind == "labels":
        damage = output_damage(repo_root, kind, path)
        if damage is not None:
            return damage
    try:
        if kind == "labels":
            got = labels_digest(read_labels(repo_root, path))
        else:
            with full.open("rb") as fh:
                got = hashlib.file_digest(fh, "sha256").hexdigest()
    except (OSError, ValueError, QuantscopeError) as e:
        return f"{path}: cannot be read ({e})"
    if got != sha256:
        return f"{path}: SHA-256 {got[:12]}… differs from the recorded {sha256[:12]}…"
    return None
