"""Ingest planning: collect files, scan them (read headers, hash), place them on plates and
group channel files into jobs, skip what is already stored."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._text import plural
from ..catalog import Repository
from ..errors import InvalidInput, QuantscopeError
from ..io import (
    SourceImage,
    next_field_slot,
    open_sources,
)
from ..io._formats import NON_IMAGE_SUFFIXES
from ..metadata import ImageMetadata, from_ome
from ..model import PlatePosition
from ._naming import NamePattern
from ._report import IngestIssue, IngestReport, Progress

__all__ = ["collect_files"]


# ------------------------------------------------------------------------------ collecting
def collect_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[IngestIssue]]:
    """Expand files and folders (recursively) into candidate image files.

    Hidden files and documentation/sidecar files (``.md``, ``.csv``, ``.json``…) inside folders
    are skipped; a file named explicitly is always tried. Missing paths and folders without any
    candidate file are reported as failures.
    """
    out: list[Path] = []
    failed: list[IngestIssue] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            failed.append(IngestIssue(str(p), "no such file or folder"))
            continue
        if p.is_dir():
            found = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                if any(dirpath.endswith(s) for s in (".zarr",)):
                    dirnames[:] = []
                    continue
                for fn in sorted(filenames):
                    if fn.startswith(".") or Path(fn).suffix.lower() in NON_IMAGE_SUFFIXES:
                        continue
                    found.append(Path(dirpath) / fn)
            if not found:
                failed.append(IngestIssue(str(p), "folder holds no image files"))
            for f in found:
                if f.resolve() not in seen:
                    seen.add(f.resolve())
                    out.append(f)
        elif p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    return out, failed


# ------------------------------------------------------------------------------ scanning
@dataclass
class _Scene:
    index: int
    name: str
    shape: tuple[int, int, int, int, int]
    dtype: str
    channel_names: list[str]
    physical_size: tuple[float | None, float | None, float | None]
    meta: ImageMetadata
    has_ome: bool


@dataclass
class _Scanned:
    path: Path
    sha256: str
    size: int
    format: str
    reader: str
    scenes: list[_Scene]
    ome_xml: str | None
    note: str | None
    # a single-scene file stays open from scan to write so it is parsed once; closed by close()
    opened: SourceImage | None = field(default=None, repr=False)
    closer: contextlib.ExitStack | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.closer is not None:
            self.closer.close()
        self.closer = None
        self.opened = None


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _scan(path: Path) -> _Scanned:
    try:
        size = path.stat().st_size
        sha = _sha256(path)
    except PermissionError as e:
        raise InvalidInput(f"{path}: cannot be read (permission denied)") from e
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read ({e.strerror or e})") from e
    stack = contextlib.ExitStack()
    try:
        sources = stack.enter_context(open_sources(path))
        scenes = []
        for s in sources:
            ome = s.ome() if s.ome_xml else None
            meta = from_ome(ome, s.ome_image_index) if ome is not None else ImageMetadata()
            scenes.append(
                _Scene(
                    s.scene,
                    s.scene_name,
                    s.shape,
                    s.dtype.name,
                    list(s.channel_names),
                    s.physical_size,
                    meta,
                    ome is not None,
                )
            )
        first: SourceImage = sources[0]
        scanned = _Scanned(
            path, sha, size, first.format, first.reader, scenes, first.ome_xml, first.note
        )
    except BaseException:
        stack.close()
        raise
    if len(sources) == 1:  # one job will read it: keep it open for that job
        scanned.opened, scanned.closer = first, stack
    else:  # several jobs may read scenes in parallel: each opens its own handle
        stack.close()
    return scanned


# ------------------------------------------------------------------------------ planning
@dataclass
class _Part:
    scanned: _Scanned
    scene: _Scene
    channel_token: str | None = None
    channel_name: str | None = None  # the token as the file name writes it ("w1", "d0")


@dataclass
class _Job:
    name: str
    parts: list[_Part]
    position: PlatePosition | None
    slot: int | None = None  # the field's folder in its well (0, 1, …), set when planned

    @property
    def shas(self) -> list[str]:
        return [p.scanned.sha256 for p in self.parts]

    @property
    def image_id(self) -> str:
        key = "|".join(sorted(f"{p.scanned.sha256}:{p.scene.index}" for p in self.parts))
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def nbytes(self) -> int:
        return sum(
            int(np.prod(p.scene.shape)) * np.dtype(p.scene.dtype).itemsize for p in self.parts
        )

    @property
    def label(self) -> str:
        return ", ".join(str(p.scanned.path) for p in self.parts)


def _natural(token: str | None) -> tuple[int, Any]:
    if token is None:
        return (0, "")
    return (0, int(token)) if token.isdigit() else (1, token)


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _plan(scanned: list[_Scanned], pattern: NamePattern) -> tuple[list[_Job], list[IngestIssue]]:
    jobs: list[_Job] = []
    failed: list[IngestIssue] = []
    groups: dict[tuple[str, int, int, int], list[_Part]] = {}
    sites: dict[tuple[str, str], list[_Part]] = {}  # channel files of a site without a well
    for sc in scanned:
        parsed = pattern.parse(sc.path.name) if len(sc.scenes) == 1 else None
        for scene in sc.scenes:
            pos = scene.meta.position
            token = name = None
            if pos is None and parsed is not None and parsed.on_plate:
                pos = PlatePosition(
                    plate=parsed.plate,
                    row=parsed.row,  # type: ignore[arg-type]
                    column=parsed.column,  # type: ignore[arg-type]
                    field=parsed.field,
                )
                token, name = parsed.channel, parsed.channel_name
            if pos is not None:
                key = (pos.plate, pos.row, pos.column, pos.field)
                groups.setdefault(key, []).append(_Part(sc, scene, token, name))
            elif parsed is not None and parsed.channel is not None:
                site = (str(sc.path.parent), parsed.site_key)
                sites.setdefault(site, []).append(
                    _Part(sc, scene, parsed.channel, parsed.channel_name)
                )
            else:
                name = _stem(sc.path) if len(sc.scenes) == 1 else f"{_stem(sc.path)} [{scene.name}]"
                jobs.append(_Job(name, [_Part(sc, scene)], None))
    for (_, site_key), parts in sites.items():
        parts.sort(key=lambda p: (_natural(p.channel_token), str(p.scanned.path)))
        name = re.sub(r"[._\- ]*\0[._\- ]*", "_", _stem(Path(site_key))).strip("_") or "site"
        problem = _merge_problem(parts, f"site {name!r}")
        if problem:
            failed.append(problem)
        else:
            jobs.append(_Job(name, parts, None))
    for (plate, row, col, fld), parts in groups.items():
        pos = PlatePosition(plate=plate, row=row, column=col, field=fld)
        parts.sort(key=lambda p: (_natural(p.channel_token), str(p.scanned.path)))
        problem = _merge_problem(parts, f"plate {plate!r} well {pos.well} field {fld}")
        if problem:
            failed.append(problem)
        else:
            jobs.append(_Job(f"{plate}_{pos.well}_s{fld}", parts, pos))
    return jobs, failed


def _merge_problem(parts: list[_Part], where: str) -> IngestIssue | None:
    """Why the channel files of one site cannot be merged into one image (None: they can)."""
    tokens = [p.channel_token for p in parts]
    if len(parts) > 1 and len(set(tokens)) != len(tokens):
        return IngestIssue(
            ", ".join(str(p.scanned.path) for p in parts),
            f"{len(parts)} files claim {where} with the same channel ({tokens}); "
            "give a --pattern with {channel}",
        )
    ref = parts[0].scene
    bad = [
        p
        for p in parts
        if (p.scene.shape[0], *p.scene.shape[2:]) != (ref.shape[0], *ref.shape[2:])
        or p.scene.dtype != ref.dtype
    ]
    if bad:
        return IngestIssue(
            str(bad[0].scanned.path),
            f"channel files of {where} differ in shape or dtype ({bad[0].scene.shape} "
            f"{bad[0].scene.dtype} vs {ref.shape} {ref.dtype}); they cannot be merged into one "
            "image",
        )
    return None


_WINDOW = 256  # files scanned (and kept open) before their images are written


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class _Counter:
    """Progress totals across windows: bytes of all files, bytes scanned and written so far."""

    total: int
    scanned: int = 0
    written: int = 0
    write_total: int = 0


def _check_pattern(pattern: NamePattern, files: list[Path], report: IngestReport) -> None:
    """A user's pattern that matches none of the files is an error (nothing is ingested); one
    that misses some of them says how many, with an example."""

    def matches(f: Path) -> bool:
        try:
            return pattern.parse(f.name) is not None
        except InvalidInput:
            return True  # matches, with a bad value: reported for that file when planned

    missed = [f for f in files if not matches(f)]
    if files and len(missed) == len(files):
        raise InvalidInput(
            f"pattern {pattern.pattern!r} matches none of the {plural(len(files), 'file')} "
            f"(for example {files[0].name!r}); nothing was ingested. The pattern must match "
            "the file name from its first character"
        )
    if missed:
        report.notes.append(
            IngestIssue(
                str(missed[0].parent),
                f"{len(missed)} of {plural(len(files), 'file')} "
                f"{'does' if len(missed) == 1 else 'do'} not match pattern "
                f"{pattern.pattern!r} (for example {missed[0].name!r}): each is stored as an "
                "image of its own, without a plate position",
            )
        )


def _windows(files: list[Path], pattern: NamePattern) -> Iterable[list[Path]]:
    """Split ``files`` into runs of about ``_WINDOW`` files; files whose names place them on the
    same plate field (channel files to merge) always land in the same run."""
    groups: dict[tuple[Any, ...] | Path, list[Path]] = {}
    for f in files:
        try:
            parsed = pattern.parse(f.name)
        except InvalidInput:
            parsed = None
        key: tuple[Any, ...] | Path = f
        if parsed is not None and parsed.on_plate:
            key = (parsed.plate, parsed.row, parsed.column, parsed.field)
        elif parsed is not None and parsed.channel is not None:
            key = (str(f.parent), parsed.site_key)
        groups.setdefault(key, []).append(f)
    window: list[Path] = []
    for members in groups.values():
        if window and len(window) + len(members) > _WINDOW:
            yield window
            window = []
        window.extend(members)
    if window:
        yield window


def _scan_all(
    files: list[Path],
    jobs: int,
    report: IngestReport,
    progress: Progress | None,
    counter: _Counter,
) -> list[_Scanned]:
    out: list[_Scanned] = []
    with ThreadPoolExecutor(jobs) as pool:
        futures = [(f, pool.submit(_scan, f)) for f in files]
        for f, fut in futures:
            try:
                sc = fut.result()
            except QuantscopeError as e:
                report.failed.append(IngestIssue(str(f), _strip_path(str(e), f)))
                continue
            except Exception as e:  # a reader plugin's own error: report, keep going
                report.failed.append(IngestIssue(str(f), f"unexpected {type(e).__name__}: {e}"))
                continue
            out.append(sc)
            if sc.note:
                report.notes.append(IngestIssue(str(f), _strip_path(sc.note, f)))
            counter.scanned += sc.size
            report.bytes_read += sc.size
            if progress:
                progress("scan", counter.scanned, counter.total, f.name)
    return out


def _strip_path(msg: str, path: Path) -> str:
    for prefix in (f"{path}: ", f"{path.name}: "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _skip_known(repo: Repository, plan: list[_Job], report: IngestReport) -> list[_Job]:
    known = repo.images.known_sources([sha for job in plan for sha in job.shas])
    occupied = repo.images.plate_positions([job.position.plate for job in plan if job.position])
    slots = repo.images.well_folders([job.position.plate for job in plan if job.position])
    todo: list[_Job] = []
    planned_ids: set[str] = set()
    for job in plan:
        already = [known[s] for s in job.shas if s in known]
        if job.image_id in planned_ids:
            report.skipped.append(
                IngestIssue(job.label, "same content as another file in this batch")
            )
            continue
        if already and len(already) == len(job.shas):
            ids = sorted({i for ids in already for i in ids})
            report.skipped.append(
                IngestIssue(job.label, f"already ingested (same SHA-256) as image {', '.join(ids)}")
            )
            continue
        if job.position is not None:
            pos = job.position
            holder = occupied.get((pos.plate, pos.row, pos.column, pos.field))
            if holder is not None:
                report.failed.append(
                    IngestIssue(
                        job.label,
                        f"plate {job.position.plate!r} well {job.position.well} field "
                        f"{job.position.field} already holds image {holder} made from "
                        "other files",
                    )
                )
                continue
        planned_ids.add(job.image_id)
        todo.append(job)
    # each well's fields are the folders 0..n-1 (what NGFF readers expect), in site order
    # within a batch; the site number itself is recorded in the catalog and the well metadata
    placed = [(j.position, j) for j in todo if j.position is not None]
    for where, job in sorted(placed, key=lambda pj: pj[0].field):
        well = slots.setdefault((where.plate, where.row, where.column), set())
        job.slot = next_field_slot(well)
        well.add(str(job.slot))
    return todo
