"""``quantscope`` commands for the analysis area: tools, run, runs, features, provenance.
Heavy imports live inside commands."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._text import plural
from ._common import JsonOpt, RepoArg, _console, _emit_json, _esc, _fail, _open

if TYPE_CHECKING:
    from rich.tree import Tree


def _short(h: str | None, n: int = 12) -> str:
    return (h or "")[:n]


def _value_text(v: Any) -> str:
    """A parameter value as written in a pipeline spec (JSON), not as a Python repr."""
    import json

    return v if isinstance(v, str) else json.dumps(v, default=str)


def _params_text(params: dict[str, Any], limit: int = 6) -> str:
    items = [f"{k}={_value_text(v)}" for k, v in sorted(params.items())]
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def tools(as_json: JsonOpt = False) -> None:
    """List the installed analysis tools with their inputs, outputs and parameters."""
    from ..analysis import ToolLoadWarning, tool_diagnostics

    err = _console(stderr=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ToolLoadWarning)
        from ..analysis import installed_tools

        installed_tools(refresh=True)
    for w in caught:
        if issubclass(w.category, ToolLoadWarning):
            err.print(f"[yellow]warning:[/] {_esc(w.message)}", markup=True)
    diags = tool_diagnostics()
    if as_json:
        _emit_json(diags)
        return
    from rich.table import Table

    out = _console()
    for d in diags:
        status = {
            "ok": "",
            "unavailable": " [yellow](unavailable)[/]",
            "broken": " [red](broken)[/]",
        }
        version = f" {_esc(d['version'])}" if d.get("version") else ""
        head = f"[bold]{_esc(d['name'])}[/]{version}{status[d['status']]}"
        out.print(head, markup=True)
        if d["status"] != "ok":
            out.print(f"  {_esc(d['reason'])}")
        if d["status"] == "broken":
            continue
        out.print(f"  {_esc(d['summary'])}")
        ins = ", ".join(
            f"{p['name']}: {p['kind']}{'[]' if p['many'] else ''}{'?' if p['optional'] else ''}"
            for p in d["inputs"]
        )
        outs = ", ".join(f"{p['name']}: {p['kind']}" for p in d["outputs"])
        out.print(f"  inputs: {_esc(ins)}   outputs: {_esc(outs)}")
        if d.get("parameters"):
            t = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
            for col in ("  parameter", "type", "default", "range", "unit", "description"):
                t.add_column(col, overflow="fold")
            for p in d["parameters"]:
                lo, hi = p["minimum"], p["maximum"]
                rng = (
                    ""
                    if lo is None and hi is None
                    else f"{'' if lo is None else lo}..{'' if hi is None else hi}"
                )
                t.add_row(
                    "  " + _esc(p["name"]),
                    _esc(p["type"] or ""),
                    "(required)" if p["required"] else _esc(p["default"]),
                    _esc(rng),
                    _esc(p["unit"] or ""),
                    _esc(p["description"]),
                )
            out.print(t)
        out.print()
    n_ok = sum(d["status"] == "ok" for d in diags)
    out.print(
        f"{plural(len(diags), 'tool')}, {n_ok} available (entry-point group quantscope.tools)"
    )


def run(
    repo: RepoArg,
    pipeline: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    where: Annotated[
        str | None, typer.Option("--where", help="Catalog query selecting the images.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel threads.")] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Address of a Dask distributed scheduler (tcp://HOST:PORT)."
        ),
    ] = None,
    pixel_size_um: Annotated[
        float | None,
        typer.Option(
            "--pixel-size-um",
            metavar="UM",
            help=(
                "Pixel size in µm to use for every selected image instead of its own (the "
                "pipeline's pixel_size_um applies only where an image has none); recorded in "
                "the run's provenance."
            ),
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline over the repository's images (incremental: unchanged steps are reused)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    from ..analysis import load_pipeline, run_pipeline

    spec = load_pipeline(pipeline)
    err = _console(stderr=True)
    with (
        _open(repo) as r,
        Progress(
            TextColumn(f"running {_esc(spec.name)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images"),
            TimeRemainingColumn(),
            TextColumn(
                "{task.fields[name]}",
                table_column=Column(max_width=32, no_wrap=True, overflow="ellipsis"),
            ),
            console=err,
            transient=True,
            disable=as_json or not err.is_terminal,
        ) as bar,
    ):
        task = bar.add_task("run", total=None, name="")

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, name=name)

        report = run_pipeline(
            r,
            spec,
            where=where,
            jobs=jobs,
            scheduler=scheduler,
            progress=progress,
            pixel_size_um=pixel_size_um,
        )
    if as_json:
        _emit_json(report.to_dict())
    else:
        out = _console()
        for c in report.cleaned:
            out.print(f"cleaned leftover of an interrupted run: {_esc(c)}")
        for f in report.failures:
            err.print(
                f"[bold red]{f.status}:[/] {_esc(f.image_name)} ({_esc(f.image_id)}) step "
                f"{_esc(f.step)}: {_esc(f.message)}",
                markup=True,
            )
        out.print(
            f"run {report.run_id} ({_esc(report.pipeline)}, spec {_short(report.spec_hash)}): "
            f"{plural(report.images, 'image')}; steps computed {report.computed}, reused "
            f"{report.reused}, failed {report.failed}, skipped {report.skipped} "
            f"({report.seconds:.1f} s)"
        )
        for name, path in report.tables.items():
            out.print(f"table {_esc(name)}: {_esc(path)}")
    if not report.ok:
        raise typer.Exit(1)


def runs(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List analysis runs, newest first."""
    with _open(repo) as r:
        rows = r.runs.all()
    if as_json:
        records = [x.to_dict() for x in rows]  # the library's records, as they are
        _emit_json(records)
        return
    from rich.table import Table

    t = Table(title=plural(len(rows), "run"), title_justify="left")
    for col in (
        "run",
        "pipeline",
        "spec",
        "status",
        "started",
        "images",
        "computed",
        "reused",
        "failed",
    ):
        t.add_column(col)
    for x in rows:
        t.add_row(
            x.id,
            _esc(x.pipeline_name),
            _short(x.spec_hash),
            x.status,
            x.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(x.n_images),
            str(x.n_computed),
            str(x.n_reused),
            str(x.n_failed),
        )
    _console().print(t)


