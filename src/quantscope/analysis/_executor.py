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
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import noun
from ..errors import InvalidInput, QuantscopeError
from ._outputs import (
    labels_digest,
    output_damage,
    read_labels,
    read_table,
    remove_partial,
    verify_output,
    write_labels,
    write_table,
)
from ._pipeline import PERSISTED_KINDS, Pipeline, Step
from ._tool import (
    ToolContext,
    ToolUnavailable,
    pixel_size_message,
    pixel_size_use,
    tool_identity,
)

if TYPE_CHECKING:
    import pandas as pd

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


def _sha(*parts: object) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- plan (client side)
@dataclass(frozen=True)
class ImageJob:
    """What a worker needs to know about one image."""

    image_id: str
    name: str
    store_path: str
    repo_root: str
    pixel_size_um: float | None
    plate: str | None
    well: str | None
    field: int | None
    size_z: int
    run_id: str
    #: where ``pixel_size_um`` comes from: "override", "image", "pipeline" or None (unknown)
    pixel_size_source: str | None = None


@dataclass(frozen=True)
class StepPlan:
    """One step of one image: what to run, where its inputs come from, where outputs go."""

    step: Step
    key: str
    # (port, name, upstream task key, upstream output port)
    refs: tuple[tuple[str, str, tuple[str, ...], str], ...]
    # port -> (output name, kind, artifact/value key, already registered)
    outputs: Mapping[str, tuple[str, str, str, bool]]
    profile: tuple[Any, Any] | None = None
    profile_ref: dict[str, str] | None = None
    channels: Mapping[str, int] = field(default_factory=dict)


@dataclass
class _Failure:
    origin: str  # "channel" or "step"
    where: str
    message: str


@dataclass
class TaskOut:
    """A task's result: values by port, their lineage, and (for steps) what happened."""

    values: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, dict[str, Any]] = field(default_factory=dict)
    failure: _Failure | None = None
    record: dict[str, Any] | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)


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


def _image_digest(img: Image) -> str:
    if img.sources:
        return _sha(sorted(f"{s.sha256}:{s.scene}:{s.channel_offset}" for s in img.sources))
    return _sha("image", img.id)


def _resolve_channel(img: Image, name: str, cands: Sequence[int | str]) -> int:
    names = [c.name for c in img.channels]
    for c in cands:
        if isinstance(c, int):
            if c < img.shape[1]:
                return c
            continue
        for i, n in enumerate(names):
            if n.lower() == str(c).lower():
                return i
    raise InvalidInput(
        f"image {img.name!r}: no channel matches {name!r} (looked for {list(cands)}; the image "
        f"has {names or img.shape[1]})"
    )


# --------------------------------------------------------------------------- tasks (workers)
def _read_channel(job: ImageJob, channel: int, digest: str) -> TaskOut:
    from ..io import OmeZarrPlanes, UnsupportedLayout

    root = Path(job.repo_root) / job.store_path
    try:
        try:
            planes = OmeZarrPlanes(root)
            data = planes.plane(0, channel, 0) if job.size_z == 1 else planes.stack(0, channel)
        except UnsupportedLayout:
            import zarr

            arr = zarr.open_group(str(root), mode="r")["0"]
            data = np.asarray(arr[0, channel])  # type: ignore[index]
            data = data[0] if job.size_z == 1 else data
        if data.ndim == 3:  # a z-stack: maximum-intensity projection
            data = data.max(axis=0)
    except Exception as e:  # a damaged chunk: decoders raise what they like
        return TaskOut(failure=_Failure("channel", f"channel {channel}", f"cannot be read: {e}"))
    ref = {"kind": "channel", "ref": f"{job.image_id}:c{channel}", "sha256": digest}
    return TaskOut(values={"image": data}, lineage={"image": ref})


def _channel_failure(message: str) -> TaskOut:
    return TaskOut(failure=_Failure("channel", "channel", message))


