"""``quantscope bench``: ground-truth sets, benchmark runs, quick scoring, leaderboards.

Heavy imports live inside the commands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from .._text import plural
from ._common import JsonOpt, RepoArg, _console, _emit_json, _esc, _fail, _open

bench_app = typer.Typer(
    name="bench",
    help="Benchmarks: register ground-truth sets, score methods against them, compare methods.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MatchOpt = Annotated[
    str,
    typer.Option(
        "--match",
        metavar="PATTERN",
        help="Stem of the counterpart of image/truth '{name}', e.g. '{name}_cp_masks'.",
    ),
]
SetOpt = Annotated[str, typer.Option("--set", metavar="NAME", help="Ground-truth set.")]
MissingOpt = Annotated[
    str,
    typer.Option(
        "--missing",
        metavar="error|empty",
        help="A truth image without prediction: an error (default) or scored as empty.",
    ),
]


@contextmanager
def _errors() -> Iterator[None]:
    """QuantscopeError -> one line on stderr and exit 1."""
    from ..errors import QuantscopeError

    try:
        yield
    except QuantscopeError as e:
        _fail(str(e))


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err = _console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(phase: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label}: {phase}", completed=done, total=total)

        yield update


def _f(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _est(d: dict[str, Any] | None) -> str:
    if not d or d.get("value") is None:
        return "-"
    return f"{_f(d['value'])} [{_f(d['low'])}, {_f(d['high'])}]"


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            _fail(f"--param {it!r}: expected KEY=VALUE", code=2)
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            out[k.strip()] = v
    return out


def _summary_table(title: str, summary: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    t.add_column("mean over images [95% CI]", justify="right")
    t.add_column("pooled", justify="right")
    pooled = summary["pooled"]
    for m, est in summary["mean"].items():
        t.add_row(m, _est(est), _f(pooled.get(m)))
    for m in ("n_truth", "n_pred", "tp", "fp", "fn", "splits", "merges"):
        t.add_row(m, "", _f(pooled.get(m)))
    console.print(t)


# ------------------------------------------------------------------------------ add-set


@bench_app.command("add-set")
def add_set_cmd(
    repo: RepoArg,
    name: Annotated[str, typer.Argument(help="Name of the set.")],
    images: Annotated[
        Path | None, typer.Option("--images", metavar="DIR", help="Folder of the images.")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", metavar="DIR", help="Folder of the label images (or masks)."),
    ] = None,
    match: MatchOpt = "{name}",
    binary: Annotated[
        bool,
        typer.Option("--binary", help="Labels are binary masks: label connected components."),
    ] = False,
    by_value: Annotated[
        bool,
        typer.Option(
            "--by-value",
            help="Masks code objects by value or colour (touching objects differ): label the "
            "components of each value.",
        ),
    ] = False,
    connectivity: Annotated[
        int,
        typer.Option(
            "--connectivity",
            min=1,
            max=3,
            help="For --binary/--by-value: 1 = 4-connected (2-D), 2 = 8-connected, 3 = 26 (3-D).",
        ),
    ] = 1,
    license: Annotated[
        str | None,
        typer.Option("--license", help="License of the set (default: from SOURCE.md/LICENSE)."),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the set holds, in a sentence.")
    ] = None,
    no_ingest: Annotated[
        bool,
        typer.Option("--no-ingest", help="Record image paths and SHA-256 instead of ingesting."),
    ] = False,
    no_qc: Annotated[bool, typer.Option("--no-qc", help="No QC of ingested images.")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a set of this name (deletes its runs).")
    ] = False,
    synth: Annotated[
        bool, typer.Option("--synth", help="Generate a synthetic set with quantscope.synth.")
    ] = False,
    n_images: Annotated[int, typer.Option("--n-images", help="--synth: images.")] = 8,
    size: Annotated[int, typer.Option("--size", help="--synth: image edge, px.")] = 256,
    density: Annotated[float, typer.Option("--density", help="--synth: x default density.")] = 1.0,
    touching: Annotated[float, typer.Option("--touching", help="--synth: clumping 0..1.")] = 0.0,
    snr: Annotated[float, typer.Option("--snr", help="--synth: x default SNR.")] = 1.0,
    blur: Annotated[float, typer.Option("--blur", help="--synth: defocus sigma, px.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="--synth: random seed.")] = 0,
    objects: Annotated[
        str, typer.Option("--objects", metavar="nuclei|cells", help="--synth: what to label.")
    ] = "nuclei",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Ingest threads.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Register a ground-truth set: images with instance labels (or masks), or synthetic."""
    from ..benchmark import add_set, add_synthetic_set

    if binary and by_value:
        _fail("--binary and --by-value exclude each other", code=2)
    if not synth and labels is None:
        _fail("--labels DIR is required (or --synth for a synthetic set)", code=2)
    with _errors(), _open(repo) as r, _progress("add-set", as_json) as progress:
        if synth:
            s = add_synthetic_set(
                r,
                name,
                n_images=n_images,
                size=size,
                density=density,
                touching=touching,
                snr=snr,
                blur=blur,
                seed=seed,
                objects=objects,
                replace=replace,
                jobs=jobs,
                qc=not no_qc,
                progress=progress,
            )
        else:
            assert labels is not None
            s = add_set(
                r,
                name,
                labels,
                images,
                match=match,
                masks="binary" if binary else "by-value" if by_value else "labels",
                connectivity=connectivity,
                license=license,
                description=description,
                ingest=not no_ingest,
                qc=not no_qc,
                jobs=jobs,
                replace=replace,
                progress=progress,
            )
    if as_json:
        _emit_json(s.to_dict())
        return
    prov = s.provenance
    how = prov.get("masks", "labels")
    if prov.get("connectivity"):
        how += f", connectivity {prov['connectivity']}"
    _console().print(
        f"set {_esc(s.name)}: {plural(s.n_items, 'image')}, "
        f"{plural(s.n_objects, 'object')} ({_esc(how)}); "
        f"license: {_esc(s.license)}"
    )


