"""The tasks of a run's Dask graph: what runs on the workers, one image at a time.

:func:`_read_channel` reads one channel of an image from its OME-Zarr store (a z-stack as its
maximum-intensity projection); :func:`_load_stored` reads back the registered outputs of a reused
step and checks them against their recorded SHA-256; :func:`_run_step` runs one step's tool, writes
its persisted outputs (label images, tables) under temporary names and renames them, and records
what it used; :func:`_collect` gathers one image's step records, artifacts and lineage into an
:class:`ImageResult` for the client to register. They are module-level functions of plain,
picklable arguments (:class:`ImageJob`, :class:`StepPlan`, :class:`TaskOut`), so ``distributed``
workers can import and run them; :mod:`._plan` puts them in the graph.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._text import noun
from ..errors import InvalidInput, QuantscopeError
from ._outputs import labels_digest, read_labels, read_table, write_labels, write_table
from ._pipeline import PERSISTED_KINDS, Step
from ._tool import ToolContext, pixel_size_message, pixel_size_use

if TYPE_CHECKING:
    import pandas as pd


def _now() -> datetime:
    return datetime.now(UTC)


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
    """Run one step of one image: gather its inputs, run its tool, write and record its
    outputs. A step whose input is unavailable is failed (a channel that cannot be read) or
    skipped (an upstream step that failed); a tool's error fails the step, never the run."""
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
    unavailable = _unavailable_input(plan, upstream)
    if unavailable is not None:
        status, msg = unavailable
        record.update(status=status, error_type="InputUnavailable", error=msg)
        return TaskOut(failure=_Failure("step", f"step {step.id!r}", status), record=record)
    inputs, used = _gather_inputs(job, plan, upstream)
    ctx = _tool_context(job, plan)
    out = TaskOut(record=record)
    try:
        if pixel_size_use(step.tool) == "required" and job.pixel_size_um is None:
            raise InvalidInput(pixel_size_message(step.tool.name, f"{job.name} ({job.image_id})"))
        result = _call_tool(step, inputs, ctx)
        missing = [p for p in step.outputs if p not in result]
        if missing:
            raise InvalidInput(
                f"tool {step.tool.name} returned no value for "
                f"{noun(len(missing), 'output')} {', '.join(map(repr, missing))}"
            )
        for port in plan.outputs:
            _store_output(job, plan, port, result[port], used, started, out)
    except Exception as e:  # one image's failure must not stop the run
        out.values.clear()
        out.artifacts.clear()
        out.inputs.clear()
        record.update(status="failed", error_type=type(e).__name__, error=str(e) or repr(e))
        out.failure = _Failure("step", f"step {step.id!r}", f"failed: {e}")
    record["seconds"] = time.perf_counter() - t0
    return out


def _unavailable_input(plan: StepPlan, upstream: tuple[TaskOut, ...]) -> tuple[str, str] | None:
    """``(status, error)`` of a step whose first unavailable input is ``upstream``'s: "failed"
    for a channel that cannot be read, "skipped" for an upstream step that failed; None when
    every input is there."""
    for (port, name, _key, _up_port), up in zip(plan.refs, upstream, strict=True):
        if up.failure is not None:
            status = "failed" if up.failure.origin == "channel" else "skipped"
            msg = (
                up.failure.message
                if status == "failed"
                else f"input {port!r} ({name}) is not available: {up.failure.where} "
                f"{up.failure.message}"
            )
            return status, msg
    return None


def _gather_inputs(
    job: ImageJob, plan: StepPlan, upstream: tuple[TaskOut, ...]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tool's inputs by port (upstream values, the illumination profile) and the lineage
    of what the step uses (each input with its role, the pixel size setting)."""
    step = plan.step
    inputs: dict[str, Any] = {}
    used: list[dict[str, Any]] = []
    for (port, name, _key, up_port), up in zip(plan.refs, upstream, strict=True):
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
    if pixel_size_use(step.tool) != "unused" and job.pixel_size_um is not None:
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
    return inputs, used


def _tool_context(job: ImageJob, plan: StepPlan) -> ToolContext:
    return ToolContext(
        image_id=job.image_id,
        pixel_size_um=job.pixel_size_um,
        plate=job.plate,
        well=job.well,
        field=job.field,
        channels=dict(plan.channels),
        repo_root=Path(job.repo_root),
    )


def _store_output(
    job: ImageJob,
    plan: StepPlan,
    port: str,
    value: Any,
    used: list[dict[str, Any]],
    started: datetime,
    out: TaskOut,
) -> None:
    """Put one output of a step into ``out``: an in-memory value with its derivation, or a
    persisted one (label image, table) written, with its artifact record and lineage."""
    step = plan.step
    oname, kind, key, registered = plan.outputs[port]
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
        return
    if registered:  # computed again only because a sibling output was needed
        return
    root = Path(job.repo_root)
    if kind == "labels":
        written = write_labels(root, job.store_path, f"{oname}-{key[:12]}", value)
    else:
        table = _with_metadata(value, job)
        out.values[port] = table
        written = write_table(root, f"tables/{job.run_id}/{oname}/{job.image_id}.parquet", table)
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
