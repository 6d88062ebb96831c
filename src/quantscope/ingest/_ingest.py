"""Ingest: files and folders -> OME-Zarr images registered in the catalog.

One image is written under a temporary name, renamed into place, then registered in one catalog
transaction, so a process killed at any moment leaves the repository valid; leftovers of a killed
run are removed when the next ingest starts, and re-running completes the work.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import plural
from ..catalog import ImageRegistration, Repository, plate_folder
from ..errors import InvalidInput, NotFound, QuantscopeError
from ..io import (
    ChannelDisplay,
    ImageSpec,
    SourceImage,
    next_field_slot,
    open_sources,
    write_image,
    write_plate_groups,
)
from ..io._formats import NON_IMAGE_SUFFIXES
from ..metadata import ImageMetadata, from_ome, image_to_ome_xml
from ..model import Channel, Image, PlatePosition, SourceFile
from ._naming import NamePattern

if TYPE_CHECKING:
    from ..qc._process import MeasuringProcess, Outcome, Slot

__all__ = ["IngestIssue", "IngestReport", "Progress", "clean_leftovers", "collect_files", "ingest"]

# Images larger than this are written one at a time with their chunks encoded in parallel.
_LARGE_BYTES = 64 * 2**20
# Present while plate images are registered but their plate/row/well group documents are not yet
# rewritten: a run killed in between leaves it, and the next run rewrites every plate's groups.
_PLATES_DIRTY = ".quantscope.plates-dirty"


@dataclass(frozen=True)
class IngestIssue:
    """A file that was skipped, failed, or read with a remark. The message is printable text:
    control characters and binary junk that a reader put in its exception are escaped, and an
    overlong message is shortened."""

    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", printable(self.message))


_MAX_MESSAGE = 500


def printable(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` with every non-printable character escaped (``\\x00``) and, past ``limit``
    characters, cut with an ellipsis: what a reader's exception carries must never reach the
    terminal as raw bytes."""
    clean = "".join(
        ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
    # a bytes repr (b'II*\x00…') in a message is file content, not an explanation
    clean = re.sub(r"b(['\"])(?:\\x[0-9a-f]{2}|[^'\"]){24,}?\1", "<binary data>", clean)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


@dataclass
class IngestReport:
    """What one ingest did."""

    added: list[Image] = field(default_factory=list)
    skipped: list[IngestIssue] = field(default_factory=list)
    failed: list[IngestIssue] = field(default_factory=list)
    notes: list[IngestIssue] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    files: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    qc: dict[str, str] = field(default_factory=dict)  # image id -> "pass" / "warn" / "fail"
    # seconds spent on QC: measuring (summed over the images, on a QC thread or in the
    # measuring process) plus the QC step after the writes (storing metrics, flags, images
    # measured from the store)
    qc_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed_files(self) -> int:
        """How many files failed: a multi-scene file that fails in every scene counts once."""
        return len({p.strip() for f in self.failed for p in f.path.split(", ")})


Progress = Callable[[str, int, int, str], None]
"""``progress(phase, done_bytes, total_bytes, current_name)``; phase is "scan", "write" or
"qc" (pixel bytes of the images quality-checked so far)."""


# ------------------------------------------------------------------------------ collecting
def collect_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[IngestIssue]]:
    """Expand files and folders (recursively) into candidate image files.

    Hidden files and documentation/sidecar files (``.md``, ``.csv``, ``.json``…) inside folders
    are skipped; a file named explicitly is always tried. Missing paths and folders without any
    candidate file are reported as failures.
    """
    out: list[Path] = []
    failed: list[IngestIssue] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            failed.append(IngestIssue(str(p), "no such file or folder"))
            continue
        if p.is_dir():
            found = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                if any(dirpath.endswith(s) for s in (".zarr",)):
                    dirnames[:] = []
                    continue
                for fn in sorted(filenames):
                    if fn.startswith(".") or Path(fn).suffix.lower() in NON_IMAGE_SUFFIXES:
                        continue
                    found.append(Path(dirpath) / fn)
            if not found:
                failed.append(IngestIssue(str(p), "folder holds no image files"))
            for f in found:
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    out.append(f)
        elif p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    return out, failed


# ------------------------------------------------------------------------------ scanning
@dataclass
class _Scene:
    index: int
    name: str
    shape: tuple[int, int, int, int, int]
    dtype: str
    channel_names: list[str]
    physical_size: tuple[float | None, float | None, float | None]
    meta: ImageMetadata
    has_ome: bool


@dataclass
class _Scanned:
    path: Path
    sha256: str
    size: int
    format: str
    reader: str
    scenes: list[_Scene]
    ome_xml: str | None
    note: str | None
    # a single-scene file stays open from scan to write so it is parsed once; closed by close()
    opened: SourceImage | None = field(default=None, repr=False)
    closer: contextlib.ExitStack | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.closer is not None:
            self.closer.close()
        self.closer = None
        self.opened = None


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _scan(path: Path) -> _Scanned:
    try:
        size = path.stat().st_size
        sha = _sha256(path)
    except PermissionError as e:
        raise InvalidInput(f"{path}: cannot be read (permission denied)") from e
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read ({e.strerror or e})") from e
    stack = contextlib.ExitStack()
    try:
        sources = stack.enter_context(open_sources(path))
        scenes = []
        for s in sources:
            ome = s.ome() if s.ome_xml else None
            meta = from_ome(ome, s.ome_image_index) if ome is not None else ImageMetadata()
            scenes.append(
                _Scene(
                    s.scene,
                    s.scene_name,
                    s.shape,
                    s.dtype.name,
                    list(s.channel_names),
                    s.physical_size,
                    meta,
                    ome is not None,
                )
            )
        first: SourceImage = sources[0]
        scanned = _Scanned(
            path, sha, size, first.format, first.reader, scenes, first.ome_xml, first.note
        )
    except BaseException:
        stack.close()
        raise
    if len(sources) == 1:  # one job will read it: keep it open for that job
        scanned.opened, scanned.closer = first, stack
    else:  # several jobs may read scenes in parallel: each opens its own handle
        stack.close()
    return scanned