@bench_app.command("ls")
def ls_cmd(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List the ground-truth sets and how many runs each has."""
    with _errors(), _open(repo) as r:
        sets = r.bench.sets()
        runs = r.bench.runs()
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.set] = counts.get(run.set, 0) + 1
    if as_json:
        _emit_json(
            [
                {
                    **{k: v for k, v in s.to_dict().items() if k != "provenance"},
                    "n_runs": counts.get(s.name, 0),
                }
                for s in sets
            ]
        )
        return
    from rich.table import Table

    t = Table()
    for c in ("set", "images", "objects", "runs", "license"):
        t.add_column(c)
    for s in sets:
        t.add_row(
            _esc(s.name),
            str(s.n_items),
            str(s.n_objects),
            str(counts.get(s.name, 0)),
            _esc(s.license[:60]),
        )
    _console().print(t)


# ------------------------------------------------------------------------------ run


@bench_app.command("run")
def run_cmd(
    repo: RepoArg,
    set_name: SetOpt,
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", metavar="DIR", help="Folder of predicted label images."),
    ] = None,
    pipeline: Annotated[
        Path | None,
        typer.Option("--pipeline", metavar="P.yaml", help="Run this pipeline on the set's images."),
    ] = None,
    match: MatchOpt = "{name}",
    method: Annotated[str | None, typer.Option("--method", help="Name on the leaderboard.")] = None,
    tool: Annotated[
        str | None, typer.Option("--tool", help="Tool that made the predictions.")
    ] = None,
    tool_version: Annotated[
        str | None, typer.Option("--tool-version", help="Version of that tool.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", metavar="KEY=VALUE", help="Tool parameter (repeatable)."),
    ] = None,
    missing: MissingOpt = "error",
    output: Annotated[
        str | None,
        typer.Option("--output", metavar="NAME", help="--pipeline: label output to score."),
    ] = None,
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--override",
            metavar="STEP.PARAM=VALUE",
            help="--pipeline: change a step parameter from the spec (repeatable).",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="--pipeline: threads.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Score a method on every image of a set; store scores with provenance."""
    if (predictions is None) == (pipeline is None):
        _fail("give exactly one of --predictions DIR and --pipeline P.yaml", code=2)
    from ..benchmark import run_and_score, run_benchmark

    params = _parse_params(param)
    with _errors(), _open(repo) as r, _progress("bench run", as_json) as progress:
        if pipeline is not None:
            run = run_and_score(
                r,
                set_name,
                pipeline,
                output=output,
                overrides=_parse_params(override),
                jobs=jobs,
                method=method,
                tool=tool,
                tool_version=tool_version,
                parameters=params,
                missing=missing,
                progress=progress,
            )
        else:
            assert predictions is not None
            run = run_benchmark(
                r,
                set_name,
                predictions,
                method=method,
                tool=tool,
                tool_version=tool_version,
                parameters=params,
                match=match,
                missing=missing,
                progress=progress,
            )
    if as_json:
        _emit_json(run.to_dict())
        return
    _summary_table(
        f"{run.method} on {run.set} ({plural(run.n_images, 'image')}, run {run.id[:8]})",
        run.summary,
    )
    if run.summary.get("n_missing_predictions"):
        _console().print(
            f"{plural(run.summary['n_missing_predictions'], 'image')} had no prediction "
            "(scored as empty)"
        )
    if run.extra:
        _console().print(
            f"not scored (no ground truth): {_esc(', '.join(run.extra[:5]))}"
            + (f" and {len(run.extra) - 5} more" if len(run.extra) > 5 else "")
        )


# ------------------------------------------------------------------------------ score


@bench_app.command("score")
def score_cmd(
    truth: Annotated[Path, typer.Option("--truth", metavar="DIR", help="Ground-truth labels.")],
    pred: Annotated[Path, typer.Option("--pred", metavar="DIR", help="Predicted labels.")],
    match: MatchOpt = "{name}",
    missing: MissingOpt = "error",
    per_image: Annotated[
        bool, typer.Option("--per-image", help="Also print the scores of every image.")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Threads.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Score predicted label images against ground truth, without a repository."""
    from ..benchmark import score_folders

    with _errors(), _progress("score", as_json) as progress:
        res = score_folders(truth, pred, match=match, missing=missing, jobs=jobs, progress=progress)
    if as_json:
        _emit_json(res.to_dict())
        return
    _summary_table(f"{pred} vs {truth} ({plural(len(res.items), 'image')})", res.summary())
    if per_image:
        from rich.table import Table

        cols = ("mean_ap", "ap50", "f1", "pq", "seg", "dice", "n_truth", "n_pred", "splits")
        t = Table()
        t.add_column("image")
        for c in cols:
            t.add_column(c, justify="right")
        for item, vals in res.per_image.items():
            t.add_row(_esc(item), *(_f(vals[c]) for c in cols))
        _console().print(t)
    if res.extra:
        _console().print(f"not scored (no ground truth): {_esc(', '.join(res.extra[:5]))}")


# ------------------------------------------------------------------------------ leaderboard


@bench_app.command("leaderboard")
def leaderboard_cmd(
    repo: RepoArg,
    set_name: SetOpt,
    metric: Annotated[
        str, typer.Option("--metric", help="Rank by: mean_ap, ap50, ap75, f1, pq, seg, dice...")
    ] = "mean_ap",
    all_runs: Annotated[
        bool, typer.Option("--all-runs", help="Every run (default: latest run per method).")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Write a self-contained page.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Methods scored on a set, ranked with bootstrap 95% confidence intervals."""
    from ..benchmark import leaderboard, write_leaderboard_html

    with _errors(), _open(repo) as r:
        board = leaderboard(r, set_name, metric=metric, all_runs=all_runs)
        if html is not None:
            write_leaderboard_html(r, board, html)
    if as_json:
        _emit_json(board.to_dict())
        return
    from rich.table import Table

    t = Table(
        title=f"{set_name}: {plural(board.set.n_items, 'image')}, ranked by {metric}",
        title_justify="left",
    )
    for c in ("rank", "method", f"{metric} [95% CI]", "Δ vs best [95% CI]", "F1@0.5", "PQ"):
        t.add_column(c, justify="left" if c == "method" else "right")
    t.add_column("SEG", justify="right")
    t.add_column("splits/merges", justify="right")
    t.add_column("run")
    for e in board.entries:
        p = e.pooled.summary()
        t.add_row(
            e.rank_label,
            _esc(e.method),
            _est(e.estimate.to_dict()),
            _est(e.diff_vs_best.to_dict()) if e.position else "",
            _f(p["f1"]),
            _f(p["pq"]),
            _f(p["seg"]),
            f"{p['splits']}/{p['merges']}",
            e.run.id[:8],
        )
    console = _console()
    if not board.entries:
        console.print(f"no runs on set {_esc(set_name)} yet; score one with 'bench run'")
    else:
        console.print(t)
    if html is not None:
        console.print(f"wrote {_esc(html)}")


def register(app: typer.Typer) -> None:
    """Attach the ``bench`` sub-app to the ``quantscope`` app."""
    app.add_typer(bench_app, name="bench")
