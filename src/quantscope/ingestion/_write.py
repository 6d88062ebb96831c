"""Ingest writing: one job -> one OME-Zarr image (pyramid, OME-XML, QC planes kept for the
measuring process), registered in batches."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..catalog import ImageRegistration, Repository, plate_folder
from ..errors import InvalidInput, QuantscopeError
from ..io import (
    ChannelDisplay,
    ImageSpec,
    SourceImage,
    open_sources,
    write_image,
)
from ..metadata import image_to_ome_xml
from ..model import Channel, Image, SourceFile
from ._integrity import _rm
from ._plan import _Counter, _Job, _strip_path
from ._report import IngestIssue, IngestReport, Progress

if TYPE_CHECKING:
    from ..qc._process import MeasuringProcess, Outcome, Slot

__all__ = ["ImageWriter"]  # used by ingest() only

# Images larger than this are written one at a time with their chunks encoded in parallel.
_LARGE_BYTES = 64 * 2**20

# what measuring the planes kept gives: QC metrics by channel (None: measure the store later), and
# the seconds it took
_Metrics = tuple[dict[int, dict[str, float]] | None, float]


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
    metrics: Future[_Metrics] | None = None


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


def _image_of(job: _Job) -> Image:
    """The model of the image ``job`` writes (levels and bytes stored come once written)."""
    first = job.parts[0].scene
    t, _, z, y, x = first.shape
    c = sum(p.scene.shape[1] for p in job.parts)
    meta = first.meta
    phys = tuple(
        m if m is not None else s
        for m, s in zip(meta.physical_size, first.physical_size, strict=True)
    )
    return Image(
        id=job.image_id,
        name=job.name,
        shape=(t, c, z, y, x),
        dtype=first.dtype,
        physical_size_x_um=phys[0],
        physical_size_y_um=phys[1],
        physical_size_z_um=phys[2],
        significant_bits=_significant_bits(meta.significant_bits, first.dtype),
        channels=tuple(_channels(job)),
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


def _ome_xml_of(job: _Job, image: Image) -> str | None:
    """The OME-XML stored with the image: the source's own for a single file, else built from
    ``image`` (None for a dtype OME cannot describe: pixels only)."""
    ome_xml = job.parts[0].scanned.ome_xml if len(job.parts) == 1 else None
    if ome_xml is None:
        with contextlib.suppress(InvalidInput):
            ome_xml = image_to_ome_xml(image)
    return ome_xml


def _spec_of(image: Image) -> ImageSpec:
    """What :func:`~quantscope.io.write_image` needs to know of ``image``."""
    return ImageSpec(
        shape=image.shape,
        dtype=image.dtype,
        name=image.name,
        physical_size=(
            image.physical_size_x_um,
            image.physical_size_y_um,
            image.physical_size_z_um,
        ),
        time_increment_s=image.acquisition.time_increment_s,
        channels=tuple(ChannelDisplay(ch.name, ch.color or "FFFFFF") for ch in image.channels),
    )


class _RowReader:
    """The rows of one image for :func:`~quantscope.io.write_image`, read from its source files
    (``sources``: the image's first channel from each file, and the file).

    With ``planes`` (a buffer of ``qc``), the rows of time point 0 are kept in it as they are
    read, which is what the store's level 0 holds; once every plane is complete, the QC pool
    measures them (:attr:`measured`) while the writer encodes and writes.
    """

    def __init__(
        self,
        sources: list[tuple[int, SourceImage]],
        image: Image,
        ome_xml: str | None,
        qc: _QCPool | None,
        planes: np.ndarray | None,
    ) -> None:
        self._sources = sources
        self._image = image
        self._ome_xml = ome_xml
        self._qc = qc
        self._planes = planes
        self._kept = np.zeros(planes.shape[:3], bool) if planes is not None else None
        self._missing = int(np.prod(planes.shape[:3])) if planes is not None else -1
        self.measured: Future[_Metrics] | None = None

    def __call__(self, t: int, c: int, z: int, y0: int, y1: int) -> np.ndarray:
        for off, src in reversed(self._sources):
            if c >= off:
                rows = src.read_rows(t, c - off, z, y0, y1)
                if self._planes is not None and t == 0:
                    self._keep(c, z, y0, y1, rows)
                return rows
        raise IndexError(c)  # pragma: no cover

    def _keep(self, c: int, z: int, y0: int, y1: int, rows: np.ndarray) -> None:
        planes, kept, qc = self._planes, self._kept, self._qc
        assert planes is not None and kept is not None and qc is not None
        planes[c, z, y0:y1] = rows
        self._missing -= (y1 - y0) - int(np.count_nonzero(kept[c, z, y0:y1]))
        kept[c, z, y0:y1] = True
        if self._missing == 0 and self.measured is None:
            # every plane of t = 0 is read: the QC pool measures them while this thread
            # encodes and writes
            self.measured = qc.submit(planes, self._image, self._ome_xml)

    def release_unmeasured(self) -> None:
        """Give the QC buffer back unless it was handed to the QC pool (which releases it)."""
        if self._planes is not None and self.measured is None:
            assert self._qc is not None
            self._qc.release(self._planes)


def _write_job(
    root: Path, job: _Job, chunk_pool: Executor | None, qc: _QCPool | None = None
) -> _Written:
    """Write one image; with ``qc``, also have its quality measured from the planes read
    (no read-back of the store), by the QC pool as soon as they are all read."""
    image = _image_of(job)
    ome_xml = _ome_xml_of(job, image)
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
        rows = _RowReader(sources, image, ome_xml, qc, planes)
        if planes is not None:
            stack.callback(rows.release_unmeasured)
        result = write_image(dest, rows, _spec_of(image), ome_xml=ome_xml, executor=chunk_pool)
    image = image.model_copy(update={"levels": result.levels, "bytes_stored": result.bytes_written})
    prefix = image.store_path
    manifest = [(f"{prefix}/{m.path}", m.size, m.sha256) for m in result.manifest]
    formats = {p.scanned.sha256: p.scanned.format for p in job.parts}
    return _Written(
        ImageRegistration(image=image, source_formats=formats, manifest=manifest),
        rows.measured,
    )


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


_BATCH = 8  # images registered per catalog transaction, at most


class ImageWriter:
    """Writes the images of one ingest (in a pool of threads) and registers them in the catalog
    (in the calling thread).

    With ``measured`` (a dict) and ``qc``, the quality of each image is measured from the planes
    the writers read (on the QC pool, beside the writing; no read-back), and the metrics of the
    images registered are added to ``measured``.

    Registrations are batched while the pool keeps writing: a batch is flushed when it is full
    and at the end (fewer transactions, less contention for the interpreter lock). A batch is
    one transaction; if it fails, its images are registered one by one so only the faulty one
    is reported (and its files removed). An image is written under a temporary name and renamed
    into place before it is registered, so a process killed at any moment leaves files that the
    next ingest removes, never a registration without its files.

    Each image's outcome lands in ``report`` (``added`` or ``failed``) and in ``progress``
    (``"write"``); :attr:`touched` collects the plates of the images registered.
    """

    def __init__(
        self,
        repo: Repository,
        report: IngestReport,
        counter: _Counter,
        *,
        jobs: int = 1,
        progress: Progress | None = None,
        measured: dict[str, dict[int, dict[str, float]]] | None = None,
        qc: _QCPool | None = None,
    ) -> None:
        self.repo = repo
        self.report = report
        self.counter = counter
        self.jobs = jobs
        self.progress = progress
        self.measured = measured
        self.qc = qc if measured is not None else None
        self.touched: set[str] = set()  # plates of the images registered
        self._pending: list[tuple[_Job, ImageRegistration]] = []  # written, not registered
        self._metrics: dict[str, Future[_Metrics]] = {}  # image id -> its QC measurement
        self._registered: set[str] = set()

    def write(self, todo: list[_Job]) -> None:
        """Write and register the images of ``todo`` (one window of the ingest): small images
        in a pool of ``jobs`` threads, then each large one with its chunks spread over the
        pool."""
        self.counter.write_total += sum(j.nbytes for j in todo)
        small = [j for j in todo if j.nbytes <= _LARGE_BYTES]
        large = [j for j in todo if j.nbytes > _LARGE_BYTES]
        if self.qc is not None:
            kept = [j.nbytes for j in small]  # measured from memory
            self.qc.use_process(len(kept), max(kept, default=0))
        try:
            with ThreadPoolExecutor(self.jobs) as pool:
                futures = [
                    (j, pool.submit(_write_job, self.repo.root, j, None, self.qc)) for j in small
                ]
                for j, fut in futures:
                    wait([fut])
                    self._written(j, fut)
                self._flush()
                for j in large:
                    self._write_large(j, pool)
        finally:
            self._collect_metrics()

    def _write_large(self, job: _Job, pool: Executor) -> None:
        """Write one large image, its chunks encoded on ``pool``, and register it at once."""
        try:
            out = _write_job(self.repo.root, job, pool if self.jobs > 1 else None, self.qc)
        except (QuantscopeError, OSError, ValueError, RuntimeError) as e:
            self._done(job, _strip_path(str(e), job.parts[0].scanned.path), None)
            return
        self._written(job, out)
        self._flush()

    def _written(self, job: _Job, out: _Written | Future[_Written]) -> None:
        """A write has ended: queue its image for registration, or report why it failed."""
        try:
            if isinstance(out, Future):
                out = out.result()
            reg = out.reg
            if out.metrics is not None:
                self._metrics[reg.image.id] = out.metrics
        except QuantscopeError as e:
            self._done(job, _strip_path(str(e), job.parts[0].scanned.path), None)
        except (OSError, ValueError, RuntimeError) as e:
            self._done(job, f"{type(e).__name__}: {e}", None)
        else:
            self._pending.append((job, reg))
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        """Register the images written so far in one transaction (one by one if it fails)."""
        batch = self._pending[:]
        self._pending.clear()
        if not batch:
            return
        try:
            self.repo.images.register_many([reg for _, reg in batch])
        except QuantscopeError as e:
            if len(batch) == 1:
                job, reg = batch[0]
                _rm(self.repo.root / reg.image.store_path)
                self._done(job, _strip_path(str(e), job.parts[0].scanned.path), None)
                return
            for item in batch:  # isolate the faulty image
                self._pending.append(item)
                self._flush()
            return
        except BaseException:
            for _, reg in batch:
                _rm(self.repo.root / reg.image.store_path)
            raise
        for job, reg in batch:
            self._done(job, None, reg)

    def _done(self, job: _Job, error: str | None, reg: ImageRegistration | None) -> None:
        """An image is registered (``reg``) or has failed (``error``): report it, release its
        files and advance the progress."""
        if error is not None:
            self.report.failed.append(IngestIssue(job.label, error))
        elif reg is not None:
            self.report.added.append(reg.image)
            self._registered.add(reg.image.id)
            if reg.image.position is not None:
                self.touched.add(reg.image.position.plate)
        for part in job.parts:  # release the file (and its decoded pixels) at once
            part.scanned.close()
        self.counter.written += job.nbytes
        if self.progress:
            self.progress("write", self.counter.written, self.counter.write_total, job.name)

    def _collect_metrics(self) -> None:
        """Wait for the measurements of the images written (the QC pool waits for none of the
        others); keep those of the images registered."""
        metrics, self._metrics = self._metrics, {}
        for image_id, fut in metrics.items():
            out, seconds = fut.result()  # _measure_kept never raises
            self.report.qc_seconds += seconds
            if out is not None and self.measured is not None and image_id in self._registered:
                self.measured[image_id] = out