def features(
    repo: RepoArg,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id, prefix, or 'latest'.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="parquet, csv or anndata (.h5ad); default: what --out's extension says, else "
            "parquet.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="File to write; its extension must fit the format (.parquet, .csv, .h5ad). "
            "Default: features.parquet, features.csv or features.h5ad.",
        ),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option(
            "--table",
            metavar="NAME",
            help="Table output name where the run has several (the per-image summary: Image).",
        ),
    ] = None,
    naming: Annotated[
        str | None,
        typer.Option(
            "--naming",
            metavar="SCHEME",
            help="Column names: cellprofiler (Metadata_Plate, Metadata_Well, Metadata_Site, "
            "Nuclei_AreaShape_Area; Count_Nuclei per image: what pycytominer reads; the default "
            "for parquet and csv) or quantscope (image_id, well, field, AreaShape_Area; the "
            "default for anndata).",
        ),
    ] = None,
    drop_uninformative: Annotated[
        bool,
        typer.Option(
            "--drop-uninformative",
            help="Leave out features that are all NaN, constant, or partly undefined (what "
            "PCA cannot take); AnnData lists them in uns['quantscope_dropped'].",
        ),
    ] = False,
) -> None:
    """Export a run's measurements (one row per object, or per image with --table Image) as
    Parquet, CSV or AnnData."""
    from ..analysis import (
        EXPORT_FORMATS,
        NAMINGS,
        describe_run_table,
        export_table,
        format_for_path,
        run_table,
    )

    if fmt is not None and fmt not in EXPORT_FORMATS:
        _fail(f"--format {fmt!r}: use parquet, csv or anndata")
    if naming is not None and naming not in NAMINGS:
        _fail(f"--naming {naming!r}: use cellprofiler or quantscope")
    implied = format_for_path(out) if out is not None else None
    if fmt is None:
        if out is not None and implied is None:
            _fail(
                f"--out {out}: the extension names no format; name the file .parquet, .csv or "
                ".h5ad, or give --format"
            )
        fmt = implied or "parquet"
    if out is None:
        out = Path("features" + EXPORT_FORMATS[fmt][0])
    elif implied != fmt:
        what = f"is for {implied}" if implied else "names no format"
        _fail(
            f"--out {out}: the extension {what}, but --format is {fmt}; name the file "
            f"*{' or *'.join(EXPORT_FORMATS[fmt])} (or leave out --out for "
            f"features{EXPORT_FORMATS[fmt][0]})"
        )
    with _open(repo) as r:
        df, name = run_table(r, run_id, table)
        info = describe_run_table(r, run_id, name)
        run = r.runs.all()[0] if run_id == "latest" else r.runs.get(run_id)
    uns = {
        "quantscope_run": run.id,
        "pipeline": run.pipeline_name,
        "spec_hash": run.spec_hash,
        "table": name,
    }
    naming = naming or ("quantscope" if fmt == "anndata" else "cellprofiler")
    path = export_table(
        df, out, fmt, uns, naming=naming, info=info, drop_uninformative=drop_uninformative
    )
    n_img = df["image_id"].nunique() if "image_id" in df else 0
    n = len(df) if info.level != "image" else n_img or len(df)
    what = (
        plural(n, "image")
        if info.level == "image"
        else f"{plural(n, 'object')} from {plural(n_img, 'image')}"
    )
    dropped = ""
    if drop_uninformative:
        from ..analysis import uninformative_columns

        k = sum(len(v) for v in uninformative_columns(df).values())
        dropped = f"; {plural(k, 'uninformative feature')} left out"
    _console().print(
        f"wrote {_esc(path)}: {what} ({fmt}, {naming} names, table {_esc(name)} of run "
        f"{run.id[:12]}{dropped})"
    )