def _load_stored(job: ImageJob, outputs: Mapping[str, tuple[str, str, str]]) -> TaskOut:
    """Values of a reused step: ``{port: (kind, path, artifact key + sha)}``."""
    out = TaskOut()
    root = Path(job.repo_root)
    try:
        for port, (kind, path, key_sha) in outputs.items():
            key, sha = key_sha.split(":", 1)
            if kind == "labels":
                value = read_labels(root, path)
                got = labels_digest(value)
            else:
                with (root / path).open("rb") as fh:
                    got = hashlib.file_digest(fh, "sha256").hexdigest()
                value = read_table(root, path)
            if got != sha:
                raise ValueError(
                    f"{path} differs from its recorded SHA-256 (changed since it was written; "
                    "run again to compute it anew)"
                )
            out.values[port] = value
            out.lineage[port] = {"kind": "artifact", "ref": key, "sha256": sha}
    except (QuantscopeError, OSError, ValueError) as e:
        out.failure = _Failure("step", "stored output", f"cannot be read back: {e}")
    return out


def _with_metadata(table: pd.DataFrame, job: ImageJob) -> pd.DataFrame:
    meta = {"image_id": job.image_id, "plate": job.plate, "well": job.well, "field": job.field}
    table = table.copy()
    for i, (k, v) in enumerate(meta.items()):
        if k in table.columns:
            table = table.drop(columns=k)
        table.insert(i, k, v)
    return table


_warm: set[str] = set()
_warm_lock = threading.Lock()


def _call_tool(step: Step, inputs: dict[str, Any], ctx: ToolContext) -> Mapping[str, Any]:
    """Run a tool; its first run in this process holds a lock, because tools import their
    libraries lazily and two threads importing the same package at once can see it half
    initialized (scikit-image's lazy submodules do)."""
    if step.tool.name in _warm:
        return step.tool.run(inputs, step.params, ctx)
    with _warm_lock:
        result = step.tool.run(inputs, step.params, ctx)
        _warm.add(step.tool.name)
    return result


def _run_step(job: ImageJob, plan: StepPlan, *upstream: TaskOut) -> TaskOut:
    step = plan.step
    started = _now()
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "image_id": job.image_id,
        "step": step.id,
        "tool": step.tool.name,
        "tool_version": step.tool.version,
        "params_hash": step.params_hash,
        "key": plan.key,
        "status": "computed",
        "error_type": None,
        "error": None,
        "seconds": None,
    }
    inputs: dict[str, Any] = {}
    used: list[dict[str, Any]] = []
    for (port, name, _key, up_port), up in zip(plan.refs, upstream, strict=True):
        if up.failure is not None:
            status = "failed" if up.failure.origin == "channel" else "skipped"
            msg = (
                up.failure.message
                if status == "failed"
                else f"input {port!r} ({name}) is not available: {up.failure.where} "
                f"{up.failure.message}"
            )
            record.update(status=status, error_type="InputUnavailable", error=msg)
            return TaskOut(failure=_Failure("step", f"step {step.id!r}", status), record=record)
        value = up.values[up_port]
        port_def = next(p for p in step.tool.inputs if p.name == port)
        if port_def.many:
            inputs.setdefault(port, {})[name] = value
            role = f"{port}[{name}]"
        else:
            inputs[port] = value
            role = port
        used.append({"role": role, **up.lineage[up_port]})
    for p in step.tool.inputs:
        if p.kind == "profile":
            inputs[p.name] = plan.profile
            if plan.profile_ref is not None:
                used.append({"role": p.name, **plan.profile_ref})
    px_use = pixel_size_use(step.tool)
    if px_use != "unused" and job.pixel_size_um is not None:
        setting = json.dumps(
            {"pixel_size_um": job.pixel_size_um, "source": job.pixel_size_source}, sort_keys=True
        )
        used.append(
            {
                "role": "pixel_size_um",
                "kind": "setting",
                "ref": setting,
                "sha256": hashlib.sha256(setting.encode()).hexdigest(),
            }
        )
    ctx = ToolContext(
        image_id=job.image_id,
        pixel_size_um=job.pixel_size_um,
        plate=job.plate,
        well=job.well,
        field=job.field,
        channels=dict(plan.channels),
        repo_root=Path(job.repo_root),
    )
    out = TaskOut(record=record)
    try:
        if px_use == "required" and job.pixel_size_um is None:
            raise InvalidInput(pixel_size_message(step.tool.name, f"{job.name} ({job.image_id})"))
        result = _call_tool(step, inputs, ctx)
        missing = [p for p in step.outputs if p not in result]
        if missing:
            raise InvalidInput(
                f"tool {step.tool.name} returned no value for "
                f"{noun(len(missing), 'output')} {', '.join(map(repr, missing))}"
            )
        root = Path(job.repo_root)
        for port, (oname, kind, key, registered) in plan.outputs.items():
            value = result[port]
            out.values[port] = value
            if kind not in PERSISTED_KINDS:
                out.lineage[port] = {
                    "kind": "derived",
                    "ref": json.dumps(
                        {
                            "step": step.id,
                            "output": oname,
                            "tool": step.tool.name,
                            "version": step.tool.version,
                            "parameters": step.params.model_dump(mode="json"),
                            "used": used,
                        },
                        sort_keys=True,
                    ),
                    "sha256": key,
                }
                continue
            if registered:  # computed again only because a sibling output was needed
                continue
            if kind == "labels":
                written = write_labels(root, job.store_path, f"{oname}-{key[:12]}", value)
            else:
                table = _with_metadata(value, job)
                out.values[port] = table
                written = write_table(
                    root, f"tables/{job.run_id}/{oname}/{job.image_id}.parquet", table
                )
            out.lineage[port] = {"kind": "artifact", "ref": key, "sha256": written.sha256}
            out.artifacts.append(
                {
                    "key": key,
                    "kind": kind,
                    "image_id": job.image_id,
                    "step": step.id,
                    "step_key": plan.key,
                    "output": oname,
                    "tool": step.tool.name,
                    "tool_version": step.tool.version,
                    "params_json": json.dumps(step.params.model_dump(mode="json"), sort_keys=True),
                    "params_hash": step.params_hash,
                    "path": written.path,
                    "sha256": written.sha256,
                    "size": written.size,
                    "n_objects": written.n_objects,
                    "started_at": started,
                    "ended_at": _now(),
                }
            )
            out.inputs.extend({"artifact_key": key, **u} for u in used)
    except Exception as e:  # one image's failure must not stop the run
        out.values.clear()
        out.artifacts.clear()
        out.inputs.clear()
        record.update(status="failed", error_type=type(e).__name__, error=str(e) or repr(e))
        out.failure = _Failure("step", f"step {step.id!r}", f"failed: {e}")
    record["seconds"] = time.perf_counter() - t0
    return out


