"""The parts of ``quantscope qc`` (the command itself is in :mod:`._app`): measuring with a
progress bar, the illumination profiles of the selection, and printing the verdicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._text import plural
from ._common import _console, _esc

if TYPE_CHECKING:
    from ..catalog import Repository
    from ..qc import QCRunReport

_KEY_METRICS = ("focus_plls", "snr", "saturation_pct_at_max")
_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _fmt_metric(value: float | None) -> str:
    """A metric value of :meth:`ImageQC.to_dict` (NaN and inf are already None)."""
    return "-" if value is None else f"{value:.3g}"


def measure(
    r: Repository,
    ids: list[str] | None,
    plates: list[str] | None,
    *,
    profiles: bool,
    jobs: int,
    quiet: bool,
) -> QCRunReport:
    """Run QC on ``ids`` (every image: None) with a progress bar on stderr, and with
    ``profiles`` estimate the illumination profiles of ``plates`` (or of the plates of the
    images chosen, or of every plate)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..qc import estimate_profiles, profile_gaps, run_qc

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
        if profiles:
            bar.update(task, description="illumination profiles", name="")
            targets: list[str | None] = [None]  # None: every plate
            if plates:
                targets = [*dict.fromkeys(plates)]
            elif ids is not None:  # the plates of the images chosen
                targets = [*sorted({pos.plate for i in r.images.all(ids) if (pos := i.position)})]
            for target in targets:
                result.profiles += estimate_profiles(r, target)
                result.missing_profiles += profile_gaps(r, target)
            if not targets:  # only images without a plate were chosen
                result.missing_profiles += [g for g in profile_gaps(r) if g.plate is None]
    return result


def print_outcome(result: QCRunReport) -> None:
    """The verdicts as a table, then profiles, gaps, small groups, the report and the counts."""
    from rich.table import Table

    rows, err = [i.to_dict() for i in result.images.values()], _console(stderr=True)
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
    for prof in result.profiles:
        con.print(
            f"illumination profile: plate {_esc(prof.plate)} channel "
            f"{_esc(prof.channel_name)} from {plural(prof.n_images, 'image')}, corner/centre "
            f"{prof.corner_center_ratio:.2f}, flatness {prof.flatness:.2f} -> "
            f"{_esc(prof.store_path)}"
        )
    for gap in result.missing_profiles:
        con.print(_esc(gap.message()))
    if result.small_groups:
        con.print(
            f"{plural(len(result.small_groups), 'image')} not compared with peers: their group "
            f"(same plate, dataset, or instrument, channel, size and dtype) has fewer than "
            f"{result.outlier_min_group} images, too few for robust outlier statistics"
        )
    if result.report is not None:
        for problem in result.report_problems:
            err.print(f"[yellow]warning:[/] {_esc(problem)}")
        con.print(f"report written to {_esc(result.report)}")
    counts = result.counts()
    con.print(
        f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail "
        f"({result.seconds:.1f} s)"
    )
