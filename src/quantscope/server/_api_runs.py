"""Analysis runs over HTTP: list, records, feature tables, provenance, and pipeline runs
started in the background (``POST /api/runs``) with their progress.

Everything goes through :mod:`._guard`: a run is visible to a caller who may see at least one
of its images; its feature rows, steps and provenance show only the images the caller may see.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from ..catalog import Principal, Repository, RunRecord
from ..errors import InvalidInput, NotFound
from ._auth import CSRF, principal
from ._guard import filter_visible, require_user
from ._runjobs import JobStore, available_pipelines, resolve_pipeline, start_job
from ._state import state

__all__ = [
    "FEATURE_TYPES",
    "feature_table",
    "job_status",
    "provenance_graph",
    "router",
    "run_images",
    "start_run",
    "visible_run",
]

router = APIRouter(tags=["runs"])

#: Content type of each feature export format.
FEATURE_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "anndata": "application/x-hdf5",
}
_EXT = {"parquet": ".parquet", "csv": ".csv", "anndata": ".h5ad"}


_RUN_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise NotFound(f"no run with id {str(run_id)[:80]!r}")
    return run_id


def run_images(repo: Repository, run_id: str) -> list[str]:
    """The ids of the images a run read (its step records), sorted."""
    return sorted({s.image_id for s in repo.runs.steps(run_id) if s.image_id})


def visible_run(repo: Repository, who: Principal, run_id: str) -> tuple[RunRecord, list[str]]:
    """The run ``run_id`` (its full id) and the ids of its images ``who`` may see.

    Raises
    ------
    NotFound
        No such run, or none of its images is visible to ``who`` (the same answer).
    """
    _check_run_id(run_id)
    try:
        run = repo.runs.get(run_id)
    except (NotFound, InvalidInput):  # (an ambiguous prefix says no more than a wrong id)
        raise NotFound(f"no run with id {run_id!r}") from None
    if run.id != run_id:  # full ids only: a prefix would let a caller probe ids
        raise NotFound(f"no run with id {run_id!r}")
    images = run_images(repo, run.id)
    visible = filter_visible(repo, who, images)
    if not visible and not (who.is_admin and not images):
        raise NotFound(f"no run with id {run_id!r}")
    return run, visible


def _run_dict(repo: Repository, run: RunRecord, visible: list[str]) -> dict[str, Any]:
    d = run.to_dict()
    d["started_at"] = run.started_at.isoformat() if run.started_at else None
    d["ended_at"] = run.ended_at.isoformat() if run.ended_at else None
    d["n_visible_images"] = len(visible)
    return d


@router.get("/api/runs")
def list_runs(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Analysis runs (newest first) with at least one image the caller may see."""
    repo = state(request).repo
    items = []
    for run in repo.runs.all():
        images = run_images(repo, run.id)
        visible = filter_visible(repo, who, images)
        if visible or (who.is_admin and not images):
            d = _run_dict(repo, run, visible)
            d.pop("spec", None)
            d["url"] = f"/api/runs/{run.id}"
            items.append(d)
    return {"items": items, "total": len(items)}


