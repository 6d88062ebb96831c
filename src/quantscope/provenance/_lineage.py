"""Lineage of analysis outputs, back to the source files, and run records in W3C PROV terms.

Every registered artifact (a label image, a per-image table) records the run and step that
generated it (PROV ``wasGeneratedBy``), the tool with its version and parameters, and what it
used (PROV ``used``): channels of an image (whose catalog entry lists the source files with
their SHA-256), other artifacts, illumination profiles, or in-memory intermediates (an
illumination-corrected channel) described by the step that made them. :func:`lineage` follows
these links down to the source files, or describes a whole run (:func:`run_lineage`: its steps
with the tools, their versions and the packages that provide them, the images it read with their
source files, and its outputs); :func:`run_document` writes one run as a PROV-JSON document
(https://www.w3.org/submissions/prov-json/) that the ``prov`` package reads without a warning:
no attribute is null, types are qualified names.

References
----------
.. [1] Moreau, L. & Missier, P. (eds.) (2013). PROV-DM: The PROV Data Model. W3C
   Recommendation. https://www.w3.org/TR/prov-dm/
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..catalog import ArtifactInput
from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ..catalog import ArtifactRecord, Repository, RunRecord, StepRecord

__all__ = ["lineage", "resolve_run", "run_document", "run_lineage", "tool_package"]


def _image_info(repo: Repository, image_id: str, cache: dict[str, Any]) -> dict[str, Any]:
    if image_id not in cache:
        try:
            img = repo.images.get(image_id)
        except NotFound:
            cache[image_id] = {"id": image_id, "missing": True, "sources": []}
        else:
            pos = img.position
            cache[image_id] = {
                "id": img.id,
                "name": img.name,
                "store_path": img.store_path,
                "plate": pos.plate if pos else None,
                "well": pos.well if pos else None,
                "field": pos.field if pos else None,
                "channels": [c.name for c in img.channels],
                "sources": [
                    {"path": s.path, "sha256": s.sha256, "size": s.size, "scene": s.scene}
                    for s in img.sources
                ],
            }
    return dict(cache[image_id])


def _used(repo: Repository, u: ArtifactInput, cache: dict[str, Any], depth: int) -> dict[str, Any]:
    kind = u.kind
    out: dict[str, Any] = {"role": u.role, "kind": kind, "sha256": u.sha256}
    if kind == "channel":
        image_id, _, chan = str(u.ref).rpartition(":c")
        info = _image_info(repo, image_id, cache)
        idx = int(chan) if chan.isdigit() else None
        out["channel"] = idx
        names = info.get("channels") or []
        out["channel_name"] = names[idx] if idx is not None and idx < len(names) else None
        out["image"] = info
    elif kind == "artifact":
        try:
            out["artifact"] = _lineage_of(repo, repo.runs.artifact(u.ref), cache, depth + 1)
        except NotFound:
            out["artifact"] = {"key": u.ref, "missing": True}
    elif kind == "profile":
        out["path"] = u.ref
    elif kind == "setting":  # a value the step used that is not data (the pixel size)
        try:
            out["setting"] = json.loads(u.ref)
        except (TypeError, ValueError):
            out["setting"] = u.ref
    elif kind == "derived":
        d = json.loads(u.ref)
        out.update(
            step=d.get("step"),
            output=d.get("output"),
            tool=d.get("tool"),
            version=d.get("version"),
            parameters=d.get("parameters"),
            used=[_used(repo, _derived_input(u, x), cache, depth + 1) for x in d.get("used", [])],
        )
    else:
        out["ref"] = u.ref
    return out


def _derived_input(value: ArtifactInput, used: dict[str, Any]) -> ArtifactInput:
    """An input of an in-memory value (an entry of the ``used`` list of its derivation, the
    ``ref`` of a ``derived`` input ``value``) as the record of what the value used."""
    return ArtifactInput(
        artifact_key=value.sha256,
        role=used["role"],
        kind=used["kind"],
        ref=used["ref"],
        sha256=used["sha256"],
    )


def _run_summary(repo: Repository, run_id: str, cache: dict[str, Any]) -> dict[str, Any]:
    key = f"run:{run_id}"
    if key not in cache:
        r = repo.runs.get(run_id)
        cache[key] = {
            "id": r.id,
            "pipeline": r.pipeline_name,
            "spec_hash": r.spec_hash,
            "spec_path": r.spec_path,
            "status": r.status,
            "started_at": r.started_at.isoformat() if r.started_at else None,
            "ended_at": r.ended_at.isoformat() if r.ended_at else None,
            "host": r.host,
            "user": r.user_name,
            "scheduler": r.scheduler,
            "software": r.software,
        }
    return dict(cache[key])


def resolve_run(repo: Repository, ref: str) -> RunRecord:
    """The record of a run given by id, a unique prefix of it (4+ characters), or
    ``"latest"``."""
    if ref == "latest":
        runs = repo.runs.all()
        if not runs:
            raise NotFound(f"{repo.root}: no analysis runs yet (start one with `quantscope run`)")
        return runs[0]
    return repo.runs.get(ref)


def tool_package(software: Mapping[str, Any], tool: str) -> tuple[str | None, str | None]:
    """The package that provided ``tool`` in a run, and its version, from the run's software
    record (``"tool:<name>": "<package> <version>"``); (None, None) where the run did not
    record it (runs before quantscope recorded plugins)."""
    d = software.get(f"tool:{tool}")
    if not isinstance(d, str) or d in ("", "?"):
        return None, None
    if d.startswith("("):  # "(in process)": registered with register_tool, no package
        return d.strip("()"), None
    name, _, version = d.rpartition(" ")
    return (name, version) if name else (d, None)


def run_lineage(repo: Repository, ref: str) -> dict[str, Any]:
    """What a run did, back to the source files.

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    ref : str
        Run id, a unique prefix of it, or ``"latest"``.

    Returns
    -------
    dict
        ``run``: pipeline, spec hash and path, status, times, host, user, scheduler, software
        versions; ``steps``: per step of the spec, the tool, the versions that ran, the package
        that provides it and its version, the parameters and the number of images per status
        (``computed``, ``reused``, ``not-needed``, ``failed``, ``skipped``); ``images``: every
        image the run read, with plate, well, field and source files (path, size, SHA-256);
        ``outputs``: per output name its kind, number of per-image parts, the consolidated
        table (tables) and the runs that computed the parts (earlier runs for reused parts).
    """
    cache: dict[str, Any] = {}
    run = resolve_run(repo, ref)
    summary = _run_summary(repo, run.id, cache)
    rows = repo.runs.steps(run.id)
    steps = []
    for spec_step in run.spec.get("steps", []):
        mine = [r for r in rows if r.step == spec_step.get("id")]
        package, package_version = tool_package(run.software, str(spec_step.get("tool")))
        counts = Counter(r.status for r in mine)
        steps.append(
            {
                "id": spec_step.get("id"),
                "tool": spec_step.get("tool"),
                "versions": sorted({r.tool_version for r in mine}),
                "package": package,
                "package_version": package_version,
                "parameters": spec_step.get("parameters") or {},
                "counts": dict(sorted(counts.items())),
            }
        )
    images = [_image_info(repo, i, cache) for i in sorted({r.image_id for r in rows})]
    outputs: dict[str, dict[str, Any]] = {}
    for a in repo.runs.artifacts(run.id):
        o = outputs.setdefault(
            a.output,
            {"output": a.output, "kind": a.kind, "parts": 0, "generated_by": set()},
        )
        o["parts"] += 1
        o["generated_by"].add(a.run_id)
    for o in outputs.values():
        o["generated_by"] = sorted(o["generated_by"])
        table = f"tables/{run.id}/{o['output']}.parquet"
        o["table"] = table if o["kind"] == "table" and (repo.root / table).is_file() else None
    return {
        "run": summary,
        "steps": steps,
        "images": images,
        "outputs": sorted(outputs.values(), key=lambda o: o["output"]),
    }


def _lineage_of(
    repo: Repository, art: ArtifactRecord, cache: dict[str, Any], depth: int = 0
) -> dict[str, Any]:
    if depth > 50:  # keys are digests of their inputs: a cycle is impossible, but be safe
        return {"key": art.key, "truncated": True}
    return {
        "key": art.key,
        "kind": art.kind,
        "path": art.path,
        "sha256": art.sha256,
        "size": art.size,
        "n_objects": art.n_objects,
        "image_id": art.image_id,
        "step": art.step,
        "output": art.output,
        "tool": art.tool,
        "tool_version": art.tool_version,
        "parameters": json.loads(art.params_json),
        "params_hash": art.params_hash,
        "created": {
            "started_at": art.started_at.isoformat(),
            "ended_at": art.ended_at.isoformat(),
        },
        "generated_by": _run_summary(repo, art.run_id, cache),
        "used": [_used(repo, u, cache, depth) for u in repo.runs.artifact_inputs(art.key)],
    }


def lineage(repo: Repository, ref: str) -> dict[str, Any]:
    """The lineage of an analysis output down to the source files.

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    ref : str
        An artifact key (or a unique prefix of at least 6 hex digits), an artifact's path
        relative to the repository (``plates/P.ome.zarr/A/1/0/labels/Nuclei-…``,
        ``tables/<run>/<output>/<image>.parquet``), a run's consolidated table
        (``tables/<run>/<output>.parquet``), or a run (its id, a prefix of 4+ characters, or
        ``"latest"``).

    Returns
    -------
    dict
        For an artifact: its key, path, checksum, tool, version and parameters, the run that
        generated it (pipeline, spec hash, times, host, user, software versions) and what it
        used, recursively, ending at image channels with their source files (path, size,
        SHA-256). For a consolidated table: ``{"table": path, "run": ..., "parts": [...]}``.
        For a run: :func:`run_lineage` (``{"run": ..., "steps": ..., "images": ...,
        "outputs": ...}``).

    Raises
    ------
    NotFound
        Nothing registered matches ``ref``.
    InvalidInput
        ``ref`` is a prefix of both a run id and an artifact key, or of several of either.
    """
    cache: dict[str, Any] = {}
    ref = ref.strip().removeprefix("./")
    root = str(repo.root) + "/"
    ref = ref.removeprefix(root)
    parts = ref.split("/")
    if len(parts) == 3 and parts[0] == "tables" and parts[2].endswith(".parquet"):
        run_id, output = parts[1], parts[2].removesuffix(".parquet")
        try:
            run = _run_summary(repo, run_id, cache)
        except NotFound:
            run = None
        if run is not None:
            arts = [a for a in repo.runs.artifacts(run["id"]) if a.output == output]
            if not arts:
                raise NotFound(f"{repo.root}: run {run_id} has no table output {output!r}")
            return {
                "table": ref,
                "run": run,
                "parts": [_lineage_of(repo, a, cache) for a in arts],
            }
    is_run_ref = ref == "latest" or (
        len(ref) >= 4 and all(ch in "0123456789abcdef" for ch in ref.lower())
    )
    try:
        art = repo.runs.artifact(ref)
    except NotFound as e:
        if not is_run_ref:
            raise
        try:
            return run_lineage(repo, ref)
        except NotFound:
            raise NotFound(
                f"{repo.root}: no registered analysis artifact or run {ref!r} (give a run id, "
                "'latest', an artifact's key, a prefix of either, or an output's path relative "
                "to the repository; runs are listed by `quantscope runs`)"
            ) from e
    if is_run_ref and art.key != ref:  # a key prefix: is it a run's too?
        try:
            other = resolve_run(repo, ref)
        except (NotFound, InvalidInput):
            pass
        else:
            raise InvalidInput(
                f"{repo.root}: {ref!r} is a prefix of run {other.id} and of artifact "
                f"{art.key}; give more characters"
            )
    return _lineage_of(repo, art, cache)


def _qname(name: str) -> dict[str, str]:
    """A PROV-JSON value that is a qualified name (``prov:type`` values)."""
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


def _attrs(**attrs: Any) -> dict[str, Any]:
    """PROV-JSON attributes without the unknown ones (PROV has no null; prov 3.3 rejects it)."""
    return {k.replace("__", ":", 1): v for k, v in attrs.items() if v is not None}


def run_document(repo: Repository, run_id: str) -> dict[str, Any]:
    """One run as a W3C PROV-JSON document.

    The run is a ``prov:Activity`` associated (``wasAssociatedWith``) with the quantscope
    software (with the versions of the libraries that computed results), with the user on the
    host that started it, and with every tool of the pipeline: a ``prov:SoftwareAgent`` with
    the tool's name and version and the package that provides it with its version (a plugin's
    distribution; recorded by the run). Each step computed for an image is an activity too
    (informed by the run, associated with its tool); the pipeline spec, every image channel
    used (with its source files' SHA-256), every illumination profile used and every artifact
    are entities, linked by ``used``, ``wasGeneratedBy`` and ``wasDerivedFrom``. Artifacts the
    run reused from earlier runs are listed as used by the run.

    The document has no null attribute (unknown values are left out) and its ``prov:type``
    values are qualified names, so that ``prov.model.ProvDocument.deserialize`` reads it
    without a warning.

    Parameters
    ----------
    repo : quantscope.catalog.Repository
        An open repository.
    run_id : str
        Run id, a unique prefix of it, or ``"latest"``.
    """
    run = resolve_run(repo, run_id)
    prov = _ProvDocument(repo, run)
    prov.add_run()
    steps = {(s.image_id, s.step): s for s in repo.runs.steps(run.id)}
    prov.add_tools(steps)
    for art in repo.runs.artifacts(run.id):
        prov.add_artifact(art, steps.get((art.image_id, art.step)))
    return prov.finished()


class _ProvDocument:
    """The PROV-JSON document of one run (``run``, as :func:`resolve_run` gives it), built
    part by part: the run with its agents, the tools, then each artifact with the step that
    generated it and what that used. Relations get blank-node ids numbered in the order they
    are added (``_:used3``)."""

    def __init__(self, repo: Repository, run: RunRecord) -> None:
        self.repo = repo
        self.run = run
        self.rid = f"qs:run/{run.id}"  # the run's activity
        self.doc: dict[str, Any] = {
            "prefix": {
                "qs": "https://quantscope.org/ns#",
                "prov": "http://www.w3.org/ns/prov#",
                "xsd": "http://www.w3.org/2001/XMLSchema#",
            },
            "entity": {},
            "activity": {},
            "agent": {},
            "used": {},
            "wasGeneratedBy": {},
            "wasAssociatedWith": {},
            "wasDerivedFrom": {},
            "wasInformedBy": {},
        }
        self._n = 0  # relations added so far
        self._cache: dict[str, Any] = {}  # image id -> what the catalog says of it
        self._tool_agents: dict[tuple[str, str], str] = {}  # (tool, version) -> agent id

    def finished(self) -> dict[str, Any]:
        """The document, without the kinds of record it has none of."""
        return {k: v for k, v in self.doc.items() if v}

    def _rel(self, kind: str, body: dict[str, Any]) -> None:
        self._n += 1
        self.doc[kind][f"_:{kind}{self._n}"] = body

    def add_run(self) -> None:
        """The run's activity, its pipeline spec, and the quantscope software and the user
        associated with it."""
        run, rid, doc = self.run, self.rid, self.doc
        spec_id = f"qs:pipeline/{run.spec_hash}"
        doc["entity"][spec_id] = _attrs(
            prov__type=_qname("qs:PipelineSpec"),
            qs__name=run.pipeline_name,
            qs__sha256=run.spec_hash,
            qs__path=run.spec_path,
            qs__spec=json.dumps(run.spec, sort_keys=True),
        )
        doc["activity"][rid] = _attrs(
            prov__type=_qname("qs:PipelineRun"),
            prov__startTime=run.started_at.isoformat(),
            prov__endTime=run.ended_at.isoformat() if run.ended_at else None,
            qs__status=run.status,
            qs__scheduler=run.scheduler,
            qs__selection=run.selection,
        )
        software = run.software
        soft = f"qs:software/quantscope-{software.get('quantscope', 'unknown')}"
        doc["agent"][soft] = {
            "prov:type": _qname("prov:SoftwareAgent"),
            **{
                f"qs:version_{k}": v
                for k, v in sorted(software.items())
                if v is not None and not k.startswith("tool:")
            },
        }
        user = f"qs:user/{run.user_name}@{run.host}"
        doc["agent"][user] = _attrs(
            prov__type=_qname("prov:Person"), qs__user=run.user_name, qs__host=run.host
        )
        self._rel(
            "wasAssociatedWith", {"prov:activity": rid, "prov:agent": soft, "prov:plan": spec_id}
        )
        self._rel("wasAssociatedWith", {"prov:activity": rid, "prov:agent": user})
        self._rel("used", {"prov:activity": rid, "prov:entity": spec_id})

    def add_tools(self, steps: dict[tuple[str, str], StepRecord]) -> None:
        """One software agent per tool of the pipeline and version run (``steps``), with the
        package that provides it, associated with the run."""
        software = self.run.software
        versions: dict[str, set[str]] = {}
        for s in steps.values():
            versions.setdefault(s.tool, set()).add(s.tool_version)
        for spec_step in self.run.spec.get("steps", []):
            tool = str(spec_step.get("tool"))
            package, package_version = tool_package(software, tool)
            for version in sorted(versions.get(tool) or {""}):
                if (tool, version) in self._tool_agents:
                    continue
                aid = f"qs:tool/{tool}/{version}" if version else f"qs:tool/{tool}"
                self._tool_agents[(tool, version)] = aid
                self.doc["agent"][aid] = _attrs(
                    prov__type=_qname("prov:SoftwareAgent"),
                    qs__tool=tool,
                    qs__version=version or None,
                    qs__package=package,
                    qs__package_version=package_version,
                )
                self._rel("wasAssociatedWith", {"prov:activity": self.rid, "prov:agent": aid})

    def add_artifact(self, art: ArtifactRecord, step: StepRecord | None) -> None:
        """An artifact of the run: used by the run when reused (from an earlier run), else
        generated by its step (a tool run, added with what it used the first time) and
        derived from the step's inputs."""
        aid = f"qs:artifact/{art.key}"
        self.doc["entity"][aid] = _attrs(
            prov__type=_qname(f"qs:{art.kind}"),
            qs__path=art.path,
            qs__sha256=art.sha256,
            qs__size=art.size,
            qs__n_objects=art.n_objects,
            qs__image=art.image_id,
        )
        run_id = self.run.id
        if art.run_id != run_id or (step is not None and step.status == "reused"):
            self._rel("used", {"prov:activity": self.rid, "prov:entity": aid})
            return
        sid = f"qs:step/{run_id}/{art.image_id}/{art.step}"
        if sid not in self.doc["activity"]:
            self._add_tool_run(sid, art)
        self._rel(
            "wasGeneratedBy",
            {"prov:entity": aid, "prov:activity": sid, "prov:time": art.ended_at.isoformat()},
        )
        for u in self.repo.runs.artifact_inputs(art.key):
            self._rel(
                "wasDerivedFrom", {"prov:generatedEntity": aid, "prov:usedEntity": self._entity(u)}
            )

    def _add_tool_run(self, sid: str, art: ArtifactRecord) -> None:
        """The activity ``sid`` of the step that generated ``art``: informed by the run,
        associated with its tool, using the step's inputs."""
        self.doc["activity"][sid] = _attrs(
            prov__type=_qname("qs:ToolRun"),
            prov__startTime=art.started_at.isoformat(),
            prov__endTime=art.ended_at.isoformat(),
            qs__tool=art.tool,
            qs__tool_version=art.tool_version,
            qs__parameters=art.params_json,
            qs__params_hash=art.params_hash,
        )
        self._rel("wasInformedBy", {"prov:informed": sid, "prov:informant": self.rid})
        agent = self._tool_agents.get((art.tool, art.tool_version))
        if agent is not None:
            self._rel("wasAssociatedWith", {"prov:activity": sid, "prov:agent": agent})
        for u in self.repo.runs.artifact_inputs(art.key):
            self._rel(
                "used",
                {"prov:activity": sid, "prov:entity": self._entity(u), "prov:role": u.role},
            )

    def _entity(self, u: ArtifactInput) -> str:
        """The id of the entity an input ``u`` (a record of ``artifact_inputs``) refers to,
        added to the document the first time."""
        kind = u.kind
        entities = self.doc["entity"]
        if kind == "channel":
            return self._channel(u)
        if kind == "artifact":
            return f"qs:artifact/{u.ref}"
        if kind == "profile":
            eid = f"qs:profile/{u.sha256}"
            entities.setdefault(
                eid, _attrs(prov__type=_qname("qs:IlluminationProfile"), qs__path=u.ref)
            )
            return eid
        if kind == "setting":
            eid = f"qs:setting/{u.sha256}"
            entities.setdefault(
                eid,
                _attrs(prov__type=_qname("qs:Setting"), qs__name=u.role, qs__value=u.ref),
            )
            return eid
        if kind != "derived":
            eid = f"qs:input/{u.sha256}"
            entities.setdefault(eid, _attrs(prov__type=_qname(f"qs:{kind}"), qs__ref=str(u.ref)))
            return eid
        return self._in_memory_value(u)

    def _channel(self, u: ArtifactInput) -> str:
        """An image channel, derived from the image's source files (with their SHA-256)."""
        image_id, _, chan = str(u.ref).rpartition(":c")
        eid = f"qs:image/{image_id}/channel/{chan}"
        entities = self.doc["entity"]
        if eid in entities:
            return eid
        info = _image_info(self.repo, image_id, self._cache)
        entities[eid] = _attrs(
            prov__type=_qname("qs:ImageChannel"),
            qs__image=image_id,
            qs__name=info.get("name"),
            qs__checksum=u.sha256,
        )
        for src in info.get("sources", []):
            sid = f"qs:source/{src['sha256']}"
            entities.setdefault(
                sid,
                _attrs(
                    prov__type=_qname("qs:SourceFile"),
                    qs__path=src["path"],
                    qs__sha256=src["sha256"],
                    qs__size=src["size"],
                ),
            )
            self._rel("wasDerivedFrom", {"prov:generatedEntity": eid, "prov:usedEntity": sid})
        return eid

    def _in_memory_value(self, u: ArtifactInput) -> str:
        """An intermediate kept in memory (an illumination-corrected channel), derived from
        what the step that made it used."""
        eid = f"qs:value/{u.sha256}"
        if eid in self.doc["entity"]:
            return eid
        d = json.loads(u.ref)
        self.doc["entity"][eid] = _attrs(
            prov__type=_qname("qs:InMemoryValue"),
            qs__step=d.get("step"),
            qs__tool=d.get("tool"),
            qs__version=d.get("version"),
            qs__parameters=json.dumps(d.get("parameters"), sort_keys=True),
        )
        for x in d.get("used", []):
            self._rel(
                "wasDerivedFrom",
                {
                    "prov:generatedEntity": eid,
                    "prov:usedEntity": self._entity(_derived_input(u, x)),
                },
            )
        return eid