def _tree(node: dict[str, Any], tree: Tree) -> None:
    if "missing" in node:
        tree.add(f"[red]missing from the catalog:[/] {_esc(node.get('key') or node.get('id'))}")
        return
    from ..provenance import tool_package

    g = node["generated_by"]
    sw = g["software"]
    package, package_version = tool_package(sw, node["tool"])
    pkg = f", from {_esc(package)} {_esc(package_version or '')}".rstrip() if package else ""
    tree.add(
        f"generated by step [bold]{_esc(node['step'])}[/]: {_esc(node['tool'])} "
        f"{_esc(node['tool_version'])} ({_esc(_params_text(node['parameters']))}){pkg}"
    )
    tree.add(
        f"in run {g['id'][:12]} of pipeline {_esc(g['pipeline'])} (spec sha256 "
        f"{_short(g['spec_hash'])}), {_esc(g['started_at'])} → {_esc(g['ended_at'])}, "
        f"{_esc(g['user'])}@{_esc(g['host'])}, quantscope {_esc(sw.get('quantscope', '?'))}"
    )
    for u in node["used"]:
        _used(u, tree)


def _used(u: dict[str, Any], tree: Tree) -> None:
    kind = u["kind"]
    if kind == "channel":
        img = u["image"]
        br = tree.add(
            f"used {_esc(u['role'])}: channel {u['channel']} ({_esc(u['channel_name'])}) of image "
            f"{_esc(img.get('name'))} \\[{_esc(img['id'])}] (checksum {_short(u['sha256'])})"
        )
        for s in img.get("sources", []):
            br.add(
                f"source file {_esc(s['path'])} (sha256 {s['sha256']}, {plural(s['size'], 'byte')})"
            )
    elif kind == "artifact":
        a = u["artifact"]
        br = tree.add(
            f"used {_esc(u['role'])}: {_esc(a.get('kind', 'artifact'))} {_esc(a.get('path', ''))} "
            f"(sha256 {_short(u['sha256'])})"
        )
        _tree(a, br)
    elif kind == "profile":
        tree.add(
            f"used {_esc(u['role'])}: illumination profile {_esc(u['path'])} "
            f"(sha256 {_short(u['sha256'])})"
        )
    elif kind == "setting":
        value = u.get("setting")
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_value_text(v)}" for k, v in sorted(value.items()))
        tree.add(f"used {_esc(u['role'])}: {_esc(value)}")
    elif kind == "derived":
        br = tree.add(
            f"used {_esc(u['role'])}: {_esc(u['output'])}, computed in memory by step "
            f"{_esc(u['step'])}: {_esc(u['tool'])} {_esc(u['version'])} "
            f"({_esc(_params_text(u['parameters'] or {}))})"
        )
        for x in u["used"]:
            _used(x, br)


