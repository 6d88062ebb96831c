"""Pages: analysis runs (list, start form, status with progress, steps, provenance graph),
per-object features (table, downloads, histogram, scatter, crops) and benchmark leaderboards.

Thin over :mod:`._api_runs` (the same visibility rules and the same background runs) and over
:mod:`quantscope.benchmark`'s leaderboard builders.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.datastructures import QueryParams

from ..catalog import Principal, Repository
from ..errors import AccessDenied, InvalidInput, NotFound
from ._api_runs import (
    FEATURE_TYPES,
    feature_table,
    job_status,
    provenance_graph,
    run_images,
    start_run,
    visible_run,
)
from ._auth import CSRF, csrf_token, principal
from ._features_view import (
    apply_filter,
    histogram_svg,
    provenance_svg,
    scatter_svg,
    view_table,
)
from ._guard import filter_visible, require_user
from ._page import page
from ._runjobs import JobStore, available_pipelines
from ._state import state

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_META = ("image_id", "plate", "well", "field", "ObjectNumber")


def _visible_runs(repo: Repository, who: Principal) -> list[dict[str, Any]]:
    out = []
    for run in repo.runs.all():
        images = run_images(repo, run.id)
        visible = filter_visible(repo, who, images)
        if visible or (who.is_admin and not images):
            out.append({"run": run, "images": len(visible)})
    return out


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, who: Principal = Depends(principal)) -> HTMLResponse:
    """Runs the caller may see, the caller's recent background jobs, and the form that starts
    a pipeline run."""
    repo = state(request).repo
    jobs = [
        j
        for j in JobStore(repo.root).all()[:20]
        if who.is_admin or (j.get("user") == who.name and not who.is_anonymous)
    ]
    return page(
        request,
        "runs.html.j2",
        title="Runs",
        nav="runs",
        runs=_visible_runs(repo, who),
        jobs=jobs,
        pipelines=available_pipelines(repo.root),
        may_start=not who.is_anonymous,
    )


@router.post("/runs", dependencies=[CSRF])
async def start_run_form(request: Request, who: Principal = Depends(principal)) -> Response:
    """The start form: validate, start the run in the background, go to its page (303)."""
    require_user(who)
    form = await request.form()
    expected = csrf_token(request)
    sent = form.get("csrf")
    if expected and not (isinstance(sent, str) and hmac.compare_digest(sent, expected)):
        raise AccessDenied("the form's CSRF token is missing or stale; reload the page")
    spec, q = form.get("pipeline"), form.get("q")
    if not isinstance(spec, str) or (q is not None and not isinstance(q, str)):
        raise InvalidInput("choose a pipeline")
    job = start_run(state(request).repo, who, spec, q or None)
    return RedirectResponse(f"/runs/{job['id']}", status_code=303)


def _steps_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.get("id"),
            "tool": s.get("tool"),
            "versions": ", ".join(s.get("versions") or []),
            "package": f"{s.get('package') or '?'} {s.get('package_version') or ''}".strip(),
            "parameters": ", ".join(f"{k}={v}" for k, v in (s.get("parameters") or {}).items()),
            "counts": s.get("counts") or {},
        }
        for s in doc.get("steps", [])
    ]


@router.get("/runs/{ref}", response_class=HTMLResponse)
def run_page(ref: str, request: Request, who: Principal = Depends(principal)) -> HTMLResponse:
    """A background job (progress until done) or a run: status, steps, provenance graph,
    feature tables."""
    repo = state(request).repo
    status = job_status(repo, who, ref)
    context: dict[str, Any] = {"status": status, "ref": ref, "run": None}
    run_id = status.get("run_id")
    if run_id and status["state"] == "done":
        run, visible = visible_run(repo, who, run_id)
        doc = provenance_graph(repo, who, run.id)
        tables = sorted({a.output for a in repo.runs.artifacts(run.id) if a.kind == "table"})
        context.update(
            run=run,
            n_visible=len(visible),
            steps=_steps_table(doc),
            graph=Markup(provenance_svg(doc)),
            tables=tables,
            formats=list(FEATURE_TYPES),
        )
    title = f"Run {run_id[:12]}" if run_id else f"Job {ref[:12]}"
    return page(request, "run.html.j2", title=title, nav="runs", **context)


def _feature_columns(df: Any, wanted: list[str]) -> list[str]:
    meta = [c for c in _META if c in df.columns]
    features = [c for c in df.columns if c not in meta]
    chosen = [c for c in wanted if c in features] or features[:10]
    return meta + chosen


def _labels_name(run: Any, table: str) -> str | None:
    for s in run.spec.get("steps", []):
        if table in (s.get("outputs") or {}).values():
            labels = (s.get("inputs") or {}).get("labels")
            if isinstance(labels, str):
                return labels
            if isinstance(labels, list) and labels:
                return str(labels[0])
    return None


def _treatments(repo: Repository, image_ids: list[str]) -> dict[str, str]:
    images = repo.images.all(sorted(set(image_ids)))
    out: dict[str, str] = {}
    for image_id, anns in repo.annotations.effective(images).items():
        for a in anns:
            if getattr(a, "key", None) == "treatment" and getattr(a, "value", None):
                out[image_id] = str(a.value)
    return out


def _int(value: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(value))) if value else default
    except ValueError:
        raise InvalidInput(f"not a whole number: {str(value)[:20]!r}") from None


def _plots(df: Any, qp: Any, numeric: list[str], crop: str | None) -> dict[str, Any]:
    """The histogram and scatter plot the query asks for (defaults: the first features)."""
    feats = [c for c in numeric if c not in _META]
    out: dict[str, Any] = {"hist": None, "x": None, "y": None, "color": None}
    if not feats:
        return out
    # defaults: the first measurements that are not positions
    shape = [c for c in feats if "Location" not in c and "Center" not in c] or feats
    hist = qp.get("hist") or shape[0]
    x = qp.get("x") or shape[0]
    y = qp.get("y") or shape[min(1, len(shape) - 1)]
    color = qp.get("color") or ("well" if "well" in df.columns else None)
    for name, col in (("hist", hist), ("x", x), ("y", y)):
        if col not in feats:
            raise InvalidInput(f"{name}: no numeric feature {col[:80]!r}")
    if color is not None and color not in df.columns:
        raise InvalidInput(f"color: no column {color[:80]!r}")
    out.update(hist=hist, x=x, y=y, color=color)
    out["hist_svg"] = Markup(histogram_svg(df[hist], hist))
    out["scatter_svg"] = Markup(scatter_svg(df, x, y, color, crop_url=crop))
    return out


def _table_and_plots(df: Any, qp: Any, crop: str | None) -> tuple[Any, dict[str, Any]]:
    """The page of the table and the plots that the query ``qp`` asks for."""
    total = len(df)
    filtered = apply_filter(df, qp.get("filter") or "")
    col, lo, hi = qp.get("col") or "", qp.get("min") or "", qp.get("max") or ""
    if col:
        if col not in df.columns:
            raise InvalidInput(f"col: no column {col[:80]!r}")
        clauses = [f"{col} >= {lo}"] if lo else []
        clauses += [f"{col} <= {hi}"] if hi else []
        filtered = apply_filter(filtered, " and ".join(clauses))
    view = view_table(
        filtered,
        columns=_feature_columns(df, qp.getlist("cols")),
        sort=qp.get("sort") or None,
        desc=qp.get("desc") == "1",
        page=_int(qp.get("page"), 1, 1, 10**9),
        per_page=_int(qp.get("per"), 50, 1, 500),
    )
    view.total = total
    return view, _plots(filtered, qp, view.numeric, crop)


@router.get("/runs/{run_id}/features", response_class=HTMLResponse)
def features_page(
    run_id: str, request: Request, who: Principal = Depends(principal)
) -> HTMLResponse:
    """A run's per-object table: filter (expression, or one column's min/max), sort, pages,
    downloads, a histogram and a scatter plot whose points open the object's crop."""
    repo = state(request).repo
    qp = request.query_params
    table = qp.get("table") or None
    df, name, run = feature_table(repo, who, run_id, table)
    if "image_id" in df.columns:
        treat = _treatments(repo, list(df["image_id"].unique()))
        if treat:
            df = df.assign(treatment=df["image_id"].map(treat).fillna(""))
    labels = _labels_name(run, name)
    crop = (
        "/api/images/{image_id}/objects/{label}/crop.png?" + urlencode({"labels": labels})
        if labels
        else None
    )
    error, status = None, 200
    try:
        view, plots = _table_and_plots(df, qp, crop)
    except InvalidInput as e:  # shown above the form, which keeps what was typed
        error, status = str(e), 400
        view, plots = _table_and_plots(df, QueryParams(""), crop)
    keep = [(k, v) for k, v in qp.multi_items() if k not in ("page", "sort", "desc")]
    expr = qp.get("filter") or ""
    return page(
        request,
        "features.html.j2",
        title=f"Features: {name} of run {run.id[:12]}",
        nav="runs",
        status_code=status,
        error=error,
        run=run,
        table=name,
        view=view,
        expr=expr,
        col=qp.get("col") or "",
        lo=qp.get("min") or "",
        hi=qp.get("max") or "",
        sort=qp.get("sort") or "",
        desc=qp.get("desc") == "1",
        plots=plots,
        text_columns=[c for c in view.text if c != "image_id"],
        feature_columns=[c for c in view.numeric if c not in _META],
        base_query=urlencode(keep),
        downloads=[
            (fmt, f"/api/runs/{run.id}/features?" + urlencode({"format": fmt, "table": name}))
            for fmt in FEATURE_TYPES
        ],
        labels=labels,
    )


