"""``quantscope`` commands. Heavy libraries are imported inside the command that needs them so
``quantscope --help`` and ``quantscope ls`` start fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..model import Image

from .._text import plural
from ._common import JsonOpt, RepoArg, _console, _emit_json, _esc, _fail, _fmt_bytes, _open

app = typer.Typer(
    name="quantscope",
    help=(
        "Quantitative cell imaging: ingest microscope files into OME-Zarr with a queryable catalog."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"quantscope {version('quantscope')}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Quantitative cell imaging: ingest microscope files into OME-Zarr with a queryable
    catalog."""


def _pixel_size(img: Image) -> str:
    x, y, z = img.physical_size_x_um, img.physical_size_y_um, img.physical_size_z_um
    if x is None and y is None:
        return "-"
    s = f"{x:.4g}" if x == y or y is None else f"{x:.4g}x{y:.4g}"
    return s + (f"x{z:.4g}" if z else "") + " µm"


def _row(img: Image) -> dict[str, Any]:
    from ..catalog import image_row

    return image_row(img)


@app.command()
def init(
    repo: RepoArg,
    catalog: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the catalog (default: SQLite file in the repository)."
        ),
    ] = None,
) -> None:
    """Create a repository (quantscope.toml, catalog, store folders)."""
    from ..catalog import Repository

    with Repository.init(repo, catalog) as r:
        _console().print(
            f"initialized repository {_esc(r.root)} (catalog {_esc(r.summary()['catalog'])})"
        )