def _run_tree(doc: dict[str, Any]) -> Tree:
    """A run's lineage (:func:`quantscope.provenance.run_lineage`) as a tree."""
    from rich.tree import Tree

    run = doc["run"]
    sw = run["software"]
    ended = f" → {_esc(run['ended_at'])}" if run.get("ended_at") else ""
    root = Tree(
        f"[bold]run {run['id']}[/] of pipeline {_esc(run['pipeline'])} (spec sha256 "
        f"{_short(run['spec_hash'])}{', ' + _esc(run['spec_path']) if run.get('spec_path') else ''}"
        f"): {_esc(run['status'])}"
    )
    root.add(
        f"{_esc(run['started_at'])}{ended}, {_esc(run['user'])}@{_esc(run['host'])}, "
        f"{_esc(run['scheduler'])}, quantscope {_esc(sw.get('quantscope', '?'))}, python "
        f"{_esc(sw.get('python', '?'))}"
    )
    steps = root.add(plural(len(doc["steps"]), "step"))
    for st in doc["steps"]:
        versions = ", ".join(st["versions"]) or "not run"
        pkg = (
            f", from {_esc(st['package'])} {_esc(st['package_version'] or '')}".rstrip()
            if st["package"]
            else ""
        )
        counts = ", ".join(f"{k} {v}" for k, v in st["counts"].items()) or "no image"
        steps.add(
            f"[bold]{_esc(st['id'])}[/]: {_esc(st['tool'])} {_esc(versions)}{pkg} "
            f"({_esc(_params_text(st['parameters']))}); images: {_esc(counts)}"
        )
    images = root.add(f"{plural(len(doc['images']), 'image')} read")
    for img in doc["images"]:
        where = " ".join(
            f"{k} {img[k]}" for k in ("plate", "well", "field") if img.get(k) is not None
        )
        place = f" ({_esc(where)})" if where else ""
        br = images.add(f"{_esc(img.get('name'))} \\[{_esc(img['id'])}]{place}")
        for src in img.get("sources", []):
            br.add(
                f"source file {_esc(src['path'])} (sha256 {src['sha256']}, "
                f"{plural(src['size'], 'byte')})"
            )
    outputs = root.add(plural(len(doc["outputs"]), "output"))
    for o in doc["outputs"]:
        earlier = [r for r in o["generated_by"] if r != run["id"]]
        reused = f", {plural(len(earlier), 'earlier run')} computed parts" if earlier else ""
        table = f": {_esc(o['table'])}" if o.get("table") else ""
        outputs.add(
            f"{_esc(o['kind'])} {_esc(o['output'])}{table} "
            f"({plural(o['parts'], 'per-image part')}{reused})"
        )
    return root


def provenance(
    repo: RepoArg,
    artifact: Annotated[
        str,
        typer.Argument(
            metavar="RUN_OR_OUTPUT",
            help="A run (id, prefix, or 'latest'), an artifact key (or prefix), its path in the "
            "repository, or a run's table (tables/RUN/NAME.parquet).",
        ),
    ],
    as_json: JsonOpt = False,
    prov: Annotated[
        bool,
        typer.Option(
            "--prov", help="Print the run (id, prefix or 'latest') as a W3C PROV-JSON document."
        ),
    ] = False,
) -> None:
    """Print the lineage of a run or of an analysis output back to the source files."""
    from rich.tree import Tree

    from ..provenance import lineage, run_document

    with _open(repo) as r:
        if prov:
            _emit_json(run_document(r, artifact))
            return
        doc = lineage(r, artifact)
        repo_root = r.root
    if as_json:
        _emit_json(doc)
        return
    out = _console()
    if "steps" in doc:
        out.print(_run_tree(doc), soft_wrap=False)  # wrapped at the width, never cut
        return
    if "table" in doc:
        run = doc["run"]
        root = Tree(
            f"[bold]table {_esc(doc['table'])}[/] of run {run['id'][:12]} "
            f"({_esc(run['pipeline'])}): {plural(len(doc['parts']), 'per-image part')}"
        )
        for part in doc["parts"]:
            br = root.add(f"{_esc(part['path'])} (sha256 {_short(part['sha256'])})")
            _tree(part, br)
    else:
        from ..analysis import verify_output

        problem = verify_output(repo_root, doc["kind"], doc["path"], doc["sha256"])
        check = (
            "checksum verified: the stored output matches the recorded SHA-256"
            if problem is None
            else f"[bold red]checksum: {_esc(problem.removeprefix(doc['path'] + ': '))}[/]"
        )
        n = f", {plural(doc['n_objects'], 'object')}" if doc.get("n_objects") is not None else ""
        root = Tree(
            f"[bold]{_esc(doc['kind'])} {_esc(doc['path'])}[/] (key {_short(doc['key'])}, "
            f"sha256 {_short(doc['sha256'])}{n})"
        )
        root.add(check)
        _tree(doc, root)
    out.print(root, soft_wrap=False)  # wrapped at the width, never cut


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the ``quantscope`` app."""
    app.command("tools")(tools)
    app.command("run")(run)
    app.command("runs")(runs)
    app.command("features")(features)
    app.command("provenance")(provenance)