# ---------------------------------------------------------------------------- benchmarks
def _visible_sets(repo: Repository, who: Principal) -> list[Any]:
    """Benchmark sets whose images the caller may all see (admins: every set)."""
    sets = repo.bench.sets()
    if who.is_admin:
        return sets
    out = []
    for info in sets:
        items = repo.bench.get_set(info.name).items
        ids = [i.image_id for i in items if i.image_id]
        if ids and len(ids) == len(items) and len(filter_visible(repo, who, ids)) == len(ids):
            out.append(info)
    return out


def _bench_set(repo: Repository, who: Principal, name: str) -> Any:
    for info in _visible_sets(repo, who):
        if info.name == name:
            return info
    raise NotFound(f"no benchmark set {name[:80]!r}")


@router.get("/benchmarks", response_class=HTMLResponse)
def benchmarks_page(request: Request, who: Principal = Depends(principal)) -> HTMLResponse:
    """The benchmark sets, each with a link to its leaderboard."""
    repo = state(request).repo
    return page(
        request,
        "benchmarks.html.j2",
        title="Benchmarks",
        nav="benchmarks",
        sets=_visible_sets(repo, who),
        board=None,
    )


@router.get("/benchmarks/{name}", response_class=HTMLResponse)
def leaderboard_page(
    name: str, request: Request, who: Principal = Depends(principal)
) -> HTMLResponse:
    """A set's leaderboard (:func:`quantscope.benchmark.leaderboard`), ranked by ``?metric=``."""
    from ..benchmark import RANK_METRICS, leaderboard

    repo = state(request).repo
    info = _bench_set(repo, who, name)
    metric = request.query_params.get("metric") or "mean_ap"
    board = leaderboard(repo, info.name, metric=metric, n_resamples=500).to_dict()
    return page(
        request,
        "benchmarks.html.j2",
        title=f"Leaderboard: {info.name}",
        nav="benchmarks",
        sets=None,
        info=info,
        board=board,
        metrics=list(RANK_METRICS),
    )


@router.get("/benchmarks/{name}/report", response_class=HTMLResponse)
def leaderboard_report(
    name: str, request: Request, who: Principal = Depends(principal)
) -> HTMLResponse:
    """The full leaderboard report (:func:`quantscope.benchmark.render_leaderboard_html`:
    rankings, distributions, worst images with overlays)."""
    from ..benchmark import leaderboard, render_leaderboard_html

    repo = state(request).repo
    info = _bench_set(repo, who, name)
    metric = request.query_params.get("metric") or "mean_ap"
    board = leaderboard(repo, info.name, metric=metric, n_resamples=500)
    return HTMLResponse(render_leaderboard_html(repo, board))