# ------------------------------------------------------------------------------ planning
@dataclass
class _Part:
    scanned: _Scanned
    scene: _Scene
    channel_token: str | None = None
    channel_name: str | None = None  # the token as the file name writes it ("w1", "d0")


@dataclass
class _Job:
    name: str
    parts: list[_Part]
    position: PlatePosition | None
    slot: int | None = None  # the field's folder in its well (0, 1, …), set when planned

    @property
    def shas(self) -> list[str]:
        return [p.scanned.sha256 for p in self.parts]

    @property
    def image_id(self) -> str:
        key = "|".join(sorted(f"{p.scanned.sha256}:{p.scene.index}" for p in self.parts))
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def nbytes(self) -> int:
        return sum(
            int(np.prod(p.scene.shape)) * np.dtype(p.scene.dtype).itemsize for p in self.parts
        )

    @property
    def label(self) -> str:
        return ", ".join(str(p.scanned.path) for p in self.parts)


def _natural(token: str | None) -> tuple[int, Any]:
    if token is None:
        return (0, "")
    return (0, int(token)) if token.isdigit() else (1, token)


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _plan(scanned: list[_Scanned], pattern: NamePattern) -> tuple[list[_Job], list[IngestIssue]]:
    jobs: list[_Job] = []
    failed: list[IngestIssue] = []
    groups: dict[tuple[str, int, int, int], list[_Part]] = {}
    sites: dict[tuple[str, str], list[_Part]] = {}  # channel files of a site without a well
    for sc in scanned:
        parsed = pattern.parse(sc.path.name) if len(sc.scenes) == 1 else None
        for scene in sc.scenes:
            pos = scene.meta.position
            token = name = None
            if pos is None and parsed is not None and parsed.on_plate:
                pos = PlatePosition(
                    plate=parsed.plate,
                    row=parsed.row,  # type: ignore[arg-type]
                    column=parsed.column,  # type: ignore[arg-type]
                    field=parsed.field,
                )
                token, name = parsed.channel, parsed.channel_name
            if pos is not None:
                key = (pos.plate, pos.row, pos.column, pos.field)
                groups.setdefault(key, []).append(_Part(sc, scene, token, name))
            elif parsed is not None and parsed.channel is not None:
                site = (str(sc.path.parent), parsed.site_key)
                sites.setdefault(site, []).append(
                    _Part(sc, scene, parsed.channel, parsed.channel_name)
                )
            else:
                name = _stem(sc.path) if len(sc.scenes) == 1 else f"{_stem(sc.path)} [{scene.name}]"
                jobs.append(_Job(name, [_Part(sc, scene)], None))
    for (_, site_key), parts in sites.items():
        parts.sort(key=lambda p: (_natural(p.channel_token), str(p.scanned.path)))
        name = re.sub(r"[._\- ]*\0[._\- ]*", "_", _stem(Path(site_key))).strip("_") or "site"
        problem = _merge_problem(parts, f"site {name!r}")
        if problem:
            failed.append(problem)
        else:
            jobs.append(_Job(name, parts, None))
    for (plate, row, col, fld), parts in groups.items():
        pos = PlatePosition(plate=plate, row=row, column=col, field=fld)
        parts.sort(key=lambda p: (_natural(p.channel_token), str(p.scanned.path)))
        problem = _merge_problem(parts, f"plate {plate!r} well {pos.well} field {fld}")
        if problem:
            failed.append(problem)
        else:
            jobs.append(_Job(f"{plate}_{pos.well}_s{fld}", parts, pos))
    return jobs, failed


def _merge_problem(parts: list[_Part], where: str) -> IngestIssue | None:
    """Why the channel files of one site cannot be merged into one image (None: they can)."""
    tokens = [p.channel_token for p in parts]
    if len(parts) > 1 and len(set(tokens)) != len(tokens):
        return IngestIssue(
            ", ".join(str(p.scanned.path) for p in parts),
            f"{len(parts)} files claim {where} with the same channel ({tokens}); "
            "give a --pattern with {channel}",
        )
    ref = parts[0].scene
    bad = [
        p
        for p in parts
        if (p.scene.shape[0], *p.scene.shape[2:]) != (ref.shape[0], *ref.shape[2:])
        or p.scene.dtype != ref.dtype
    ]
    if bad:
        return IngestIssue(
            str(bad[0].scanned.path),
            f"channel files of {where} differ in shape or dtype ({bad[0].scene.shape} "
            f"{bad[0].scene.dtype} vs {ref.shape} {ref.dtype}); they cannot be merged into one "
            "image",
        )
    return None


# ------------------------------------------------------------------------------ channels
_COLORS = [
    (re.compile(r"dapi|hoechst|dna|405|blue|nuc", re.I), "0000FF"),
    (re.compile(r"gfp|fitc|488|alexa ?488|green|fam", re.I), "00FF00"),
    (re.compile(r"rfp|mcherry|cy3|tritc|561|568|594|red|texas", re.I), "FF0000"),
    (re.compile(r"cy5|647|far.?red|640", re.I), "FF00FF"),
]
_PALETTE = ["0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF"]