@dataclass
class ImageResult:
    """Everything one image's tasks produced, without the pixel data."""

    image_id: str
    image_name: str
    steps: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]
    inputs: list[dict[str, Any]]


def _collect(job: ImageJob, static: list[dict[str, Any]], *outs: TaskOut) -> ImageResult:
    steps = [dict(s) for s in static]
    artifacts: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    for o in outs:
        if o.record is not None:
            steps.append(o.record)
        artifacts.extend(o.artifacts)
        inputs.extend(o.inputs)
    return ImageResult(job.image_id, job.name, steps, artifacts, inputs)


# --------------------------------------------------------------------------- the run
def _select(repo: Repository, image_ids: Sequence[str] | None, where: str | None) -> list[Image]:
    images = _select_any(repo, image_ids, where)
    if not images:
        if where is not None:
            what = f"the query {where!r} selects no image"
            hint = "check it with `quantscope find REPO QUERY`"
        elif image_ids is not None:
            what, hint = "no image was given", "name at least one image"
        else:
            what, hint = "the repository has no images", "ingest some with `quantscope ingest`"
        raise InvalidInput(f"{repo.root}: nothing to run: {what}; {hint}")
    return images


def _select_any(
    repo: Repository, image_ids: Sequence[str] | None, where: str | None
) -> list[Image]:
    if where is not None:
        find = getattr(repo, "find_ids", None)
        if find is None:
            raise InvalidInput("--where needs the catalog query language, not installed here")
        ids = list(find(where))
        if image_ids is not None:
            keep = set(image_ids)
            ids = [i for i in ids if i in keep]
        return repo.images(ids)
    if image_ids is not None:
        found = repo.images(list(image_ids))
        if len(found) != len(set(image_ids)):
            missing = sorted(set(image_ids) - {i.id for i in found})
            raise InvalidInput(
                f"{repo.root}: no image with {noun(len(missing), 'id')} "
                f"{', '.join(map(repr, missing))}"
            )
        return found
    return repo.images()


def _clean_interrupted(repo: Repository, run_ids: Sequence[str]) -> list[str]:
    """Remove what killed runs wrote but never registered under ``tables/<run>/``."""
    import shutil

    removed: list[str] = []
    for rid in run_ids:
        folder = repo.root / "tables" / rid
        if not folder.is_dir():
            continue
        registered = {a["path"] for a in repo.run_artifacts(rid)}
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


