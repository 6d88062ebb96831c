"""Lineage of analysis outputs, back to the source files, and run records in W3C PROV terms.

Every registered artifact (a label image, a per-image table) records the run and step that
generated it (PROV ``wasGeneratedBy``), the tool with its version and parameters, and what it
used (PROV ``used``): channels of an image (whose catalog entry lists the source files with
their SHA-256), other artifacts, illumination profiles, or in-memory intermediates (an
illumination-corrected channel) described by the step that made them. :func:`lineage` follows
these links down to the source files; :func:`run_document` writes one run as a PROV-JSON
document (https://www.w3.org/submissions/prov-json/).

References
----------
.. [1] Moreau, L. & Missier, P. (eds.) (2013). PROV-DM: The PROV Data Model. W3C
   Recommendation. https://www.w3.org/TR/prov-dm/
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import NotFound

if TYPE_CHECKING:
    from ..catalog import Repository

__all__ = ["lineage", "run_document"]


def _image_info(repo: Repository, image_id: str, cache: dict[str, Any]) -> dict[str, Any]:
    if image_id not in cache:
        try:
            img = repo.image(image_id)
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


def _used(repo: Repository, u: dict[str, Any], cache: dict[str, Any], depth: int) -> dict[str, Any]:
    kind = u["kind"]
    out: dict[str, Any] = {"role": u["role"], "kind": kind, "sha256": u["sha256"]}
    if kind == "channel":
        image_id, _, chan = str(u["ref"]).rpartition(":c")
        info = _image_info(repo, image_id, cache)
        idx = int(chan) if chan.isdigit() else None
        out["channel"] = idx
        names = info.get("channels") or []
        out["channel_name"] = names[idx] if idx is not None and idx < len(names) else None
        out["image"] = info
    elif kind == "artifact":
        try:
            out["artifact"] = _lineage_of(repo, repo.artifact(u["ref"]), cache, depth + 1)
        except NotFound:
            out["artifact"] = {"key": u["ref"], "missing": True}
    elif kind == "profile":
        out["path"] = u["ref"]
    elif kind == "derived":
        d = json.loads(u["ref"])
        out.update(
            step=d.get("step"),
            output=d.get("output"),
            tool=d.get("tool"),
            version=d.get("version"),
            parameters=d.get("parameters"),
            used=[_used(repo, x, cache, depth + 1) for x in d.get("used", [])],
        )
    else:
        out["ref"] = u["ref"]
    return out


def _run_summary(repo: Repository, run_id: str, cache: dict[str, Any]) -> dict[str, Any]:
    key = f"run:{run_id}"
    if key not in cache:
        r = repo.analysis_run(run_id)
        cache[key] = {
            "id": r["id"],
            "pipeline": r["pipeline_name"],
            "spec_hash": r["spec_hash"],
            "spec_path": r["spec_path"],
            "status": r["status"],
            "started_at": r["started_at"].isoformat() if r["started_at"] else None,
            "ended_at": r["ended_at"].isoformat() if r["ended_at"] else None,
            "host": r["host"],
            "user": r["user_name"],
            "scheduler": r["scheduler"],
            "software": r["software"],
        }
    return dict(cache[key])


def _lineage_of(
    repo: Repository, art: dict[str, Any], cache: dict[str, Any], depth: int = 0
) -> dict[str, Any]:
    if depth > 50:  # keys are digests of their inputs: a cycle is impossible, but be safe
        return {"key": art["key"], "truncated": True}
    return {
        "key": art["key"],
        "kind": art["kind"],
        "path": art["path"],
        "sha256": art["sha256"],
        "size": art["size"],
        "n_objects": art["n_objects"],
        "image_id": art["image_id"],
        "step": art["step"],
        "output": art["output"],
        "tool": art["tool"],
        "tool_version": art["tool_version"],
        "parameters": json.loads(art["params_json"]),
        "params_hash": art["params_hash"],
        "created": {
            "started_at": art["started_at"].isoformat(),
            "ended_at": art["ended_at"].isoformat(),
        },
        "generated_by": _run_summary(repo, art["run_id"], cache),
        "used": [_used(repo, u, cache, depth) for u in repo.artifact_inputs(art["key"])],
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
        ``tables/<run>/<output>/<image>.parquet``), or a run's consolidated table
        (``tables/<run>/<output>.parquet``).

    Returns
    -------
    dict
        For an artifact: its key, path, checksum, tool, version and parameters, the run that
        generated it (pipeline, spec hash, times, host, user, software versions) and what it
        used, recursively, ending at image channels with their source files (path, size,
        SHA-256). For a consolidated table: ``{"table": path, "run": ..., "parts": [...]}``.

    Raises
    ------
    NotFound
        Nothing registered matches ``ref``.
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
            arts = [a for a in repo.run_artifacts(run["id"]) if a["output"] == output]
            if not arts:
                raise NotFound(f"{repo.root}: run {run_id} has no table output {output!r}")
            return {
                "table": ref,
                "run": run,
                "parts": [_lineage_of(repo, a, cache) for a in arts],
            }
    return _lineage_of(repo, repo.artifact(ref), cache)


def run_document(repo: Repository, run_id: str) -> dict[str, Any]:
    """One run as a W3C PROV-JSON document.

    The run is a ``prov:Activity`` associated (``wasAssociatedWith``) with two agents: the
    quantscope software (with the versions of the libraries that computed results) and the user
    on the host that started it. Each step computed for an image is an activity too (informed
    by the run); the pipeline spec, every image channel used (with its source files' SHA-256),
    every illumination profile used and every artifact are entities, linked by ``used``,
    ``wasGeneratedBy`` and ``wasDerivedFrom``. Artifacts the run reused from earlier runs are
    listed as used by the run.
    """
    cache: dict[str, Any] = {}
    run = repo.analysis_run(run_id)
    rid = f"qs:run/{run['id']}"
    doc: dict[str, Any] = {
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
    n = 0

    def rel(kind: str, body: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        doc[kind][f"_:{kind}{n}"] = body

    spec_id = f"qs:pipeline/{run['spec_hash']}"
    doc["entity"][spec_id] = {
        "prov:type": "qs:PipelineSpec",
        "qs:name": run["pipeline_name"],
        "qs:sha256": run["spec_hash"],
        "qs:path": run["spec_path"],
        "qs:spec": json.dumps(run["spec"], sort_keys=True),
    }
    doc["activity"][rid] = {
        "prov:type": "qs:PipelineRun",
        "prov:startTime": run["started_at"].isoformat(),
        "prov:endTime": run["ended_at"].isoformat() if run["ended_at"] else None,
        "qs:status": run["status"],
        "qs:scheduler": run["scheduler"],
        "qs:selection": run["selection"],
    }
    soft = f"qs:software/quantscope-{run['software'].get('quantscope', '?')}"
    doc["agent"][soft] = {
        "prov:type": "prov:SoftwareAgent",
        **{f"qs:version_{k}": v for k, v in sorted(run["software"].items())},
    }
    user = f"qs:user/{run['user_name']}@{run['host']}"
    doc["agent"][user] = {"prov:type": "prov:Person", "qs:user": run["user_name"]}
    doc["agent"][user]["qs:host"] = run["host"]
    rel("wasAssociatedWith", {"prov:activity": rid, "prov:agent": soft, "prov:plan": spec_id})
    rel("wasAssociatedWith", {"prov:activity": rid, "prov:agent": user})
    rel("used", {"prov:activity": rid, "prov:entity": spec_id})

    def entity_for(u: dict[str, Any]) -> str:
        kind = u["kind"]
        if kind == "channel":
            image_id, _, chan = str(u["ref"]).rpartition(":c")
            eid = f"qs:image/{image_id}/channel/{chan}"
            if eid not in doc["entity"]:
                info = _image_info(repo, image_id, cache)
                doc["entity"][eid] = {
                    "prov:type": "qs:ImageChannel",
                    "qs:image": image_id,
                    "qs:name": info.get("name"),
                    "qs:checksum": u["sha256"],
                }
                for s in info.get("sources", []):
                    sid = f"qs:source/{s['sha256']}"
                    doc["entity"].setdefault(
                        sid,
                        {
                            "prov:type": "qs:SourceFile",
                            "qs:path": s["path"],
                            "qs:sha256": s["sha256"],
                            "qs:size": s["size"],
                        },
                    )
                    rel("wasDerivedFrom", {"prov:generatedEntity": eid, "prov:usedEntity": sid})
            return eid
        if kind == "artifact":
            return f"qs:artifact/{u['ref']}"
        if kind == "profile":
            eid = f"qs:profile/{u['sha256']}"
            doc["entity"].setdefault(
                eid, {"prov:type": "qs:IlluminationProfile", "qs:path": u["ref"]}
            )
            return eid
        eid = f"qs:value/{u['sha256']}"
        if eid not in doc["entity"]:
            d = json.loads(u["ref"])
            doc["entity"][eid] = {
                "prov:type": "qs:InMemoryValue",
                "qs:step": d.get("step"),
                "qs:tool": d.get("tool"),
                "qs:version": d.get("version"),
                "qs:parameters": json.dumps(d.get("parameters"), sort_keys=True),
            }
            for x in d.get("used", []):
                rel(
                    "wasDerivedFrom",
                    {"prov:generatedEntity": eid, "prov:usedEntity": entity_for(x)},
                )
        return eid

    steps = {(s["image_id"], s["step"]): s for s in repo.run_steps(run["id"])}
    for art in repo.run_artifacts(run["id"]):
        aid = f"qs:artifact/{art['key']}"
        doc["entity"][aid] = {
            "prov:type": f"qs:{art['kind']}",
            "qs:path": art["path"],
            "qs:sha256": art["sha256"],
            "qs:size": art["size"],
            "qs:n_objects": art["n_objects"],
            "qs:image": art["image_id"],
        }
        step = steps.get((art["image_id"], art["step"]))
        if art["run_id"] != run["id"] or (step is not None and step["status"] == "reused"):
            rel("used", {"prov:activity": rid, "prov:entity": aid})
            continue
        sid = f"qs:step/{run['id']}/{art['image_id']}/{art['step']}"
        if sid not in doc["activity"]:
            doc["activity"][sid] = {
                "prov:type": "qs:ToolRun",
                "prov:startTime": art["started_at"].isoformat(),
                "prov:endTime": art["ended_at"].isoformat(),
                "qs:tool": art["tool"],
                "qs:tool_version": art["tool_version"],
                "qs:parameters": art["params_json"],
                "qs:params_hash": art["params_hash"],
            }
            rel("wasInformedBy", {"prov:informed": sid, "prov:informant": rid})
            for u in repo.artifact_inputs(art["key"]):
                rel(
                    "used",
                    {"prov:activity": sid, "prov:entity": entity_for(u), "prov:role": u["role"]},
                )
        rel(
            "wasGeneratedBy",
            {"prov:entity": aid, "prov:activity": sid, "prov:time": art["ended_at"].isoformat()},
        )
        for u in repo.artifact_inputs(art["key"]):
            rel("wasDerivedFrom", {"prov:generatedEntity": aid, "prov:usedEntity": entity_for(u)})
    return {k: v for k, v in doc.items() if v}
