"""``quantscope`` commands for the metadata area: annotate, tag, metadata check/export/keys/schema.

Heavy imports live inside commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._text import plural
from ._common import JsonOpt, RepoArg, _console, _emit_json, _esc, _fail, _open

if TYPE_CHECKING:
    from ..catalog import Repository
    from ..model import Annotation, Image

metadata_app = typer.Typer(
    name="metadata",
    help="Metadata standards: completeness (NBO tiers, REMBI), exports, annotation keys.",
    no_args_is_help=True,
)


dataset_app = typer.Typer(
    name="dataset",
    help="Datasets: named sets of images (across plates); their annotations apply to members.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the ``quantscope`` app."""
    app.command("annotate")(annotate)
    app.command("tag")(tag)
    app.command("set")(set_)
    app.add_typer(metadata_app, name="metadata")
    app.add_typer(dataset_app, name="dataset")


# ---------------------------------------------------------------------------- dataset
_IdsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Image ids (or unique prefixes).", metavar="[IDS]...", show_default=False),
]
_WhereOpt = Annotated[
    str | None,
    typer.Option("--where", "-w", help="A query; its images too, e.g. 'plate == \"P1\"'."),
]


@dataset_app.command("add")
def dataset_add(
    repo: RepoArg,
    name: Annotated[str, typer.Argument(help="Dataset name (created by its first image).")],
    ids: _IdsArg = None,
    where: _WhereOpt = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="User who owns the dataset (may share it and make it public); without an "
            "owner a dataset is for admins only.",
        ),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Everyone may see it, signed in or not.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Put images into a dataset (by id and/or a --where query), and set its owner and
    visibility. An unknown id or user changes nothing. Annotate the dataset with
    `quantscope tag REPO dataset:NAME ...`."""
    with _open(repo) as r, r.write_lock():
        if owner is not None:
            r.access.principal(owner)  # an unknown user: NotFound before anything changes
        added = 0
        if ids or where is not None or (owner is None and not public):
            added = r.annotations.add_to_dataset(name, ids or [], where=where)
        else:
            r.access.dataset_access(name)  # only an existing dataset gets an owner alone
        if owner is not None:
            r.access.set_owner(name, owner)
        if public:
            r.access.set_visibility(name, "public")
        access = r.access.dataset_access(name)
        total = next((d.images for d in r.annotations.datasets() if d.name == name.strip()), 0)
    if as_json:
        report = {"dataset": name.strip(), "added": added, "images": total}
        if owner is not None or public:  # (the access record, when the command set it)
            report.update(access.to_dict())
        _emit_json(report)
        return
    _console().print(
        f"{_esc(name.strip())}: {plural(added, 'image')} added, {total} in the dataset "
        f"({access.visibility}, owner {_esc(access.owner or 'nobody: admins only')})"
    )


@dataset_app.command("share")
def dataset_share(
    repo: RepoArg,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    user: Annotated[str, typer.Argument(help="User who may see the dataset from now on.")],
    remove: Annotated[
        bool, typer.Option("--remove", help="Stop sharing it with USER instead.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Share a private dataset with a user (a member sees its images; its owner and the admins
    change it)."""
    with _open(repo) as r, r.write_lock():
        access = r.access.unshare(name, user) if remove else r.access.share(name, user)
    if as_json:
        _emit_json(access.to_dict())
        return
    members = ", ".join(sorted(access.members)) or "nobody"
    _console().print(f"{_esc(access.name)}: shared with {_esc(members)}")