def _pixel_size(
    img: Image, pipeline: Pipeline, override: float | None
) -> tuple[float | None, str | None]:
    """The pixel size (µm) a run uses for an image, and where it comes from."""
    if override is not None:
        return float(override), "override"
    own = img.physical_size_x_um or img.physical_size_y_um
    if own:
        return float(own), "image"
    if pipeline.pixel_size_um is not None:
        return float(pipeline.pixel_size_um), "pipeline"
    return None, None


def _plan_image(
    repo: Repository,
    pipeline: Pipeline,
    img: Image,
    run_id: str,
    profiles: Mapping[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]],
    pixel_size_um: float | None = None,
    identities: Mapping[str, Any] | None = None,
) -> tuple[ImageJob, list[tuple[Step, str, dict[str, Any]]], dict[str, Any]]:
    """Keys of every step of one image (before looking at what is registered)."""
    pos = img.position
    px, px_source = _pixel_size(img, pipeline, pixel_size_um)
    job = ImageJob(
        image_id=img.id,
        name=img.name,
        store_path=img.store_path,
        repo_root=str(repo.root),
        pixel_size_um=px,
        plate=pos.plate if pos else None,
        well=pos.well if pos else None,
        field=pos.field if pos else None,
        size_z=img.shape[2],
        run_id=run_id,
        pixel_size_source=px_source,
    )
    digest = _image_digest(img)
    value_keys: dict[str, str] = {}  # pipeline name -> value digest
    chan_index: dict[str, int] = {}
    chan_error: dict[str, str] = {}
    for cname, cands in pipeline.channels.items():
        try:
            idx = _resolve_channel(img, cname, cands)
        except InvalidInput as e:
            chan_error[cname] = str(e)
            value_keys[cname] = _sha("missing-channel", digest, cname)
            continue
        chan_index[cname] = idx
        value_keys[cname] = _sha(digest, "c", idx, "z", "max" if img.shape[2] > 1 else 0)
    planned = []
    extras: dict[str, Any] = {
        "chan_index": chan_index,
        "chan_error": chan_error,
        "chan_digest": {c: value_keys[c] for c in pipeline.channels},
    }
    for step in pipeline.steps:
        ins = {p: [value_keys[n] for n, _ in v] for p, v in step.inputs.items()}
        channels = {
            p: chan_index[v[0][0]]
            for p, v in step.inputs.items()
            if v[0][1].kind == "channel" and v[0][0] in chan_index
        }
        profile_sha = None
        if any(p.kind == "profile" for p in step.tool.inputs) and job.plate is not None:
            ch = channels.get("image")
            if ch is not None and (job.plate, ch) in profiles:
                profile_sha = profiles[(job.plate, ch)][1]["sha256"]
        identity = (identities or {}).get(step.id) or _step_identity(step)
        # the pixel size is part of what a tool computed from, where the tool uses it
        px_key = None if pixel_size_use(step.tool) == "unused" else px
        key = _sha(
            step.tool.name, step.tool.version, step.params_hash, ins, profile_sha, identity, px_key
        )
        for port, (oname, _kind) in step.outputs.items():
            value_keys[oname] = _sha(key, port)
        planned.append((step, key, {"channels": channels, "profile_sha": profile_sha}))
    return job, planned, extras


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
        Nothing is selected, ``jobs`` < 1, or ``pixel_size_um`` is not a positive size.
    """
    import math

    from ..qc import load_profile

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
    t0 = time.perf_counter()
    with repo.write_lock():
        stale = repo.interrupt_stale_runs()
        cleaned = _clean_interrupted(repo, stale)
        images = _select(repo, image_ids, where)
        # no run of another process writes now (the lock): temporary folders in the images'
        # labels/ groups are leftovers of killed runs
        for img in images:
            for p in remove_partial(repo.root / img.store_path / "labels"):
                cleaned.append(str(p.relative_to(repo.root)))
        run_id = uuid.uuid4().hex
        repo.start_run(
            {
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
                "user_name": _user(),
                "scheduler": scheduler or f"dask-local-threads:{jobs}",
                "software_json": json.dumps(
                    software_versions(s.tool.name for s in pipeline.steps), sort_keys=True
                ),
                "n_images": len(images),
            }
        )
        report = RunReport(run_id, pipeline.name, pipeline.hash, "running", images=len(images))
        report.cleaned = cleaned
        try:
            profiles = _profiles(repo, pipeline, images, load_profile)
            dsk, finals = _build_graph(repo, pipeline, images, run_id, profiles, pixel_size_um)
            done = 0

            def register(res: ImageResult) -> None:
                nonlocal done
                repo.record_image_results(run_id, res.steps, res.artifacts, res.inputs)
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
                done += 1
                if progress is not None:
                    progress(done, len(finals), res.image_name)

            _execute(dsk, finals, jobs, scheduler, register)
            report.tables = _consolidate(repo, pipeline, run_id)
        except BaseException:
            repo.finish_run(
                run_id,
                "interrupted",
                n_computed=report.computed,
                n_reused=report.reused,
                n_failed=report.failed + report.skipped,
            )
            raise
        report.status = "completed" if report.ok else "partial"
        report.seconds = time.perf_counter() - t0
        repo.finish_run(
            run_id,
            report.status,
            n_computed=report.computed,
            n_reused=report.reused,
            n_failed=report.failed + report.skipped,
        )
    return report


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _profiles(
    repo: Repository, pipeline: Pipeline, images: Sequence[Image], load: Callable[..., Any]
) -> dict[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]]:
    """Stored illumination profiles the pipeline's profile ports can use, by (plate, channel)."""
    if not any(p.kind == "profile" for s in pipeline.steps for p in s.tool.inputs):
        return {}
    plates = {i.position.plate for i in images if i.position}
    out: dict[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]] = {}
    for row in repo.illumination_profiles():
        if row["plate"] in plates:
            flat, dark = load(repo, row["plate"], int(row["channel"]))
            ref = {"kind": "profile", "ref": row["store_path"], "sha256": row["sha256"]}
            out[(row["plate"], int(row["channel"]))] = ((flat, dark), ref)
    return out


