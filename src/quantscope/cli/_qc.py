"""The parts of ``quantscope qc`` (the command itself is in :mod:`._app`): measuring with a
progress bar, the illumination profiles of the selection, and printing the verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._text import plural
from ._common import _console, _esc

if TYPE_CHECKING:
    from ..catalog import Repository
    from ..qc import MissingProfile, QCRunReport, StoredProfile

_KEY_METRICS = ("focus_plls", "snr", "saturation_pct_at_max")
_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _num(value: float | None) -> float | None:
    """A metric value for JSON: NaN / inf become null."""
    import math

    return value if value is not None and math.isfinite(value) else None


def _fmt_metric(value: float | None) -> str:
    v = _num(value)
    return "-" if v is None else f"{v:.3g}"


@dataclass
class QCOutcome:
    """What the ``qc`` command did: the run, the profiles it stored, the report it wrote."""

    result: QCRunReport
    outlier_min_group: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[StoredProfile] = field(default_factory=list)
    gaps: list[MissingProfile] = field(default_factory=list)  # plate channels without a profile
    report: Path | None = None
    report_problems: list[str] = field(default_factory=list)


def measure(
    r: Repository,
    ids: list[str] | None,
    plates: list[str] | None,
    *,
    profiles: bool,
    jobs: int,
    quiet: bool,
) -> QCOutcome:
    """Run QC on ``ids`` (every image: None) with a progress bar on stderr, and with
    ``profiles`` estimate the illumination profiles of ``plates`` (or of the plates of the
    images chosen, or of every plate)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..qc import estimate_profiles, load_thresholds, profile_gaps, run_qc

    err = _console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[name]}"),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    ) as bar:
        task = bar.add_task("quality control", total=None, name="")
        count = 0
        n_total = len(ids) if ids is not None else r.summary()["images"]

        def progress(done: int, total: int, name: str) -> None:
            nonlocal count
            count += 1
            bar.update(task, completed=count, total=n_total, name=name)

        result = run_qc(r, ids, jobs=jobs, progress=progress)
        out = QCOutcome(result, load_thresholds(r).outlier_min_group)
        if profiles:
            bar.update(task, description="illumination profiles", name="")
            targets: list[str | None] = [None]  # None: every plate
            if plates:
                targets = [*dict.fromkeys(plates)]
            elif ids is not None:  # the plates of the images chosen
                targets = [*sorted({pos.plate for i in r.images.all(ids) if (pos := i.position)})]
            for target in targets:
                out.profiles += estimate_profiles(r, target)
                out.gaps += profile_gaps(r, target)
            if not targets:  # only images without a plate were chosen
                out.gaps += [g for g in profile_gaps(r) if g.plate is None]
    out.rows = _rows(r, result)
    return out


def _rows(r: Repository, result: QCRunReport) -> list[dict[str, Any]]:
    images = {img.id: img for img in r.images.all(list(result.images))}
    rows: list[dict[str, Any]] = []
    for image_id, res in result.images.items():
        img = images[image_id]
        pos = img.position
        rows.append(
            {
                "id": image_id,
                "name": img.name,
                "plate": pos.plate if pos else None,
                "well": pos.well if pos else None,
                "field": pos.field if pos else None,
                "status": res.status,
                "reasons": list(res.reasons),
                "error": res.error,
                "channels": [
                    {
                        "index": c,
                        "name": img.channels[c].name if c < len(img.channels) else f"C{c}",
                        "metrics": {k: _num(v) for k, v in values.items()},
                    }
                    for c, values in sorted(res.metrics.items())
                ],
            }
        )
    return rows


def to_json(out: QCOutcome) -> dict[str, Any]:
    """What ``quantscope qc --json`` prints.

    TODO(issue 13, after merging h1's ``QCRunReport.to_dict()``): build ``images`` and
    ``counts`` from ``out.result.to_dict()`` instead of here; the lead switches it.
    """
    return {
        "images": out.rows,
        "counts": out.result.counts(),
        "profiles": [
            {
                "plate": p.plate,
                "channel": p.channel,
                "channel_name": p.channel_name,
                "n_images": p.n_images,
                "store_path": p.store_path,
                "corner_center_ratio": _num(p.corner_center_ratio),
                "flatness": _num(p.flatness),
            }
            for p in out.profiles
        ],
        "missing_profiles": [
            {
                "plate": g.plate,
                "channel": g.channel,
                "channel_name": g.channel_name,
                "reason": g.reason,
            }
            for g in out.gaps
        ],
        "report": str(out.report) if out.report is not None else None,
        "report_problems": out.report_problems,
        "seconds": out.result.seconds,
        "outlier_min_group": out.outlier_min_group,
        "small_groups": out.result.small_groups,
    }


def print_outcome(out: QCOutcome) -> None:
    """The verdicts as a table, then profiles, gaps, small groups, the report and the counts."""
    from rich.table import Table

    rows, result, err = out.rows, out.result, _console(stderr=True)
    t = Table(title=f"quality of {plural(len(rows), 'image')}", title_justify="left")
    for col in ("id", "name", "position", "status", *_KEY_METRICS, "reasons"):
        t.add_column(col, overflow="fold")
    for row in rows:
        position = (
            f"{row['plate']} {row['well']} f{row['field']}" if row["plate"] is not None else ""
        )
        per_channel = {
            m: " / ".join(_fmt_metric(ch["metrics"].get(m)) for ch in row["channels"]) or "-"
            for m in _KEY_METRICS
        }
        style = _STATUS_STYLE.get(row["status"], "")
        t.add_row(
            row["id"],
            _esc(row["name"]),
            _esc(position),
            f"[{style}]{row['status']}[/]",
            *(per_channel[m] for m in _KEY_METRICS),
            _esc("\n".join(row["reasons"])),
        )
    con = _console()
    con.print(t)
    for row in rows:
        if row["error"]:
            err.print(f"[yellow]not measured:[/] {_esc(row['name'])}: {_esc(row['error'])}")
    for prof in out.profiles:
        con.print(
            f"illumination profile: plate {_esc(prof.plate)} channel "
            f"{_esc(prof.channel_name)} from {plural(prof.n_images, 'image')}, corner/centre "
            f"{prof.corner_center_ratio:.2f}, flatness {prof.flatness:.2f} -> "
            f"{_esc(prof.store_path)}"
        )
    for gap in out.gaps:
        con.print(_esc(gap.message()))
    if result.small_groups:
        con.print(
            f"{plural(len(result.small_groups), 'image')} not compared with peers: their group "
            f"(same plate, dataset, or instrument, channel, size and dtype) has fewer than "
            f"{out.outlier_min_group} images, too few for robust outlier statistics"
        )
    if out.report is not None:
        for problem in out.report_problems:
            err.print(f"[yellow]warning:[/] {_esc(problem)}")
        con.print(f"report written to {_esc(out.report)}")
    counts = result.counts()
    con.print(
        f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail "
        f"({result.seconds:.1f} s)"
    )