@app.command()
def ingest(
    repo: RepoArg,
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursive).")],
    pattern: Annotated[
        str | None,
        typer.Option(
            help='File-name pattern, e.g. "{plate}_{well}_s{field}_w{channel}" '
            "(default: ImageXpress)."
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel threads.")] = 2,
    qc: Annotated[
        bool,
        typer.Option(
            "--qc/--no-qc", help="Measure image quality and flag the images added (default on)."
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files and folders: OME-Zarr + catalog, idempotent by SHA-256, quality-checked."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.table import Column

    from ..ingestion import ingest as run_ingest

    err = _console(stderr=True)
    with _open(repo) as r:
        columns = (
            TextColumn("{task.description}"),
            TextColumn("{task.fields[count]:>5} {task.fields[unit]}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn(
                "{task.fields[name]}",
                table_column=Column(max_width=32, no_wrap=True, overflow="ellipsis"),
            ),
        )
        with Progress(
            *columns, console=err, transient=True, disable=as_json or not err.is_terminal
        ) as bar:
            tasks: dict[str, Any] = {}
            counts: dict[str, int] = {}

            def progress(phase: str, done: int, total: int, name: str) -> None:
                # one call per file read (scan) or per image written (write)
                counts[phase] = counts.get(phase, 0) + 1
                if phase not in tasks:
                    label = {"scan": "reading + hashing", "qc": "quality control"}.get(
                        phase, "writing OME-Zarr"
                    )
                    unit = "files" if phase == "scan" else "images"
                    tasks[phase] = bar.add_task(label, total=total, name="", count=0, unit=unit)
                bar.update(
                    tasks[phase], completed=done, total=total, name=name, count=counts[phase]
                )

            report = run_ingest(r, paths, pattern=pattern, jobs=jobs, progress=progress, qc=qc)
    if as_json:
        _emit_json(report.to_dict())
    else:
        out = _console()
        for c in report.cleaned:
            out.print(f"cleaned leftover of an interrupted run: {_esc(c)}")
        for n in report.notes:
            out.print(f"note: {_esc(n.path)}: {_esc(n.message)}")
        for s in report.skipped:
            out.print(f"skipped: {_esc(s.path)}: {_esc(s.message)}")
        for f in report.failed:
            err.print(f"[bold red]error:[/] {_esc(f.path)}: {_esc(f.message)}", markup=True)
        if report.qc:
            qcn = {k: sum(v == k for v in report.qc.values()) for k in ("pass", "warn", "fail")}
            out.print(
                f"quality control: {qcn['pass']} pass, {qcn['warn']} warn, {qcn['fail']} fail "
                f"({report.qc_seconds:.1f} s; details: quantscope qc {_esc(repo)})"
            )
        mb = report.bytes_read / 1e6
        rate = mb / report.seconds if report.seconds else 0.0
        n_added = len(report.added)
        out.print(
            f"ingested {plural(n_added, 'image')} from {plural(report.files, 'file')}, "
            f"skipped {len(report.skipped)}, failed "
            f"{report.failed_files} ({mb:.1f} MB in {report.seconds:.1f} s, {rate:.0f} MB/s; "
            "1 MB = 10⁶ bytes)"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command("ls")
def ls_(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List images: id, name, source, plate/well/field, dims, dtype, channels, pixel size."""
    with _open(repo) as r:
        images = r.images.all()
    rows = [_row(i) for i in images]
    if as_json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=plural(len(rows), "image"), title_justify="left")
    for col in (
        "id",
        "name",
        "source",
        "plate",
        "well",
        "field",
        "dims (TCZYX)",
        "dtype",
        "channels",
        "pixel size",
    ):
        t.add_column(col, overflow="fold")
    for row, img in zip(rows, images, strict=True):
        t.add_row(
            row["id"],
            _esc(row["name"]),
            _esc(row["source"]),
            _esc(row["plate"] or ""),
            row["well"] or "",
            str(row["field"] or ""),
            row["dims"],
            row["dtype"],
            _esc(", ".join(row["channels"])),
            _pixel_size(img),
        )
    _console().print(t)


@app.command()
def show(
    repo: RepoArg,
    image_id: Annotated[str, typer.Argument(metavar="ID", help="Image id (or a unique prefix).")],
    as_json: JsonOpt = False,
) -> None:
    """Print everything known about one image."""
    from ..catalog import image_record

    with _open(repo) as r:
        img = r.images.get(image_id)
        doc = image_record(r, img)
    if as_json:
        _emit_json(doc)
        return
    from rich.tree import Tree

    tree = Tree(f"[bold]{_esc(img.name)}[/] ({img.id})")
    levels = plural(img.levels, "level")
    files = plural(doc["stored_files"], "file")
    tree.add(f"stored at {_esc(doc['path'])} ({levels}, {_fmt_bytes(img.bytes_stored)}, {files})")
    tree.add(
        f"dims TCZYX {' x '.join(map(str, img.shape))}, {img.dtype}, pixel size {_pixel_size(img)}"
    )
    if img.position:
        p = img.position
        tree.add(f"plate {_esc(p.plate)}, well {p.well}, field {p.field}")
    ch = tree.add("channels")
    for c in img.channels:
        extra = _human(c.model_dump(mode="json", exclude={"index", "name"}, exclude_none=True))
        ch.add(_esc(f"{c.index}: {c.name}" + (f" ({extra})" if extra else "")))
    acq = img.acquisition.model_dump(mode="json", exclude_none=True)
    if acq:
        a = tree.add("acquisition")
        for k, v in acq.items():
            a.add(_esc(f"{k.replace('_', ' ')}: {_human(v)}"))
    s = tree.add("sources")
    for src in img.sources:
        s.add(
            _esc(
                f"{src.path} (scene {src.scene}, {_fmt_bytes(src.size)}, {src.reader}, "
                f"sha256 {src.sha256[:16]}…)"
            )
        )
    _console().print(tree, soft_wrap=False)  # wrapped at the width, never cut


_UNITS = {"nm": "nm", "um": "µm", "s": "s", "c": "°C", "mbar": "mbar", "percent": "%"}


def _human(value: Any) -> str:
    """A metadata value as a person reads it: ``key value, …`` instead of a Python repr."""
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if v in (None, {}, []):
                continue
            name, _, unit = k.rpartition("_")
            if name and unit in _UNITS:  # excitation_wavelength_nm: "excitation wavelength 405 nm"
                parts.append(f"{name.replace('_', ' ')} {_human(v)} {_UNITS[unit]}")
            else:
                parts.append(f"{k.replace('_', ' ')} {_human(v)}")
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        return ", ".join(_human(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@app.command()
def verify(
    repo: RepoArg,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Files hashed in parallel.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Re-hash every stored file and report anything changed or missing."""
    from ..ingestion import verify as run_verify

    with _open(repo) as r:
        problems = run_verify(r, jobs=jobs)
    n = problems.checked
    if as_json:
        _emit_json(problems.to_dict())
    else:
        for p in problems:
            _console(stderr=True).print(
                f"[bold red]changed:[/] {_esc(p.path)}: {_esc(p.message)}", markup=True
            )
        _console().print(
            f"checked {plural(n, 'stored file')}: "
            + ("all intact" if not problems else plural(len(problems), "problem"))
        )
    if problems:
        raise typer.Exit(1)


@app.command()
def qc(
    repo: RepoArg,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", metavar="ID", help="Image id or unique prefix (repeatable)."),
    ] = None,
    plate: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="Images of this plate (repeatable).")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            "-w",
            metavar="QUERY",
            help='Images matching a query, e.g. \'plate == "P1" and channel.name == "DAPI"\' '
            "(see `quantscope fields`); with --image / --plate, images that match both.",
        ),
    ] = None,
    profiles: Annotated[
        bool,
        typer.Option(
            "--profiles",
            help="Also estimate and store the illumination profile of every "
            "channel of every plate (of the selected plates with --plate).",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(metavar="FILE.html", help="Write a self-contained HTML report."),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="warn|fail",
            help="Exit 1 when an image has this status or worse (default: always exit 0).",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel threads.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Measure image quality (recomputed for the selection; all images by default), flag the
    images against limits and against their peers (same plate and channel), print the verdicts."""
    if fail_on is not None and fail_on not in ("warn", "fail"):
        _fail(f"--fail-on: expected 'warn' or 'fail', got {fail_on!r}", code=2)
    from ..catalog import Selection, select_images
    from ..qc import collect_report_data, write_html_report
    from ._qc import measure, print_outcome

    with _open(repo) as r:
        if not r.summary()["images"]:
            _fail(
                f"{r.root}: the repository holds no images; add some with "
                f"`quantscope ingest {repo} FILES...`"
            )
        chosen = Selection.of(images=image, plates=plate, where=where)
        ids = None if chosen.everything else select_images(r, chosen)
        if ids is not None and not ids:
            _fail(
                f"no image matches --where {where!r}"
                + (" among the images chosen with --image / --plate" if image or plate else "")
            )
        outcome = measure(r, ids, plate, profiles=profiles, jobs=jobs, quiet=as_json)
        if report is not None:
            data = collect_report_data(r)
            outcome.report, outcome.report_problems = report, list(data.problems)
            write_html_report(r, report, data)
    if as_json:
        _emit_json(outcome.to_dict())
    else:
        print_outcome(outcome)
    if fail_on is not None:
        worst = {"warn": ("warn", "fail"), "fail": ("fail",)}[fail_on]
        if any(i.status in worst for i in outcome.images.values()):
            raise typer.Exit(1)


@app.command()
def summary(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """Totals: images, channels, plates, wells, bytes, and where the data are."""
    with _open(repo) as r:
        s = r.summary()
    if as_json:
        _emit_json(s)
        return
    from rich.table import Table

    t = Table(title=f"repository {_esc(s['root'])}", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    for k in ("images", "channels", "plates", "wells", "source_files"):
        t.add_row(k.replace("_", " "), str(s[k]))
    t.add_row("source bytes", _fmt_bytes(s["source_bytes"]))
    t.add_row("pixel bytes (uncompressed)", _fmt_bytes(s["pixel_bytes"]))
    t.add_row("stored bytes (OME-Zarr)", _fmt_bytes(s["stored_bytes"]))
    t.add_row("catalog", _esc(s["catalog"]))
    t.add_row("images", _esc(Path(s["root"]) / "images"))
    t.add_row("plates", _esc(Path(s["root"]) / "plates"))
    _console().print(t)


@app.command()
def formats(as_json: JsonOpt = False) -> None:
    """List the file formats this installation reads and the reader of each."""
    from ..io import FORMATS

    rows: list[dict[str, Any]] = [
        {
            "format": f.name,
            "extensions": list(f.extensions),
            "reader": f.module,
            "installed": f.installed,
            "description": f.description,
        }
        for f in FORMATS
    ]
    if as_json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table()
    for col in ("format", "extensions", "reader", "installed"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["format"], " ".join(r["extensions"]), r["reader"], "yes" if r["installed"] else "no"
        )
    _console().print(t)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    plate: Annotated[str, typer.Option(help="Plate shape ROWSxCOLS.")] = "2x3",
    fields: Annotated[int, typer.Option(help="Fields per well.")] = 2,
    channels: Annotated[
        str, typer.Option(help="Comma-separated channel names (first = nuclei).")
    ] = "DAPI,GFP",
    size: Annotated[int, typer.Option(help="Image edge in px.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    density: Annotated[float, typer.Option(help="Cell density multiplier.")] = 1.0,
    blur: Annotated[float, typer.Option(help="Extra defocus blur sigma (px).")] = 0.0,
    vignetting: Annotated[float, typer.Option(help="Intensity lost at the corners (0-1).")] = 0.0,
    saturation: Annotated[
        float, typer.Option(help="Fraction of nuclei driven into saturation.")
    ] = 0.0,
    snr: Annotated[float, typer.Option(help="Signal-to-noise multiplier.")] = 1.0,
    touching: Annotated[float, typer.Option(help="How tightly nuclei pack (0-1).")] = 0.0,
    empty_fraction: Annotated[float, typer.Option(help="Fraction of empty fields.")] = 0.0,
    layout: Annotated[str, typer.Option(help="per-channel or multichannel files.")] = "per-channel",
    plate_name: Annotated[str, typer.Option(help="Plate name used in file names.")] = "synth",
    as_json: JsonOpt = False,
) -> None:
    """Write a synthetic plate (OME-TIFF) with exact ground-truth labels."""
    from ..synth import SynthOptions, parse_plate_shape, synth_plate

    parse_plate_shape(plate)
    opts = SynthOptions(
        plate=plate,
        fields=fields,
        channels=tuple(c.strip() for c in channels.split(",") if c.strip()),
        size=size,
        seed=seed,
        density=density,
        blur=blur,
        vignetting=vignetting,
        saturation=saturation,
        snr=snr,
        touching=touching,
        empty_fraction=empty_fraction,
        layout=layout,
        plate_name=plate_name,
    )
    res = synth_plate(out, opts)
    n_obj = sum(f.n_objects for f in res.fields)
    if as_json:
        _emit_json(res.to_dict())
    else:
        _console().print(
            f"wrote {plural(len(res.fields), 'field')} with {plural(n_obj, 'cell')} "
            f"to {_esc(res.root)} "
            f"(images/, labels/, truth.csv)"
        )


def main() -> None:
    """Entry point: run the app, turning quantscope errors into one line and exit code 1."""
    import logging

    from ..errors import QuantscopeError

    # readers log their own complaints about damaged files; quantscope reports each bad file in
    # one line of its own, so the readers' log lines would only repeat it
    for name in ("tifffile", "bioio", "bioio_base", "xmlschema"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        command()()
    except QuantscopeError as e:
        _console(stderr=True).print(f"[bold red]error:[/] {_esc(e)}", markup=True)
        sys.exit(1)
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)


def _register_command_groups() -> None:
    """Commands that live in their own modules (one module per area) attach themselves here."""
    from . import _access, _analysis, _bench, _metadata, _query, _server

    for module in (_metadata, _query, _analysis, _bench, _server, _access):
        module.register(app)


_register_command_groups()


def command() -> Any:
    """The click command behind ``quantscope``, with help that names values instead of
    Python types: flags show no metavar, other options their name (``--jobs JOBS``), unless
    they set one of their own."""
    root = typer.main.get_command(app)

    def tidy(cmd: Any) -> None:  # typer's own click: duck-typed
        for param in cmd.params:
            if param.param_type_name == "option" and param.metavar is None:
                param.metavar = "" if param.is_flag else (param.name or "value").upper()
            elif param.param_type_name == "argument":  # its name says what it is
                param.display_type_rich = lambda ctx: None
        make_help = cmd.get_help_option

        def help_option(ctx: Any, make_help: Any = make_help) -> Any:
            option = make_help(ctx)
            if option is not None:
                option.metavar = ""
            return option

        cmd.get_help_option = help_option
        for sub in getattr(cmd, "commands", {}).values():
            tidy(sub)

    tidy(root)
    return root