@router.get("/api/runs/{run_id}")
def get_run(run_id: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    """A run's record, its steps and artifacts (those of images the caller may see)."""
    repo = state(request).repo
    run, visible = visible_run(repo, who, run_id)
    seen = set(visible)
    d = _run_dict(repo, run, visible)
    d["steps"] = [s.to_dict() for s in repo.runs.steps(run.id) if s.image_id in seen]
    d["artifacts"] = [
        {**a.to_dict(), "started_at": str(a.started_at), "ended_at": str(a.ended_at)}
        for a in repo.runs.artifacts(run.id)
        if a.image_id in seen
    ]
    return d


def feature_table(
    repo: Repository, who: Principal, run_id: str, table: str | None = None
) -> tuple[Any, str, RunRecord]:
    """A run's table (:func:`quantscope.analysis.run_table`) with only the rows of images
    ``who`` may see; (dataframe, table name, run)."""
    from ..analysis import run_table

    run, visible = visible_run(repo, who, run_id)
    df, name = run_table(repo, run.id, table)
    if "image_id" in df.columns:
        df = df[df["image_id"].isin(set(visible))].reset_index(drop=True)
    return df, name, run


@router.get("/api/runs/{run_id}/features")
def get_features(
    run_id: str,
    request: Request,
    format: str = Query("parquet", description="parquet, csv or anndata (.h5ad)"),
    table: str | None = Query(None, description="Table output name (per-image summary: Image)"),
    naming: str | None = Query(None, description="cellprofiler or quantscope"),
    who: Principal = Depends(principal),
) -> FileResponse:
    """A run's feature table as Parquet, CSV or AnnData: what ``quantscope features`` writes,
    with only the rows of images the caller may see."""
    from ..analysis import NAMINGS, describe_run_table, export_table

    if format not in FEATURE_TYPES:
        raise InvalidInput(f"format {format[:40]!r}: use parquet, csv or anndata")
    if naming is not None and naming not in NAMINGS:
        raise InvalidInput(f"naming {naming[:40]!r}: use cellprofiler or quantscope")
    if table is not None and (len(table) > 128 or not table.replace("_", "").isalnum()):
        raise NotFound(f"run {run_id[:12]} has no table {table[:80]!r}")
    repo = state(request).repo
    df, name, run = feature_table(repo, who, run_id, table)
    info = describe_run_table(repo, run.id, name)
    uns = {
        "quantscope_run": run.id,
        "pipeline": run.pipeline_name,
        "spec_hash": run.spec_hash,
        "table": name,
    }
    naming = naming or ("quantscope" if format == "anndata" else "cellprofiler")
    tmpdir = tempfile.mkdtemp(prefix="quantscope-features-")
    out = Path(tmpdir) / f"{name}{_EXT[format]}"
    try:
        export_table(df, out, format, uns, naming=naming, info=info)
    except BaseException:
        _remove(tmpdir)
        raise
    filename = f"{run.id[:12]}_{name}{_EXT[format]}"
    return FileResponse(
        out,
        media_type=FEATURE_TYPES[format],
        filename=filename,
        background=BackgroundTask(_remove, tmpdir),
    )


def _remove(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def provenance_graph(repo: Repository, who: Principal, run_id: str) -> dict[str, Any]:
    """The run's lineage (:func:`quantscope.provenance.run_lineage`, what ``quantscope
    provenance RUN --json`` prints) with only the images ``who`` may see."""
    from ..provenance import run_lineage

    run, visible = visible_run(repo, who, run_id)
    doc = run_lineage(repo, run.id)
    seen = set(visible)
    doc["images"] = [i for i in doc.get("images", []) if i.get("id") in seen]
    return doc


@router.get("/api/runs/{run_id}/provenance")
def get_provenance(
    run_id: str, request: Request, who: Principal = Depends(principal)
) -> dict[str, Any]:
    """The run's provenance: steps, tools and versions, the images read, the outputs."""
    return provenance_graph(state(request).repo, who, run_id)


# ------------------------------------------------------------------------ background runs
async def _small_body(request: Request, limit: int) -> bytes:
    """The body, read in chunks and refused past ``limit`` bytes (never read whole first)."""
    too_big = InvalidInput(f"request body over {limit // 1024} KiB: a pipeline spec is small")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # (Starlette's cache: request.form() below parses these bytes)
    return body


async def _spec_of(request: Request) -> tuple[str, str | None]:
    """(pipeline name or YAML text, query) of a POST /api/runs body: JSON ``{"pipeline",
    "q"}``, a form, or the YAML spec itself (query in ``?q=``)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    parsed = getattr(request, "_form", None)  # read already (a CSRF check parsed the form)
    body = b"" if parsed is not None else await _small_body(request, 512 * 1024)
    if ctype == "application/json":
        import json

        try:
            data = json.loads(body or b"null")
        except ValueError as e:
            raise InvalidInput(f"body: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise InvalidInput('body: expected {"pipeline": NAME or YAML, "q": QUERY}')
        pipeline, q = data.get("pipeline"), data.get("q")
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        pipeline, q = form.get("pipeline"), form.get("q")
    else:
        try:
            pipeline = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("body: a pipeline spec is UTF-8 YAML text") from None
        q = request.query_params.get("q")
    if not isinstance(pipeline, str):
        raise InvalidInput('pipeline: give a pipeline name or YAML text ("pipeline": ...)')
    if q is not None and not isinstance(q, str):
        raise InvalidInput("q: a query is text")
    return pipeline, (q or None)


def _check_lock(repo: Repository) -> None:
    """ConcurrentAccess (409) now, rather than a failed job, when another writer holds the
    repository's write lock."""
    with repo.write_lock():
        pass


def start_run(repo: Repository, who: Principal, spec: str, q: str | None) -> dict[str, Any]:
    """Validate ``spec`` (a pipeline name or YAML), select the images of ``q`` that ``who``
    may see, and start the run in the background; the job's first record.

    Raises
    ------
    NotAuthenticated
        An anonymous caller.
    InvalidInput
        A bad spec or query, or no visible image matches.
    ToolUnavailable
        A step's tool cannot run on this server (an optional package is absent).
    ConcurrentAccess
        Another process holds the repository's write lock.
    """
    from ..analysis import ToolUnavailable

    require_user(who)
    pipeline, _ = resolve_pipeline(repo.root, spec)
    for step in pipeline.steps:  # what run_pipeline would refuse, refused before accepting
        reason = step.tool.unavailable()
        if reason is not None:
            raise ToolUnavailable(f"step {step.id!r}: tool {step.tool.name!r} {reason}")
    ids = filter_visible(repo, who, repo.query.find_ids(q or ""))
    if not ids:
        raise InvalidInput(f"query {q or ''!r}: no image you may see matches it")
    _check_lock(repo)
    scheduler = os.environ.get("QUANTSCOPE_SERVE_SCHEDULER") or None
    return start_job(repo.root, pipeline, ids, query=q, user=who.name or "", scheduler=scheduler)


_RUN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["pipeline"],
                    "properties": {
                        "pipeline": {
                            "type": "string",
                            "description": "A pipeline name (GET /api/pipelines) or YAML text",
                        },
                        "q": {"type": "string", "description": "Query selecting the images"},
                    },
                }
            },
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/api/runs", dependencies=[CSRF], status_code=202, openapi_extra=_RUN_BODY)
async def post_run(request: Request, who: Principal = Depends(principal)) -> JSONResponse:
    """Start a pipeline (a name from ``GET /api/pipelines``, or YAML text) on the images of a
    query (those the caller may see) in the background; 202 with the job's status URL."""
    require_user(who)
    text, q = await _spec_of(request)
    job = start_run(state(request).repo, who, text, q)
    status_url = f"/api/runs/{job['id']}/status"
    return JSONResponse(
        {"id": job["id"], "status_url": status_url, "page_url": f"/runs/{job['id']}"},
        status_code=202,
        headers={"Location": status_url},
    )


