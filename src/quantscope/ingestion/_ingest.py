"""Ingest: files and folders -> OME-Zarr images registered in the catalog.

One image is written under a temporary name, renamed into place, then registered in one catalog
transaction, so a process killed at any moment leaves the repository valid; leftovers of a killed
run are removed when the next ingest starts, and re-running completes the work.

This module orchestrates; the rooms it uses: ``_plan`` (collect, scan, place on plates, group
channel files into jobs, skip known content), ``_write`` (an ``ImageWriter``: a job -> an
OME-Zarr image, QC planes kept for the measuring process, registration in batches),
``_integrity`` (leftovers of killed runs, plate group documents, ``verify``), ``_layout``
(renumbering old plate fields) and ``_report`` (what an ingest reports).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..catalog import Repository
from ..errors import QuantscopeError
from ._integrity import _PLATES_DIRTY, clean_leftovers, update_plates
from ._naming import NamePattern
from ._plan import (
    _check_pattern,
    _Counter,
    _plan,
    _scan_all,
    _size,
    _skip_known,
    _windows,
    collect_files,
)
from ._report import IngestIssue, IngestReport, Progress
from ._write import ImageWriter, _qc_pool, _QCPool

__all__ = ["ingest"]


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
        :class:`~quantscope.ingestion.NamePattern`. Default: ImageXpress names.
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
            measured: dict[str, dict[int, dict[str, float]]] | None = {} if qc else None
            if qc:
                qc_pool = stack.enter_context(_qc_pool(jobs))
            counter = _Counter(sum(_size(f) for f in files))
            writer = ImageWriter(
                repo, report, counter, jobs=jobs, progress=progress, measured=measured, qc=qc_pool
            )
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
                    writer.write(todo)
                finally:
                    for sc in scanned:
                        sc.close()
            if writer.touched:
                update_plates(repo, writer.touched)
            dirty.unlink(missing_ok=True)
            # sidecars (quantscope.yaml/.csv) in the ingested folders: REMBI annotations
            for out in repo.annotations.apply_sidecars([Path(cwd, p) for p in paths]):
                (report.failed if out.error else report.notes).append(
                    IngestIssue(out.path, out.message)
                )
            if qc:  # run_qc refreshes the catalog's statistics at its end
                _run_qc(repo, report, jobs, progress, measured or {})
            else:
                repo.analyze()
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
        ids += [i for i in repo.quality.unchecked() if i not in added]
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