def _default_color(name: str, index: int, n: int) -> str:
    for rx, color in _COLORS:
        if rx.search(name):
            return color
    return "FFFFFF" if n == 1 else _PALETTE[index % len(_PALETTE)]


def _channels(job: _Job) -> list[Channel]:
    out: list[Channel] = []
    total = sum(p.scene.shape[1] for p in job.parts)
    for part in job.parts:
        n = part.scene.shape[1]
        meta_ch = part.scene.meta.channels if len(part.scene.meta.channels) == n else []
        for k in range(n):
            idx = len(out)
            if meta_ch:
                ch = meta_ch[k]
                name = ch.name
            else:
                ch = None
                name = part.scene.channel_names[k] if k < len(part.scene.channel_names) else f"C{k}"
                if part.channel_name is not None and n == 1 and re.fullmatch(r"C\d+", name):
                    name = part.channel_name  # as the file name writes it: "w1", "d0", "DAPI"
            color = ch.color if ch is not None and ch.color not in (None, "FFFFFF") else None
            color = color or _default_color(name, idx, total)
            # every setting the metadata gives (wavelengths, exposure, illumination, detector...)
            out.append(
                ch.model_copy(update={"index": idx, "name": name, "color": color})
                if ch is not None
                else Channel(index=idx, name=name, color=color)
            )
    if len({c.name for c in out}) != len(out):  # keep channel names unique within an image
        out = [c.model_copy(update={"name": f"{c.name} ({c.index})"}) for c in out]
    return out


# ------------------------------------------------------------------------------ writing
def _significant_bits(bits: int | None, dtype: str) -> int | None:
    """The metadata's SignificantBits when it fits ``dtype`` (else None: not recorded)."""
    dt = np.dtype(dtype)
    if bits is None or dt.kind not in "ui":
        return None
    return bits if 1 <= bits <= dt.itemsize * 8 - (dt.kind == "i") else None


def _store_path(job: _Job) -> str:
    if job.position is None:
        return f"images/{job.image_id}.ome.zarr"
    p = job.position
    if job.slot is None:
        raise RuntimeError(f"{job.label}: plate field stored before its folder was chosen")
    return f"plates/{plate_folder(p.plate)}/{p.row_name}/{p.column_name}/{job.slot}"


@dataclass
class _Written:
    """A written image: its registration, and (a future of) its QC metrics and the seconds
    they took when they are measured from the planes kept while writing (None: QC measures
    the stored image later, and reports any error then)."""

    reg: ImageRegistration
    metrics: Future[tuple[dict[int, dict[str, float]] | None, float]] | None = None


class _QCPool:
    """Measures the planes the writers keep, beside the writers: in the measuring process
    (:func:`quantscope.qc.shared_process`) when it is ready, else on ``workers`` threads of
    its own.

    On a thread QC overlaps the writers' file I/O, compression and catalog work, but competes
    with them for the interpreter lock; the measuring process does not (see
    :mod:`quantscope.qc._process`), and the writers put the planes straight into its shared
    buffers. At most ``depth`` images wait to be measured: a writer that gets ahead blocks in
    :meth:`buffer` until a measurement finishes, which bounds the memory held. The plane
    buffers are recycled (no page faults for each image).
    """

    def __init__(self, workers: int, depth: int, process: MeasuringProcess | None = None) -> None:
        self.depth = max(1, depth)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="quantscope-qc")
        self._slots = threading.Semaphore(self.depth)
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._process = process
        self._shared: dict[int, Slot] = {}  # id of a buffer handed out -> its shared slot
        self._outstanding: set[Future[tuple[dict[int, dict[str, float]] | None, float]]] = set()

    def use_process(self, n_images: int, largest: int) -> None:
        """Measure in the measuring process from now on if ingest should have one for
        ``n_images`` more, the largest of ``largest`` bytes
        (:func:`quantscope.qc.process_for_ingest`). Its round trips take longer than a
        thread's hand-over, so :data:`_PROCESS_EXTRA_DEPTH` more images may wait when they are
        small (at most :data:`_QC_KEEP_BYTES`: the memory held stays bounded)."""
        if self._process is not None:
            return
        from ..qc import process_for_ingest

        self._process = process_for_ingest(n_images)
        if self._process is not None and largest <= _QC_KEEP_BYTES:
            self.depth += _PROCESS_EXTRA_DEPTH
            self._slots.release(_PROCESS_EXTRA_DEPTH)

    def buffer(self, shape: tuple[int, int, int, int, int], dtype: str) -> np.ndarray | None:
        """A ``(C, Z, Y, X)`` buffer for time point 0 of every channel and plane when QC can
        measure them from memory (the QC level is level 0 and they take at most
        _LARGE_BYTES), else None. Must be handed to :meth:`submit` or :meth:`release`."""
        from ..qc import QC_MAX_EDGE

        _, c, z, y, x = shape
        nbytes = c * z * y * x * np.dtype(dtype).itemsize
        if max(y, x) > QC_MAX_EDGE or nbytes > _LARGE_BYTES:
            return None
        self._slots.acquire()
        proc = self._process
        if proc is not None and proc.dead is None:
            try:
                slot = proc.slot(nbytes)
            except OSError:  # no shared memory to be had: a private buffer
                pass
            else:
                arr = proc.array(slot, (c, z, y, x), dtype)
                with self._lock:
                    self._shared[id(arr)] = slot
                return arr
        buf = None
        if nbytes <= _QC_KEEP_BYTES:
            with self._lock:
                for i, b in enumerate(self._free):
                    if b.nbytes >= nbytes:
                        buf = self._free.pop(i)
                        break
        if buf is None:
            buf = np.empty(max(nbytes, 1 << 20), np.uint8)
        return buf[:nbytes].view(dtype).reshape(c, z, y, x)

    def release(self, planes: np.ndarray) -> None:
        """Give back a buffer from :meth:`buffer` (measured or not)."""
        with self._lock:
            slot = self._shared.pop(id(planes), None)
        if slot is not None:
            assert self._process is not None
            self._process.release(slot)
        else:
            base = planes.base
            while isinstance(base, np.ndarray) and base.base is not None:
                base = base.base
            if isinstance(base, np.ndarray) and base.nbytes <= _QC_KEEP_BYTES:
                with self._lock:
                    if len(self._free) < 8:
                        self._free.append(base)
        self._slots.release()

    def submit(
        self, planes: np.ndarray, image: Image, ome_xml: str | None
    ) -> Future[tuple[dict[int, dict[str, float]] | None, float]]:
        """Measure ``planes`` (a buffer from :meth:`buffer`, released once measured)."""

        def run() -> tuple[dict[int, dict[str, float]] | None, float]:
            try:
                return _measure_kept(planes, image, ome_xml)
            finally:
                self.release(planes)

        with self._lock:
            slot = self._shared.get(id(planes))
        proc = self._process
        sent = None
        if slot is not None and proc is not None and proc.ready:
            from ..qc import significant_bits

            scene = image.sources[0].scene if image.sources else 0
            bits = significant_bits(ome_xml, image.dtype, scene)
            sent = proc.measure(slot, planes.shape, planes.dtype, bits)  # type: ignore[arg-type]
        if sent is None:
            return self._pool.submit(run)
        out: Future[tuple[dict[int, dict[str, float]] | None, float]] = Future()
        with self._lock:
            self._outstanding.add(out)

        def finish(done: Future[Outcome]) -> None:
            metrics, error, seconds = done.result()
            if error is None:
                self.release(planes)
                out.set_result((metrics, seconds))
            else:  # the process could not measure (or is gone): measure here
                self._pool.submit(run).add_done_callback(lambda f: out.set_result(f.result()))
            with self._lock:
                self._outstanding.discard(out)

        sent.add_done_callback(finish)
        return out

    def close(self) -> None:
        """Wait for every measurement (a write that failed after submitting leaves one nobody
        waits for), then stop the threads."""
        with self._lock:
            outstanding = list(self._outstanding)
        wait(outstanding)
        self._pool.shutdown(wait=True)