_STATE_OF_RUN = {"running": "running", "completed": "done", "partial": "done"}


def job_status(repo: Repository, who: Principal, ref: str) -> dict[str, Any]:
    """The status of a background job (by job id) or of a run (by run id)."""
    store = JobStore(repo.root)
    try:
        job = store.read(ref)
    except NotFound:
        job = None
    if job is not None:
        if job.get("user") != who.name and not who.is_admin:
            raise NotFound(f"no run or job with id {ref!r}")
        keys = ("id", "state", "done", "total", "log", "run_id", "pipeline", "error", "query")
        out = {k: job.get(k) for k in keys}
        if job.get("report"):
            out["report"] = job["report"]
        return out
    run, _ = visible_run(repo, who, ref)
    return {
        "id": run.id,
        "state": _STATE_OF_RUN.get(run.status, "failed"),
        "done": run.n_images if run.status != "running" else 0,
        "total": run.n_images,
        "log": [],
        "run_id": run.id,
        "pipeline": run.pipeline_name,
        "error": None if run.status in _STATE_OF_RUN else f"run {run.status}",
        "query": run.selection,
    }


@router.get("/api/runs/{ref}/status")
def get_status(ref: str, request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    """``{"state": queued|running|done|failed, "done", "total", "log", "run_id"}`` of a job
    started with ``POST /api/runs`` (or of a run, by its id)."""
    return job_status(state(request).repo, who, ref)


@router.get("/api/pipelines")
def list_pipelines(request: Request, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Pipeline names ``POST /api/runs`` accepts (the repository's ``pipelines/`` first)."""
    known = available_pipelines(state(request).repo.root)
    return {"items": [{"name": k, "source": v} for k, v in known.items()]}