def _step_identity(step: Step) -> dict[str, str | None]:
    """The tool's code identity, and the checksum of the data files (weights) the step's
    parameters make it read."""
    hook = getattr(step.tool, "data_identity", None)
    data = hook(step.params) if callable(hook) else None
    return {**tool_identity(step.tool), **({"data_sha256": data} if data else {})}


def _build_graph(
    repo: Repository,
    pipeline: Pipeline,
    images: Sequence[Image],
    run_id: str,
    profiles: Mapping[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]],
    pixel_size_um: float | None = None,
) -> tuple[dict[Any, Any], list[tuple[str, ...]]]:
    """The Dask graph of a run: per image, the tasks of the steps to compute (and of the
    channels and stored outputs they read) and one task collecting the image's results."""
    identities = {s.id: _step_identity(s) for s in pipeline.steps}
    plans = [
        _plan_image(repo, pipeline, img, run_id, profiles, pixel_size_um, identities)
        for img in images
    ]
    wanted = [
        _sha(key, port)
        for _, planned, _ in plans
        for step, key, _ in planned
        for port in step.persisted()
    ]
    registered = repo.registered_artifacts(wanted)
    # an output deleted or damaged by hand (or by a crash) is computed again, not reused
    gone = [
        k
        for k, a in registered.items()
        if output_damage(repo.root, a["kind"], a["path"], a["size"]) is not None
    ]
    _forget(repo, registered, gone)
    while True:
        dsk, finals, loads = _graph_of(pipeline, plans, registered, profiles)
        # what computed steps read back must hold what was registered: checked here, so a
        # damaged output is computed again in this run rather than failing its consumers
        bad = [
            k
            for k in dict.fromkeys(loads)
            if verify_output(
                repo.root, registered[k]["kind"], registered[k]["path"], registered[k]["sha256"]
            )
            is not None
        ]
        if not bad:
            return dsk, finals
        _forget(repo, registered, bad)


def _forget(repo: Repository, registered: dict[str, dict[str, Any]], keys: list[str]) -> None:
    if keys:
        repo.forget_artifacts(keys)
        for k in keys:
            del registered[k]


