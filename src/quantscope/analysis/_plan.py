"""Planning a run, on the client: which images, which steps, under which keys, in which graph.

:func:`_select` picks the images (by id or catalog query); :func:`_plan_image` gives every step of
an image its key, a digest of its inputs (the SHA-256 of the image's source files and the channel
index, or the keys of the upstream steps, or an illumination profile's checksum), the tool's
identity (:func:`_step_identity`), the parameters' hash, and the pixel size the tool uses
(:func:`_pixel_size`: the run's override, else the image's, else the pipeline's).
:func:`_build_graph` compares those keys with what the catalog has registered (unregistering
missing or damaged outputs) and builds the Dask graph of the tasks in :mod:`._tasks`: the steps
to compute, the channels and stored outputs they read, and one collecting task per image.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._text import noun
from ..errors import InvalidInput
from ._outputs import output_damage, verify_output
from ._pipeline import PERSISTED_KINDS, Pipeline, Step
from ._tasks import (
    ImageJob,
    StepPlan,
    _channel_failure,
    _collect,
    _load_stored,
    _read_channel,
    _run_step,
)
from ._tool import pixel_size_use, tool_identity

if TYPE_CHECKING:
    from ..catalog import ArtifactRecord, Repository
    from ..model import Image


def _sha(*parts: object) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


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
        from ..catalog import select_images

        ids = select_images(repo, where=where)
        if image_ids is not None:
            keep = set(image_ids)
            ids = [i for i in ids if i in keep]
        return repo.images.all(ids)
    if image_ids is not None:
        found = repo.images.all(list(image_ids))
        if len(found) != len(set(image_ids)):
            missing = sorted(set(image_ids) - {i.id for i in found})
            raise InvalidInput(
                f"{repo.root}: no image with {noun(len(missing), 'id')} "
                f"{', '.join(map(repr, missing))}"
            )
        return found
    return repo.images.all()


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


def _profiles(
    repo: Repository, pipeline: Pipeline, images: Sequence[Image], load: Callable[..., Any]
) -> dict[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]]:
    """Stored illumination profiles the pipeline's profile ports can use, by (plate, channel)."""
    if not any(p.kind == "profile" for s in pipeline.steps for p in s.tool.inputs):
        return {}
    plates = {i.position.plate for i in images if i.position}
    out: dict[tuple[str, int], tuple[tuple[Any, Any], dict[str, str]]] = {}
    for row in repo.quality.illumination_profiles():
        if row.plate in plates:
            flat, dark = load(repo, row.plate, row.channel)
            ref = {"kind": "profile", "ref": row.store_path, "sha256": row.sha256}
            out[(row.plate, row.channel)] = ((flat, dark), ref)
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
    registered = repo.runs.registered_artifacts(wanted)
    # an output deleted or damaged by hand (or by a crash) is computed again, not reused
    gone = [
        k
        for k, a in registered.items()
        if output_damage(repo.root, a.kind, a.path, a.size) is not None
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
                repo.root, registered[k].kind, registered[k].path, registered[k].sha256
            )
            is not None
        ]
        if not bad:
            return dsk, finals
        _forget(repo, registered, bad)


def _forget(repo: Repository, registered: dict[str, ArtifactRecord], keys: list[str]) -> None:
    if keys:
        repo.runs.forget_artifacts(keys)
        for k in keys:
            del registered[k]


def _graph_of(
    pipeline: Pipeline,
    plans: Sequence[tuple[ImageJob, list[tuple[Step, str, dict[str, Any]]], dict[str, Any]]],
    registered: Mapping[str, ArtifactRecord],
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
                            registered[stored[p][2]].path,
                            f"{stored[p][2]}:{registered[stored[p][2]].sha256}",
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