_QC_KEEP_BYTES = 16 * 2**20  # larger QC planes are not kept for reuse
_PROCESS_EXTRA_DEPTH = 4


@contextlib.contextmanager
def _qc_pool(jobs: int) -> Iterator[_QCPool]:
    """The QC pool of one ingest: one measuring thread (two for ``jobs`` >= 4), the measuring
    process once :meth:`_QCPool.use_process` finds one, and up to ``jobs + 2`` images waiting
    to be measured (``jobs + 6`` with the process, for images of at most 16 MiB).

    Against measuring in the writer threads (as soon as an image's planes are read): on the
    40 BBBC039 TIFFs, 2-core development machine, a QC thread made the overhead +11-21 %
    against +41-54 % at jobs = 1 with a load average of about 1; at jobs = 2 it needed about
    7 ms per image (the interpreter lock, see :mod:`quantscope.qc._process`) and set the
    pace. bench/qc.py gives the figures with the measuring process and with a thread."""
    pool = _QCPool(1 if jobs < 4 else 2, jobs + 2)
    try:
        yield pool
    finally:
        pool.close()


def _write_job(
    root: Path, job: _Job, chunk_pool: Executor | None, qc: _QCPool | None = None
) -> _Written:
    """Write one image; with ``qc``, also have its quality measured from the planes read
    (no read-back of the store), by the QC pool as soon as they are all read."""
    first = job.parts[0].scene
    t, _, z, y, x = first.shape
    c = sum(p.scene.shape[1] for p in job.parts)
    meta = first.meta
    phys = tuple(
        m if m is not None else s
        for m, s in zip(meta.physical_size, first.physical_size, strict=True)
    )
    channels = _channels(job)
    image = Image(
        id=job.image_id,
        name=job.name,
        shape=(t, c, z, y, x),
        dtype=first.dtype,
        physical_size_x_um=phys[0],
        physical_size_y_um=phys[1],
        physical_size_z_um=phys[2],
        significant_bits=_significant_bits(meta.significant_bits, first.dtype),
        channels=tuple(channels),
        acquisition=meta.acquisition,
        position=job.position,
        sources=tuple(
            SourceFile(
                path=str(p.scanned.path.absolute()),
                size=p.scanned.size,
                sha256=p.scanned.sha256,
                reader=p.scanned.reader,
                scene=p.scene.index,
                channel_offset=sum(q.scene.shape[1] for q in job.parts[:i]),
            )
            for i, p in enumerate(job.parts)
        ),
        store_path=_store_path(job),
    )
    ome_xml = job.parts[0].scanned.ome_xml if len(job.parts) == 1 else None
    if ome_xml is None:
        with contextlib.suppress(InvalidInput):  # a dtype OME cannot describe: pixels only
            ome_xml = image_to_ome_xml(image)
    spec = ImageSpec(
        shape=image.shape,
        dtype=image.dtype,
        name=image.name,
        physical_size=(
            image.physical_size_x_um,
            image.physical_size_y_um,
            image.physical_size_z_um,
        ),
        time_increment_s=image.acquisition.time_increment_s,
        channels=tuple(ChannelDisplay(ch.name, ch.color or "FFFFFF") for ch in channels),
    )
    dest = root / image.store_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        sources: list[tuple[int, SourceImage]] = []
        offset = 0
        for part in job.parts:
            src = part.scanned.opened
            if src is None:
                src = stack.enter_context(open_sources(part.scanned.path))[part.scene.index]
            sources.append((offset, src))
            offset += part.scene.shape[1]

        planes = qc.buffer(image.shape, image.dtype) if qc is not None else None
        if planes is not None:
            assert qc is not None
            stack.callback(lambda: None if measured else qc.release(planes))
        kept = np.zeros(planes.shape[:3], bool) if planes is not None else None
        missing = [int(np.prod(planes.shape[:3])) if planes is not None else -1]
        measured: list[Future[tuple[dict[int, dict[str, float]] | None, float]]] = []

        def keep(c: int, z: int, y0: int, y1: int, rows: np.ndarray) -> None:
            assert planes is not None and kept is not None and qc is not None
            planes[c, z, y0:y1] = rows  # what the store's level 0 holds
            missing[0] -= (y1 - y0) - int(np.count_nonzero(kept[c, z, y0:y1]))
            kept[c, z, y0:y1] = True
            if missing[0] == 0 and not measured:
                # every plane of t = 0 is read: the QC pool measures them while this
                # thread encodes and writes
                measured.append(qc.submit(planes, image, ome_xml))

        def read_rows(t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
            for off, src in reversed(sources):
                if c >= off:
                    rows = src.read_rows(t, c - off, z, y0, y1)
                    if planes is not None and t == 0:
                        keep(c, z, y0, y1, rows)
                    return rows
            raise IndexError(c)  # pragma: no cover

        result = write_image(dest, read_rows, spec, ome_xml=ome_xml, executor=chunk_pool)
    image = image.model_copy(update={"levels": result.levels, "bytes_stored": result.bytes_written})
    prefix = image.store_path
    manifest = [(f"{prefix}/{m.path}", m.size, m.sha256) for m in result.manifest]
    formats = {p.scanned.sha256: p.scanned.format for p in job.parts}
    written = _Written(ImageRegistration(image=image, source_formats=formats, manifest=manifest))
    if measured:
        written.metrics = measured[0]
    return written


def _measure_kept(
    planes: np.ndarray, image: Image, ome_xml: str | None
) -> tuple[dict[int, dict[str, float]] | None, float]:
    """QC metrics of the planes kept while writing, and the seconds it took. QC never fails a
    write: after any error here the QC step measures the stored image (and reports what goes
    wrong then)."""
    from ..qc import measure_planes

    t0 = time.perf_counter()
    metrics = None
    with contextlib.suppress(Exception):
        metrics = measure_planes(planes, image, ome_xml)
    return metrics, time.perf_counter() - t0


# ------------------------------------------------------------------------------ cleanup
def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_leftovers(repo: Repository) -> list[str]:
    """Remove stored data no catalog row refers to (left by a killed run); rewrite plate groups.

    Plate fields stored under their site number (repositories written before catalog
    migration 0006) are first renumbered ``0..n-1`` in their well (:func:`relayout_plates`),
    and a renumbering a killed run left half done is finished.

    Must run under the repository's write lock. Returns the paths removed.
    """
    from ._layout import relayout_plates

    root = repo.root
    moved = relayout_plates(repo)
    known = set(repo.store_paths().values())
    removed: list[str] = []
    images_dir = root / "images"
    if images_dir.is_dir():
        for entry in sorted(images_dir.iterdir()):
            rel = f"images/{entry.name}"
            if rel not in known:
                _rm(entry)
                removed.append(rel)
    plates_dir = root / "plates"
    known_plates = {p["store_path"] for p in repo.plates()}
    if plates_dir.is_dir():
        for plate in sorted(plates_dir.iterdir()):
            prel = f"plates/{plate.name}"
            if prel not in known_plates:
                _rm(plate)
                removed.append(prel)
                continue
            for row in sorted(d for d in plate.iterdir() if d.is_dir()):
                for col in sorted(d for d in row.iterdir() if d.is_dir()):
                    for fld in sorted(d for d in col.iterdir() if d.is_dir()):
                        rel = f"{prel}/{row.name}/{col.name}/{fld.name}"
                        if rel not in known:
                            _rm(fld)
                            removed.append(rel)
                    if col.name.startswith("."):
                        _rm(col)
                        removed.append(f"{prel}/{row.name}/{col.name}")
            # half-written group documents (zarr.json temp files) of a killed plate rewrite
            for group in (plate, *plate.glob("*"), *plate.glob("*/*")):
                if group.is_dir():
                    for tmp in sorted(group.glob(".*.tmp*")):
                        if tmp.is_file():
                            _rm(tmp)
                            removed.append(tmp.relative_to(root).as_posix())
    for tmp in sorted(root.glob(".*.tmp*")):
        _rm(tmp)
        removed.append(tmp.name)
    dirty = (root / _PLATES_DIRTY).exists()
    if removed or dirty or moved:
        update_plates(repo)
        (root / _PLATES_DIRTY).unlink(missing_ok=True)
    return removed


def update_plates(repo: Repository, names: Iterable[str] | None = None) -> None:
    """Rewrite the HCS plate/row/well groups of ``names`` (default: all) from the catalog."""
    wanted = set(names) if names is not None else None
    for p in repo.plates():
        if wanted is not None and p["name"] not in wanted:
            continue
        root = repo.root / p["store_path"]
        write_plate_groups(root, p["name"], [(r, c, f, s) for r, c, f, _, s in p["fields"]])


# ------------------------------------------------------------------------------ ingest
def ingest(
    repo: Repository,
    paths: Sequence[str | os.PathLike[str]],
    *,
    pattern: str | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    qc: bool = True,
) -> IngestReport:
    """Ingest files and folders into ``repo``.

    Each file is hashed (SHA-256); content already in the repository is skipped and reported.
    Files whose names carry plate/well/field/channel (ImageXpress names, or ``pattern``) or whose
    OME metadata places them on a plate are grouped into an HCS plate, channel files of one field
    merged into one image. A file that cannot be read is reported in ``failed`` and the rest of
    the batch proceeds.

    Parameters
    ----------
    repo
        An open repository.
    paths
        Files and folders (walked recursively).
    pattern
        File-name pattern such as ``"{plate}_{well}_s{field}_w{channel}"``; see
        :class:`~quantscope.ingest.NamePattern`. Default: ImageXpress names.
    jobs
        Threads used to hash, read, compress and write.
    progress
        Called as work advances (see :data:`Progress`).
    qc
        Run quality control (:func:`quantscope.qc.run_qc`) on the images added, and on any
        image an interrupted earlier run left without a QC status; flags are re-evaluated on
        the plates these images are on, so that dataset-level outliers compare each image with
        all its peers (the images of other plates keep their verdicts). The statuses land in
        ``report.qc``. An image QC cannot measure, or a QC error, becomes a note: it never
        fails the ingest.

    Raises
    ------
    ConcurrentAccess
        Another process is writing to the repository.
    InvalidInput
        ``pattern`` is malformed.
    """
    t0 = time.perf_counter()
    name_pattern = NamePattern(pattern)
    jobs = max(1, int(jobs))
    report = IngestReport()
    # Absolute paths: bioio-czi changes the process's working directory while it converts
    # metadata, so a relative path opened meanwhile by another thread would not be found.
    cwd = os.getcwd()
    files, failed = collect_files([Path(cwd, p) for p in paths])
    report.failed.extend(failed)
    report.files = len(files)
    if pattern is not None:
        _check_pattern(name_pattern, files, report)
    qc_pool: _QCPool | None = None
    try:
        with repo.write_lock(), contextlib.ExitStack() as stack:
            report.cleaned = clean_leftovers(repo)
            dirty = repo.root / _PLATES_DIRTY
            touched: set[str] = set()
            measured: dict[str, dict[int, dict[str, float]]] | None = {} if qc else None
            if qc:
                qc_pool = stack.enter_context(_qc_pool(jobs))
            counter = _Counter(sum(_size(f) for f in files))
            # windows of files, never splitting the channel files of one field, so files are
            # parsed once (kept open from scan to write) while open files stay bounded
            for window in _windows(files, name_pattern):
                scanned = _scan_all(window, jobs, report, progress, counter)
                try:
                    plan, plan_failed = _plan(scanned, name_pattern)
                    report.failed.extend(plan_failed)
                    todo = _skip_known(repo, plan, report)
                    if any(job.position is not None for job in todo):
                        dirty.touch()
                    touched |= _write_all(
                        repo, todo, jobs, report, progress, counter, measured, qc_pool
                    )
                finally:
                    for sc in scanned:
                        sc.close()
            if touched:
                update_plates(repo, touched)
            dirty.unlink(missing_ok=True)
            # sidecars (quantscope.yaml/.csv) in the ingested folders: REMBI annotations
            for out in repo.apply_sidecars([Path(cwd, p) for p in paths]):
                (report.failed if out.error else report.notes).append(
                    IngestIssue(out.path, out.message)
                )
            if qc:
                _run_qc(repo, report, jobs, progress, measured or {})
    finally:
        # concurrent bioio-czi metadata conversions can leave the cwd changed for good
        if os.getcwd() != cwd:
            os.chdir(cwd)
    report.seconds = time.perf_counter() - t0
    return report


def _run_qc(
    repo: Repository,
    report: IngestReport,
    jobs: int,
    progress: Progress | None,
    measured: dict[str, dict[int, dict[str, float]]],
) -> None:
    """Quality control of the images added (and of any left unchecked by a killed run).

    ``measured`` holds the metrics measured from the planes kept in memory; the other images are
    measured from the store. The metrics of the whole ingest are stored in one transaction.
    """
    from ..qc import run_qc

    t0 = time.perf_counter()
    try:
        ids = [img.id for img in report.added]
        added = set(ids)
        ids += [i for i in repo.unchecked_images() if i not in added]
        if not ids:
            return

        def qc_progress(done: int, total: int, name: str) -> None:
            if progress is not None:
                progress("qc", done, total, name)

        result = run_qc(
            repo, ids, jobs=jobs, progress=qc_progress, lock=False, premeasured=measured
        )
    except QuantscopeError as e:
        report.notes.append(IngestIssue("quality control", f"not run: {e}"))
        return
    except Exception as e:  # QC must never fail an ingest that stored its images
        report.notes.append(
            IngestIssue("quality control", f"not run: unexpected {type(e).__name__}: {e}")
        )
        return
    finally:
        report.qc_seconds += time.perf_counter() - t0
    names = {img.id: img.name for img in report.added}
    for image_id, res in result.images.items():
        report.qc[image_id] = res.status
        if res.error is not None:
            report.notes.append(
                IngestIssue(
                    names.get(image_id, res.name),
                    f"quality could not be measured: {res.error}",
                )
            )


_WINDOW = 256  # files scanned (and kept open) before their images are written


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class _Counter:
    """Progress totals across windows: bytes of all files, bytes scanned and written so far."""

    total: int
    scanned: int = 0
    written: int = 0
    write_total: int = 0


def _check_pattern(pattern: NamePattern, files: list[Path], report: IngestReport) -> None:
    """A user's pattern that matches none of the files is an error (nothing is ingested); one
    that misses some of them says how many, with an example."""

    def matches(f: Path) -> bool:
        try:
            return pattern.parse(f.name) is not None
        except InvalidInput:
            return True  # matches, with a bad value: reported for that file when planned

    missed = [f for f in files if not matches(f)]
    if files and len(missed) == len(files):
        raise InvalidInput(
            f"pattern {pattern.pattern!r} matches none of the {plural(len(files), 'file')} "
            f"(for example {files[0].name!r}); nothing was ingested. The pattern must match "
            "the file name from its first character"
        )
    if missed:
        report.notes.append(
            IngestIssue(
                str(missed[0].parent),
                f"{len(missed)} of {plural(len(files), 'file')} "
                f"{'does' if len(missed) == 1 else 'do'} not match pattern "
                f"{pattern.pattern!r} (for example {missed[0].name!r}): each is stored as an "
                "image of its own, without a plate position",
            )
        )


def _windows(files: list[Path], pattern: NamePattern) -> Iterable[list[Path]]:
    """Split ``files`` into runs of about ``_WINDOW`` files; files whose names place them on the
    same plate field (channel files to merge) always land in the same run."""
    groups: dict[tuple[Any, ...] | Path, list[Path]] = {}
    for f in files:
        try:
            parsed = pattern.parse(f.name)
        except InvalidInput:
            parsed = None
        key: tuple[Any, ...] | Path = f
        if parsed is not None and parsed.on_plate:
            key = (parsed.plate, parsed.row, parsed.column, parsed.field)
        elif parsed is not None and parsed.channel is not None:
            key = (str(f.parent), parsed.site_key)
        groups.setdefault(key, []).append(f)
    window: list[Path] = []
    for members in groups.values():
        if window and len(window) + len(members) > _WINDOW:
            yield window
            window = []
        window.extend(members)
    if window:
        yield window


def _scan_all(
    files: list[Path],
    jobs: int,
    report: IngestReport,
    progress: Progress | None,
    counter: _Counter,
) -> list[_Scanned]:
    out: list[_Scanned] = []
    with ThreadPoolExecutor(jobs) as pool:
        futures = [(f, pool.submit(_scan, f)) for f in files]
        for f, fut in futures:
            try:
                sc = fut.result()
            except QuantscopeError as e:
                report.failed.append(IngestIssue(str(f), _strip_path(str(e), f)))
                continue
            except Exception as e:  # a reader plugin's own error: report, keep going
                report.failed.append(IngestIssue(str(f), f"unexpected {type(e).__name__}: {e}"))
                continue
            out.append(sc)
            if sc.note:
                report.notes.append(IngestIssue(str(f), _strip_path(sc.note, f)))
            counter.scanned += sc.size
            report.bytes_read += sc.size
            if progress:
                progress("scan", counter.scanned, counter.total, f.name)
    return out


def _strip_path(msg: str, path: Path) -> str:
    for prefix in (f"{path}: ", f"{path.name}: "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _skip_known(repo: Repository, plan: list[_Job], report: IngestReport) -> list[_Job]:
    known = repo.known_sources([sha for job in plan for sha in job.shas])
    occupied = repo.plate_positions([job.position.plate for job in plan if job.position])
    slots = repo.well_folders([job.position.plate for job in plan if job.position])
    todo: list[_Job] = []
    planned_ids: set[str] = set()
    for job in plan:
        already = [known[s] for s in job.shas if s in known]
        if job.image_id in planned_ids:
            report.skipped.append(
                IngestIssue(job.label, "same content as another file in this batch")
            )
            continue
        if already and len(already) == len(job.shas):
            ids = sorted({i for ids in already for i in ids})
            report.skipped.append(
                IngestIssue(job.label, f"already ingested (same SHA-256) as image {', '.join(ids)}")
            )
            continue
        if job.position is not None:
            pos = job.position
            holder = occupied.get((pos.plate, pos.row, pos.column, pos.field))
            if holder is not None:
                report.failed.append(
                    IngestIssue(
                        job.label,
                        f"plate {job.position.plate!r} well {job.position.well} field "
                        f"{job.position.field} already holds image {holder} made from "
                        "other files",
                    )
                )
                continue
        planned_ids.add(job.image_id)
        todo.append(job)
    # each well's fields are the folders 0..n-1 (what NGFF readers expect), in site order
    # within a batch; the site number itself is recorded in the catalog and the well metadata
    placed = [(j.position, j) for j in todo if j.position is not None]
    for where, job in sorted(placed, key=lambda pj: pj[0].field):
        well = slots.setdefault((where.plate, where.row, where.column), set())
        job.slot = next_field_slot(well)
        well.add(str(job.slot))
    return todo


_BATCH = 8  # images registered per catalog transaction, at most


def _write_all(
    repo: Repository,
    todo: list[_Job],
    jobs: int,
    report: IngestReport,
    progress: Progress | None,
    counter: _Counter,
    measured: dict[str, dict[int, dict[str, float]]] | None = None,
    qc: _QCPool | None = None,
) -> set[str]:
    """Write the images of ``todo`` (in a pool) and register them (in this thread).

    With ``measured`` (a dict) and ``qc``, the quality of each image is measured from the
    planes the workers read (on the QC pool, beside the writing; no read-back) and the
    metrics of the images registered are added to it.

    Registrations are batched while workers keep writing: a batch is flushed when it is full and
    at the end (fewer transactions, less contention for the interpreter lock). A batch is one
    transaction; if it fails, its images are registered one by one so only the faulty one is
    reported (and its files removed).
    """
    touched: set[str] = set()
    counter.write_total += sum(j.nbytes for j in todo)
    pending: list[tuple[_Job, ImageRegistration]] = []
    metrics: dict[str, Future[tuple[dict[int, dict[str, float]] | None, float]]] = {}
    registered: set[str] = set()
    if measured is None:
        qc = None
    if qc is not None:
        kept = [j.nbytes for j in todo if j.nbytes <= _LARGE_BYTES]  # measured from memory
        qc.use_process(len(kept), max(kept, default=0))

    def done(job: _Job, error: str | None, reg: ImageRegistration | None) -> None:
        if error is not None:
            report.failed.append(IngestIssue(job.label, error))
        elif reg is not None:
            report.added.append(reg.image)
            registered.add(reg.image.id)
            if reg.image.position is not None:
                touched.add(reg.image.position.plate)
        for part in job.parts:  # release the file (and its decoded pixels) at once
            part.scanned.close()
        counter.written += job.nbytes
        if progress:
            progress("write", counter.written, counter.write_total, job.name)

    def flush() -> None:
        batch = pending[:]
        pending.clear()
        if not batch:
            return
        try:
            repo.register_many([reg for _, reg in batch])
        except QuantscopeError as e:
            if len(batch) == 1:
                job, reg = batch[0]
                _rm(repo.root / reg.image.store_path)
                done(job, _strip_path(str(e), job.parts[0].scanned.path), None)
                return
            for item in batch:  # isolate the faulty image
                pending.append(item)
                flush()
            return
        except BaseException:
            for _, reg in batch:
                _rm(repo.root / reg.image.store_path)
            raise
        for job, reg in batch:
            done(job, None, reg)

    def written(job: _Job, fut: Future[_Written] | None, out: _Written | None) -> None:
        reg: ImageRegistration | None = None
        try:
            if fut is not None:
                out = fut.result()
            assert out is not None
            reg = out.reg
            if out.metrics is not None:
                metrics[reg.image.id] = out.metrics
        except QuantscopeError as e:
            done(job, _strip_path(str(e), job.parts[0].scanned.path), None)
        except (OSError, ValueError, RuntimeError) as e:
            done(job, f"{type(e).__name__}: {e}", None)
        else:
            assert reg is not None
            pending.append((job, reg))
        if len(pending) >= _BATCH:
            flush()

    small = [j for j in todo if j.nbytes <= _LARGE_BYTES]
    large = [j for j in todo if j.nbytes > _LARGE_BYTES]
    try:
        _write_pooled(repo, small, large, jobs, qc, written, done, flush)
    finally:
        # the measurements of the images written (the QC pool waits for none of the others)
        for image_id, fut in metrics.items():
            out, seconds = fut.result()  # _measure_kept never raises
            report.qc_seconds += seconds
            if out is not None and measured is not None and image_id in registered:
                measured[image_id] = out
    return touched


def _write_pooled(
    repo: Repository,
    small: list[_Job],
    large: list[_Job],
    jobs: int,
    qc: _QCPool | None,
    written: Callable[[_Job, Future[_Written] | None, _Written | None], None],
    done: Callable[[_Job, str | None, ImageRegistration | None], None],
    flush: Callable[[], None],
) -> None:
    """The writing loop of :func:`_write_all`: small images in a pool of ``jobs`` threads,
    then each large one with its chunks spread over the pool."""
    with ThreadPoolExecutor(jobs) as pool:
        futures = [(j, pool.submit(_write_job, repo.root, j, None, qc)) for j in small]
        for j, fut in futures:
            wait([fut])
            written(j, fut, None)
        flush()
        for j in large:
            try:
                out = _write_job(repo.root, j, pool if jobs > 1 else None, qc)
            except (QuantscopeError, OSError, ValueError, RuntimeError) as e:
                done(j, _strip_path(str(e), j.parts[0].scanned.path), None)
                continue
            written(j, None, out)
            flush()  # a large image is registered as soon as it is written


def verify(repo: Repository, jobs: int = 2) -> list[IngestIssue]:
    """Re-hash every stored file against the catalog's manifest, and every registered analysis
    output (label images by their values, tables by their bytes) against its recorded
    checksum; list what changed or is missing."""
    from ..analysis import verify_output

    entries = repo.stored_files()
    problems: list[IngestIssue] = []

    def check(e: tuple[str, str, int, str]) -> IngestIssue | None:
        image_id, rel, size, sha = e
        path = repo.root / rel
        try:
            st = path.stat()
        except FileNotFoundError:
            return IngestIssue(rel, f"missing (image {image_id})")
        if st.st_size != size:
            return IngestIssue(
                rel, f"size changed from {size} to {st.st_size} bytes (image {image_id})"
            )
        if _sha256(path) != sha:
            return IngestIssue(rel, f"content changed: SHA-256 differs (image {image_id})")
        return None

    outputs: dict[str, dict[str, Any]] = {}
    for run in repo.runs():
        for a in repo.run_artifacts(run["id"]):
            outputs.setdefault(a["key"], a)

    def check_output(a: dict[str, Any]) -> IngestIssue | None:
        problem = verify_output(repo.root, a["kind"], a["path"], a["sha256"])
        if problem is None:
            return None
        what = problem.removeprefix(f"{a['path']}: ")
        return IngestIssue(
            a["path"],
            f"{what} (analysis output {a['output']} of step {a['step']}, image {a['image_id']}, "
            f"run {a['run_id'][:12]}; delete it and run the pipeline again: a missing output "
            "is computed anew)",
        )

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for res in pool.map(check, entries):
            if res is not None:
                problems.append(res)
        for res in pool.map(check_output, outputs.values()):
            if res is not None:
                problems.append(res)
    if not entries and repo.summary()["images"]:
        raise NotFound(f"{repo.root}: the catalog lists images but no stored-file manifest")
    return problems