def _graph_of(
    pipeline: Pipeline,
    plans: Sequence[tuple[ImageJob, list[tuple[Step, str, dict[str, Any]]], dict[str, Any]]],
    registered: Mapping[str, dict[str, Any]],
    profiles: Mapping[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]],
) -> tuple[dict[Any, Any], list[tuple[str, ...]], list[str]]:
    """The graph for what is registered (see :func:`_build_graph`), and the keys of the
    registered outputs it reads back."""
    loads: list[str] = []
    dsk: dict[Any, Any] = {}
    finals: list[tuple[str, ...]] = []
    for job, planned, extras in plans:
        iid = job.image_id
        chan_index: dict[str, int] = extras["chan_index"]
        chan_error: dict[str, str] = extras["chan_error"]
        # which steps to compute: walk backwards from the stored outputs that are missing
        compute: set[str] = set()
        needed: set[str] = set()  # pipeline names whose values some computed step needs
        for step, key, _ in reversed(planned):
            missing = any(_sha(key, p) not in registered for p in step.persisted())
            out_needed = any(
                n in needed for n, kind in step.outputs.values() if kind not in PERSISTED_KINDS
            )
            if missing or out_needed:
                compute.add(step.id)
                for vals in step.inputs.values():
                    needed.update(n for n, _ in vals)
        task_of: dict[str, tuple[tuple[str, ...], str]] = {}  # name -> (task key, port)
        for cname in pipeline.channels:
            if cname not in needed:
                continue
            tkey = ("channel", iid, cname)
            if cname in chan_error:
                dsk[tkey] = (_channel_failure, chan_error[cname])
            else:
                dsk[tkey] = (_read_channel, job, chan_index[cname], extras["chan_digest"][cname])
            task_of[cname] = (tkey, "image")
        static: list[dict[str, Any]] = []
        step_tasks: list[tuple[str, ...]] = []
        for step, key, extra in planned:
            outs = {
                p: (n, kind, _sha(key, p), _sha(key, p) in registered)
                for p, (n, kind) in step.outputs.items()
            }
            if step.id in compute:
                refs = tuple(
                    (port, name, task_of[name][0], task_of[name][1])
                    for port, vals in step.inputs.items()
                    for name, _ in vals
                )
                prof = None
                ch = extra["channels"].get("image")
                if extra["profile_sha"] is not None and ch is not None and job.plate:
                    prof = profiles[(job.plate, ch)]
                plan = StepPlan(
                    step=step,
                    key=key,
                    refs=refs,
                    outputs=outs,
                    profile=prof[0] if prof else None,
                    profile_ref=prof[1] if prof else None,
                    channels=extra["channels"],
                )
                tkey = ("step", iid, step.id)
                dsk[tkey] = (_run_step, job, plan, *[r[2] for r in refs])
                step_tasks.append(tkey)
                for port, (oname, _kind) in step.outputs.items():
                    task_of[oname] = (tkey, port)
                continue
            stored = {p: o for p, o in outs.items() if o[1] in PERSISTED_KINDS}
            has_outputs = bool(stored)
            static.append(
                {
                    "image_id": iid,
                    "step": step.id,
                    "tool": step.tool.name,
                    "tool_version": step.tool.version,
                    "params_hash": step.params_hash,
                    "key": key,
                    "status": "reused" if has_outputs else "not-needed",
                    "error_type": None,
                    "error": None,
                    "seconds": None,
                }
            )
            need_here = [p for p, o in stored.items() if o[0] in needed]
            if need_here:
                tkey = ("load", iid, step.id)
                dsk[tkey] = (
                    _load_stored,
                    job,
                    {
                        p: (
                            stored[p][1],
                            registered[stored[p][2]]["path"],
                            f"{stored[p][2]}:{registered[stored[p][2]]['sha256']}",
                        )
                        for p in need_here
                    },
                )
                for p in need_here:
                    task_of[stored[p][0]] = (tkey, p)
                    loads.append(stored[p][2])
        fkey = ("image", iid)
        dsk[fkey] = (_collect, job, static, *step_tasks)
        finals.append(fkey)
    return dsk, finals, loads


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

    arts = [a for a in repo.run_artifacts(run_id) if a["kind"] == "table"]
    out: dict[str, str] = {}
    for step in pipeline.steps:
        for port in step.persisted():
            oname, kind = step.outputs[port]
            if kind != "table":
                continue
            parts = [
                read_table(repo.root, a["path"])
                for a in arts
                if a["step"] == step.id and a["output"] == oname
            ]
            if not parts:
                continue
            parts = [p for p in parts if len(p)] or parts[:1]
            table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            path = f"tables/{run_id}/{oname}.parquet"
            write_table(repo.root, path, table)
            out[oname] = path
    return out
