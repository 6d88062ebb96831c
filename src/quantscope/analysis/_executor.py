"""Run a pipeline over the images of a repository, on Dask, incrementally.

For every selected image the executor builds a small task graph: read the channels a step needs,
run each step that must be computed, load the stored outputs of the steps that need not be,
collect what happened. Every step is keyed by a digest of its inputs (the SHA-256 of the source
files the image came from and the channel index; or the keys of the upstream steps; or the
checksum of an illumination profile), the tool's identity (name, version, the distribution that
ships it and its version, the SHA-256 of its source: :func:`~quantscope.analysis.tool_identity`),
the hash of its parameters, and the pixel size it was given (for tools that use one: the run's
override, else the image's, else the pipeline's ``pixel_size_um``). A step whose stored outputs
(label images, tables) are registered under that key, and are intact, is reused, not computed,
so re-running an unchanged pipeline computes nothing, and changing a parameter or the pixel size
recomputes that step and the steps downstream of it only. A registered output that is missing
or damaged (a level without metadata, a table of another size; a checksum that differs, for
outputs read back) is unregistered and computed again. Image outputs (an
illumination-corrected channel) stay in memory and are recomputed when a computed step needs
them.

Steps run as tasks of one Dask graph: the local threaded scheduler by default (``jobs``
threads), or a ``distributed`` cluster by address (``scheduler="tcp://host:8786"``; the workers
must see the repository's folder and have the same tools installed). Each image's results are
registered in the catalog, in one transaction, as soon as that image is done; a step that fails
is recorded with its error and does not stop the others, and the next run retries exactly the
steps that failed or were skipped. Outputs are written under temporary names and renamed before
they are registered, so a killed run leaves nothing half-written registered.

This module holds :func:`run_pipeline` (checks, the run's record, cleaning up after killed runs,
registering each image's results), the execution of the graph on a scheduler, the consolidation
of the tables and the :class:`RunReport`; the planning (image selection, step keys, the graph) is
in :mod:`._plan`, the tasks the workers run in :mod:`._tasks`.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._files import user_name
from ..errors import InvalidInput
from ._outputs import read_table, remove_partial, write_table
from ._pipeline import Pipeline
from ._plan import _build_graph, _profiles, _select
from ._tasks import ImageResult, _now
from ._tool import ToolUnavailable

if TYPE_CHECKING:
    from ..catalog import Repository
    from ..model import Image


__all__ = ["Progress", "RunReport", "StepFailure", "run_pipeline", "software_versions"]

#: ``progress(done, total, image_name)``: called after each image's results are registered.
Progress = Callable[[int, int, str], None]

_KEY_PACKAGES = (
    "quantscope",
    "numpy",
    "scipy",
    "scikit-image",
    "pandas",
    "pyarrow",
    "dask",
    "distributed",
    "zarr",
    "pydantic",
    "cp_measure",
    "cellpose",
    "stardist",
)


def software_versions(tools: Iterable[str] = ()) -> dict[str, str]:
    """Python and the versions of quantscope and the libraries that compute results; for each
    tool name in ``tools``, ``"tool:<name>"``: the package that provides it and its version
    (``"quantscope 0.1.0"``, ``"(in process)"`` for :func:`register_tool`)."""
    import platform
    from importlib import metadata

    from ._registry import installed_tools

    out = {"python": platform.python_version()}
    for name in _KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    names = tuple(tools)
    entries = installed_tools(include_broken=True) if names else {}
    for tool in names:
        entry = entries.get(tool)
        out[f"tool:{tool}"] = entry.distribution if entry is not None else "?"
    return out


@dataclass(frozen=True)
class StepFailure:
    """A step that failed (or was skipped because an input failed) for one image."""

    image_id: str
    image_name: str
    step: str
    status: str
    error_type: str
    message: str


@dataclass
class RunReport:
    """What :func:`run_pipeline` did."""

    run_id: str
    pipeline: str
    spec_hash: str
    status: str
    images: int = 0
    computed: int = 0
    reused: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[StepFailure] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    cleaned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.skipped == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, failures as records; what ``quantscope run --json``
        prints."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "spec_hash": self.spec_hash,
            "status": self.status,
            "images": self.images,
            "computed": self.computed,
            "reused": self.reused,
            "failed": self.failed,
            "skipped": self.skipped,
            "failures": [vars(f) for f in self.failures],
            "tables": self.tables,
            "seconds": self.seconds,
            "cleaned": self.cleaned,
        }


def run_pipeline(
    repo: Repository,
    pipeline: Pipeline,
    *,
    image_ids: Sequence[str] | None = None,
    where: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    pixel_size_um: float | None = None,
) -> RunReport:
    """Run ``pipeline`` over the selected images of ``repo`` and record everything.

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository; the run holds its write lock.
    pipeline : Pipeline
        From :func:`quantscope.analysis.load_pipeline`.
    image_ids : sequence of str, optional
        Images to run on (default: every image, or those ``where`` selects).
    where : str, optional
        A catalog query (``quantscope find`` syntax) selecting the images.
    jobs : int
        Threads of the local Dask scheduler (1: run in this thread).
    scheduler : str, optional
        Address of a ``distributed`` scheduler (``tcp://host:8786``): the same work goes to
        that cluster, whose workers must see the repository folder.
    progress : callable, optional
        ``progress(done, total, image_name)`` after each image.
    pixel_size_um : float, optional
        Pixel size in µm to use for every selected image instead of the one in its metadata
        (the pipeline's ``pixel_size_um`` is used only where an image has none). It feeds the
        tools and the step keys, and is recorded in the run's spec and with each output.

    Returns
    -------
    RunReport
        Run id, counts of computed / reused / failed / skipped steps, failures with their
        reasons, the consolidated tables written under ``tables/<run>/``.

    Raises
    ------
    InvalidInput
        Nothing is selected, ``jobs`` < 1, ``pixel_size_um`` is not a positive size, or
        ``pipeline`` is not a :class:`Pipeline`.
    """
    from ..qc import load_profile

    _check_arguments(pipeline, jobs, pixel_size_um)
    t0 = time.perf_counter()
    with repo.write_lock():
        stale = repo.runs.interrupt_stale()
        cleaned = _clean_interrupted(repo, stale)
        images = _select(repo, image_ids, where)
        cleaned += _clean_partial_labels(repo, images)
        run_id = uuid.uuid4().hex
        repo.runs.start(
            _run_record(run_id, pipeline, where, jobs, scheduler, pixel_size_um, len(images))
        )
        report = RunReport(run_id, pipeline.name, pipeline.hash, "running", images=len(images))
        report.cleaned = cleaned
        try:
            profiles = _profiles(repo, pipeline, images, load_profile)
            dsk, finals = _build_graph(repo, pipeline, images, run_id, profiles, pixel_size_um)
            register = _ImageResults(repo, report, len(finals), progress)
            _execute(dsk, finals, jobs, scheduler, register)
            report.tables = _consolidate(repo, pipeline, run_id)
        except BaseException:
            _finish_run(repo, report, "interrupted")
            raise
        report.status = "completed" if report.ok else "partial"
        report.seconds = time.perf_counter() - t0
        _finish_run(repo, report, report.status)
    return report


def _check_arguments(pipeline: Pipeline, jobs: int, pixel_size_um: float | None) -> None:
    """Refuse a run that cannot start: a tool unavailable, ``jobs`` < 1, a bad pixel size."""
    import math

    if not isinstance(pipeline, Pipeline):
        raise InvalidInput(
            f"pipeline: expected a Pipeline (from load_pipeline(path)), got "
            f"{type(pipeline).__name__} {pipeline!r}"
        )
    for step in pipeline.steps:
        reason = step.tool.unavailable()
        if reason is not None:
            raise ToolUnavailable(f"step {step.id!r}: tool {step.tool.name!r} {reason}")
    if jobs < 1:
        raise InvalidInput(f"jobs must be at least 1 (got {jobs})")
    if pixel_size_um is not None and (
        isinstance(pixel_size_um, bool)
        or not isinstance(pixel_size_um, int | float)
        or not math.isfinite(pixel_size_um)
        or not 0 < pixel_size_um <= 1000
    ):
        raise InvalidInput(
            f"pixel size {pixel_size_um!r}: give the size of a pixel in µm (0 < size <= 1000)"
        )


def _clean_partial_labels(repo: Repository, images: Sequence[Image]) -> list[str]:
    """Remove the temporary folders in the images' ``labels/`` groups: with the write lock held
    no run of another process writes now, so they are leftovers of killed runs."""
    cleaned: list[str] = []
    for img in images:
        for p in remove_partial(repo.root / img.store_path / "labels"):
            cleaned.append(str(p.relative_to(repo.root)))
    return cleaned


def _run_record(
    run_id: str,
    pipeline: Pipeline,
    where: str | None,
    jobs: int,
    scheduler: str | None,
    pixel_size_um: float | None,
    n_images: int,
) -> dict[str, Any]:
    """The catalog record of a run as it starts."""
    return {
        "id": run_id,
        "pipeline_name": pipeline.name,
        "spec_json": json.dumps(
            {**pipeline.spec, "pixel_size_um_override": pixel_size_um}
            if pixel_size_um is not None
            else pipeline.spec,
            sort_keys=True,
        ),
        "spec_hash": pipeline.hash,
        "spec_path": str(pipeline.path) if pipeline.path else None,
        "selection": where,
        "status": "running",
        "started_at": _now(),
        "host": socket.gethostname(),
        "user_name": user_name(),
        "scheduler": scheduler or f"dask-local-threads:{jobs}",
        "software_json": json.dumps(
            software_versions(s.tool.name for s in pipeline.steps), sort_keys=True
        ),
        "n_images": n_images,
    }


class _ImageResults:
    """Registers each image's results in the catalog as the image is done (one transaction),
    counts its steps in ``report`` and advances ``progress``."""

    def __init__(
        self, repo: Repository, report: RunReport, total: int, progress: Progress | None
    ) -> None:
        self.repo = repo
        self.report = report
        self.total = total
        self.progress = progress
        self.done = 0

    def __call__(self, res: ImageResult) -> None:
        report = self.report
        self.repo.runs.record_image_results(report.run_id, res.steps, res.artifacts, res.inputs)
        for s in res.steps:
            st = s["status"]
            if st == "computed":
                report.computed += 1
            elif st == "reused":
                report.reused += 1
            elif st in ("failed", "skipped"):
                report.failed += st == "failed"
                report.skipped += st == "skipped"
                report.failures.append(
                    StepFailure(
                        res.image_id,
                        res.image_name,
                        s["step"],
                        st,
                        s["error_type"] or "",
                        s["error"] or "",
                    )
                )
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, res.image_name)


def _finish_run(repo: Repository, report: RunReport, status: str) -> None:
    """Record the end of the run with its counts."""
    repo.runs.finish(
        report.run_id,
        status,
        n_computed=report.computed,
        n_reused=report.reused,
        n_failed=report.failed + report.skipped,
    )


def _clean_interrupted(repo: Repository, run_ids: Sequence[str]) -> list[str]:
    """Remove what killed runs wrote but never registered under ``tables/<run>/``."""
    import shutil

    removed: list[str] = []
    for rid in run_ids:
        folder = repo.root / "tables" / rid
        if not folder.is_dir():
            continue
        registered = {a.path for a in repo.runs.artifacts(rid)}
        for p in sorted(folder.rglob("*"), reverse=True):
            rel = str(p.relative_to(repo.root))
            if p.is_file() and rel not in registered:
                p.unlink()
                removed.append(rel)
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        if folder.is_dir() and not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
        remove_partial(folder)
    return removed


_CONNECT_TIMEOUT_S = 10


def _execute(
    dsk: dict[Any, Any],
    finals: list[tuple[str, ...]],
    jobs: int,
    scheduler: str | None,
    register: Callable[[ImageResult], None],
) -> None:
    if not finals:
        return
    if scheduler is not None:
        from distributed import Client, as_completed

        try:
            client = Client(scheduler, set_as_default=False, timeout=_CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as e:
            raise InvalidInput(
                f"cannot connect to the Dask scheduler at {scheduler!r} ({e}); start one with "
                "`dask scheduler` and workers that see this repository"
            ) from e
        with client:
            futures = client.get(dsk, finals, sync=False)
            for fut in as_completed(futures, loop=client.loop):
                register(fut.result())
        return
    from dask.local import get_sync
    from dask.threaded import get as get_threaded

    final_set = set(finals)

    def posttask(key: Any, result: Any, dsk_: Any, state: Any, worker_id: Any) -> None:
        if key in final_set:
            register(result)

    cb = (None, None, None, posttask, None)  # dask's (start, start_state, pre, post, finish)
    if jobs == 1:
        get_sync(dsk, finals, callbacks=[cb])
    else:
        get_threaded(dsk, finals, num_workers=jobs, callbacks=[cb])


def _consolidate(repo: Repository, pipeline: Pipeline, run_id: str) -> dict[str, str]:
    """One Parquet per table output of the run: ``tables/<run>/<output>.parquet``."""
    import pandas as pd

    arts = [a for a in repo.runs.artifacts(run_id) if a.kind == "table"]
    out: dict[str, str] = {}
    for step in pipeline.steps:
        for port in step.persisted():
            oname, kind = step.outputs[port]
            if kind != "table":
                continue
            parts = [
                read_table(repo.root, a.path)
                for a in arts
                if a.step == step.id and a.output == oname
            ]
            if not parts:
                continue
            parts = [p for p in parts if len(p)] or parts[:1]
            table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            path = f"tables/{run_id}/{oname}.parquet"
            write_table(repo.root, path, table)
            out[oname] = path
    return out