@dataset_app.command("rm")
def dataset_rm(
    repo: RepoArg,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    ids: _IdsArg = None,
    where: _WhereOpt = None,
    everything: Annotated[
        bool,
        typer.Option("--all", help="Remove every image and the dataset's own annotations."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Take images out of a dataset (the images themselves stay in the repository)."""
    with _open(repo) as r, r.write_lock():
        removed = r.annotations.remove_from_dataset(
            name, ids or [], where=where, everything=everything
        )
        total = next((d.images for d in r.annotations.datasets() if d.name == name.strip()), 0)
    if as_json:
        _emit_json({"dataset": name.strip(), "removed": removed, "images": total})
        return
    _console().print(f"{_esc(name.strip())}: {plural(removed, 'image')} removed, {total} left")


@dataset_app.command("ls")
def dataset_ls(repo: RepoArg, as_json: JsonOpt = False) -> None:
    """List the datasets: name, number of images, owner, visibility and their own
    annotations."""
    with _open(repo) as r:
        infos = r.annotations.datasets()
        access = {d.name: d for d in r.access.datasets()}
    if as_json:
        _emit_json(
            [
                {
                    "name": d.name,
                    "images": d.images,
                    "annotations": [a.model_dump() for a in d.annotations],
                    **{k: v for k, v in access[d.name].to_dict().items() if k != "name"},
                }
                for d in infos
            ]
        )
        return
    from rich.table import Table

    t = Table(title=plural(len(infos), "dataset"), title_justify="left")
    t.add_column("name", overflow="fold")
    t.add_column("images", justify="right")
    t.add_column("owner", overflow="fold")
    t.add_column("visibility")
    t.add_column("annotations", overflow="fold")
    for d in infos:
        anns = "; ".join(
            (a.value or "") if a.key == "tag" else f"{a.key}={a.value}" for a in d.annotations
        )
        acc = access[d.name]
        owner = acc.owner or "–"
        t.add_row(_esc(d.name), str(d.images), _esc(owner), acc.visibility, _esc(anns))
    _console().print(t)


# --------------------------------------------------------------------------- annotate
def annotate(
    repo: RepoArg,
    sidecar: Annotated[
        Path,
        typer.Option("--from", help="Sidecar file: quantscope.yaml / .yml / .csv."),
    ],
    all_images: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Apply to every image of the repository, not only those whose source files "
            "lie in the sidecar's folder.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply a sidecar (REMBI study, biosample, specimen...) to the images it describes.

    Every key and value is checked first; an invalid sidecar changes nothing.
    """
    from ..metadata import load_sidecar

    sc = load_sidecar(sidecar)
    with _open(repo) as r, r.write_lock():
        rep = r.annotations.apply_sidecar(sc, all_images=all_images)
    if as_json:
        _emit_json(rep.to_dict())
        return
    con = _console()
    con.print(
        f"{_esc(sidecar)}: {plural(rep.annotations, 'annotation')} written on "
        f"{plural(rep.images, 'image')}"
    )
    for note in rep.notes:
        con.print(f"  note: {_esc(note)}")
    if rep.images == 0:
        hint = "" if all_images else " (no image has its source files in that folder; --all?)"
        _console(stderr=True).print(f"warning: the sidecar matched no image{_esc(hint)}")


# -------------------------------------------------------------------------------- tag
def tag(
    repo: RepoArg,
    items: Annotated[
        list[str],
        typer.Argument(
            help="Targets (image id or prefix, plate:NAME, dataset:NAME) and KEY=VALUE pairs "
            "to set, e.g. biosample.organism='Homo sapiens'.",
            metavar="TARGET... [KEY=VALUE...]",
        ),
    ],
    add: Annotated[
        list[str] | None, typer.Option("--add", "-a", help="Tag to add (repeatable).")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", "-r", help="Tag to remove (repeatable).")
    ] = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="Annotation key to remove (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tag images, plates and datasets, and set key-value annotations (checked against the
    known keys: `quantscope metadata keys`). Without changes, lists the targets' annotations."""
    targets = [i for i in items if "=" not in i]
    pairs = [i.split("=", 1) for i in items if "=" in i]
    if not targets:
        _fail("no target given: an image id (or prefix), plate:NAME or dataset:NAME", code=2)
    for key, _ in pairs:
        if not key.strip():
            _fail(f"'{key}=...': empty key", code=2)
    from ..catalog import edit_annotations

    with _open(repo) as r:
        result = edit_annotations(
            r,
            targets,
            values=[(k, v) for k, v in pairs],
            add=add or [],
            remove=remove or [],
            unset=unset or [],
        )
    if as_json:
        _emit_json(result.to_dict())
        return
    con = _console()
    changed = result.counts
    if any(changed.values()):
        con.print(
            ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in changed.items() if v)
            or "nothing changed"
        )
    _print_annotations(result.annotations)


def _print_annotations(anns: list[Annotation]) -> None:
    from rich.table import Table

    t = Table(title=plural(len(anns), "annotation"), title_justify="left")
    for col in ("target", "key", "value", "term", "number", "source"):
        t.add_column(col, overflow="fold")
    for a in anns:
        target = a.target_id if a.target_kind == "image" else f"{a.target_kind}:{a.target_id}"
        t.add_row(
            _esc(target),
            _esc(a.key),
            _esc(a.value or ""),
            _esc(a.curie or ""),
            f"{a.num_value:g} {a.unit or ''}".strip() if a.num_value is not None else "",
            _esc(a.source),
        )
    _console().print(t)


# -------------------------------------------------------------------------------- set
def set_(
    repo: RepoArg,
    selection: Annotated[
        str,
        typer.Argument(
            help="Images: an id or unique prefix, plate:NAME, dataset:NAME, or a query "
            "(quantscope find's language), e.g. 'instrument.model == \"IX71\"'.",
            metavar="SELECTION",
        ),
    ],
    assignments: Annotated[
        list[str],
        typer.Argument(
            help="KEY=VALUE: pixel_size_um (x and y), pixel_size_x_um, pixel_size_y_um, "
            "pixel_size_z_um (µm, or with a unit: 650nm); channel[N].name, "
            "channel[NAME].emission_nm, channel[NAME].excitation_nm (N from 0 as `show` lists "
            "them; a name of digits in quotes: channel[\"525\"]; nm). 'none' marks a value "
            "unknown.",
            metavar="KEY=VALUE...",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Set or correct pixel sizes, channel names and wavelengths after ingest: the catalog,
    the stored OME-Zarr metadata and its checksums change together, and each change is kept
    as a metadata_edit annotation (old and new value, who, when). Bad input changes nothing."""
    from ..catalog import set_metadata

    with _open(repo) as r:
        rep = set_metadata(r, selection, assignments)
    if as_json:
        _emit_json(rep.to_dict())
        return
    con = _console()
    changed = len({c.image_id for c in rep.changes})
    con.print(
        f"{plural(len(rep.changes), 'value')} changed on {changed} of "
        f"{plural(len(rep.images), 'selected image')}"
    )
    for c in rep.changes[:50]:
        where = f"channel {c.channel} " if c.channel is not None else ""
        con.print(_esc(f"  {c.image_id}: {where}{c.field}: {_show(c.old)} -> {_show(c.new)}"))
    if len(rep.changes) > 50:
        con.print(f"  ... and {len(rep.changes) - 50} more (--json lists them all)")


def _show(v: object) -> str:
    if v is None:
        return "unknown"
    return f"{v:g}" if isinstance(v, float) else str(v)


# ------------------------------------------------------------------------ metadata check
def _annotations_for(r: Repository, images: list[Image]) -> dict[str, list[Annotation]]:
    """Each image's annotations plus those of its plate and of its datasets (which apply to
    its images too)."""
    return r.annotations.effective(images)


@metadata_app.command("check")
def check(
    repo: RepoArg,
    tier: Annotated[
        int, typer.Option("--tier", min=1, max=2, help="NBO tier to report (1 or 2).")
    ] = 1,
    require_tier: Annotated[
        int | None,
        typer.Option(
            "--require-tier",
            min=1,
            max=2,
            help="Exit 1 when any image misses a requirement of this NBO tier.",
        ),
    ] = None,
    images: Annotated[
        list[str] | None, typer.Option("--image", "-i", help="Only this image (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Metadata completeness per image against the 4DN-BINA-OME (NBO) tier and the REMBI
    modules: score (fraction of requirements met), what is missing, and an aggregate."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..catalog import check_metadata

    err = _console(stderr=True)
    with (
        _open(repo) as r,
        Progress(
            TextColumn("metadata check"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
            disable=as_json or not err.is_terminal,
        ) as bar,
    ):
        task = bar.add_task("check", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = check_metadata(r, images, tier=tier, require_tier=require_tier, progress=progress)
    if as_json:
        _emit_json(result.to_dict())
    else:
        _print_check(result.nbo, result.rembi, result.tier)
    failing = result.failing
    if failing:
        _fail(
            f"{len(failing)} of {plural(len(result.nbo), 'image')} "
            f"{'falls' if len(failing) == 1 else 'fall'} short of NBO tier {require_tier} "
            f"(first: {failing[0].image_name}, missing "
            f"{', '.join(i for i, _ in failing[0].missing[:5])}"
            f"{' ...' if len(failing[0].missing) > 5 else ''})"
        )


def _print_check(nbo: list[Any], rembi: list[Any], level: int) -> None:
    from rich.table import Table

    from ..metadata import summarize

    con = _console()
    t = Table(title=f"metadata completeness: NBO tier {level} and REMBI", title_justify="left")
    for col in ("id", "name", f"NBO T{level}", "REMBI", "missing (NBO)", "missing (REMBI)"):
        t.add_column(col, overflow="fold")
    for n, m in zip(nbo, rembi, strict=True):
        t.add_row(
            n.image_id,
            _esc(n.image_name),
            f"{n.score:.0%} ({len(n.met)}/{n.total})",
            f"{m.score:.0%} ({len(m.met)}/{m.total})",
            _esc(", ".join(i for i, _ in n.missing)),
            _esc(", ".join(i for i, _ in m.missing)),
        )
    con.print(t)
    for name, reps in (("NBO tier " + str(level), nbo), ("REMBI", rembi)):
        s = summarize(reps)
        if not s["images"]:
            con.print(f"{name}: no images")
            continue
        top = ", ".join(f"{m['id']} ({m['images']})" for m in s["missing"][:5])
        con.print(
            f"{name}: {s['complete']}/{plural(s['images'], 'image')} complete, mean score "
            f"{s['mean_score']:.0%}, lowest {s['min_score']:.0%}"
            + (f"; most often missing: {_esc(top)}" if top else "")
        )


# ----------------------------------------------------------------------- metadata export
@metadata_app.command("export")
def export(
    repo: RepoArg,
    image_id: Annotated[str, typer.Argument(help="Image id (or a unique prefix).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="ome-xml, json or jsonld.")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Export an image's metadata: OME-XML (2016-06 schema), JSON (see `quantscope metadata
    schema`) or JSON-LD (schema.org / REMBI), annotations included."""
    import os
    import sys

    from ..metadata import EXPORT_FORMATS, enrich, export_metadata, stored_ome_xml

    if fmt not in EXPORT_FORMATS:
        _fail(f"--format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", code=2)
    if out is not None:
        name = out.name.lower()
        fits = {
            "ome-xml": name.endswith((".ome.xml", ".xml")),
            "json": name.endswith(".json") and not name.endswith(".jsonld"),
            "jsonld": name.endswith((".jsonld", ".json")),
        }[fmt]
        if not fits:
            wanted = {"ome-xml": "*.ome.xml", "json": "*.json", "jsonld": "*.jsonld"}[fmt]
            _fail(
                f"--out {out}: the name does not fit --format {fmt}; name the file {wanted} "
                "or choose the format that fits the name",
                code=2,
            )
    with _open(repo) as r:
        img = r.images.get(image_id)
        full = enrich(img, stored_ome_xml(r.root, img))
        anns = _annotations_for(r, [img])[img.id]
    text = export_metadata(full, anns, fmt)
    if out is None:
        sys.stdout.write(text)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    _console(stderr=True).print(f"wrote {_esc(out)} ({fmt})")


# ---------------------------------------------------------------------- keys / schema
@metadata_app.command("keys")
def keys(as_json: JsonOpt = False) -> None:
    """List the annotation keys sidecars and `quantscope tag` accept (REMBI modules, NBO
    sample fields), with their types and units."""
    from ..metadata import annotation_keys

    specs = annotation_keys()
    rows: list[dict[str, Any]] = [
        {
            "key": s.key,
            "type": s.type + (f" ({s.dimension})" if s.dimension else ""),
            "multi": s.multi,
            "module": s.rembi,
            "choices": list(s.choices),
            "description": s.description,
        }
        for s in specs
    ]
    if as_json:
        _emit_json(rows)
        return
    from rich.table import Table

    t = Table(title=f"{len(rows)} keys (free keys: custom.*)", title_justify="left")
    for col in ("key", "type", "module", "description"):
        t.add_column(col, overflow="fold")
    for s in specs:
        kind = s.type + (f" ({s.dimension})" if s.dimension else "") + (" list" if s.multi else "")
        if s.choices:
            kind += ": " + ", ".join(s.choices)
        t.add_row(_esc(s.key), _esc(kind), s.rembi or "", _esc(s.description))
    _console().print(t)


@metadata_app.command("schema")
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Print the JSON Schema of `quantscope metadata export --format json`."""
    from ..metadata import metadata_json_schema

    text = json.dumps(metadata_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
