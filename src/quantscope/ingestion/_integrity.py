"""Ingest integrity: leftovers of killed runs, plate group documents, and `verify`."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..catalog import ArtifactRecord, Repository
from ..errors import NotFound
from ..io import (
    write_plate_groups,
)
from ._plan import _sha256
from ._report import IngestIssue, VerifyReport

__all__ = ["clean_leftovers", "update_plates", "verify"]
# Present while plate images are registered but their plate/row/well group documents are not yet
# rewritten: a run killed in between leaves it, and the next run rewrites every plate's groups.
_PLATES_DIRTY = ".quantscope.plates-dirty"


# ------------------------------------------------------------------------------ cleanup
def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_leftovers(repo: Repository) -> list[str]:
    """Remove stored data no catalog row refers to (left by a killed run); rewrite plate groups.

    Plate fields stored under their site number (repositories written before catalog
    migration 0006) are first renumbered ``0..n-1`` in their well (:func:`relayout_plates`),
    and a renumbering a killed run left half done is finished.

    Must run under the repository's write lock. Returns the paths removed.
    """
    from ._layout import relayout_plates

    root = repo.root
    plates = repo.images.plates()  # read once for the renumbering and the plate folders below
    moved = relayout_plates(repo, plates)
    if moved:
        plates = repo.images.plates()
    known = set(repo.images.store_paths().values())
    removed: list[str] = []
    images_dir = root / "images"
    if images_dir.is_dir():
        for entry in sorted(images_dir.iterdir()):
            rel = f"images/{entry.name}"
            if rel not in known:
                _rm(entry)
                removed.append(rel)
    plates_dir = root / "plates"
    known_plates = {p.store_path for p in plates}
    if plates_dir.is_dir():
        for plate in sorted(plates_dir.iterdir()):
            prel = f"plates/{plate.name}"
            if prel not in known_plates:
                _rm(plate)
                removed.append(prel)
                continue
            for row in sorted(d for d in plate.iterdir() if d.is_dir()):
                for col in sorted(d for d in row.iterdir() if d.is_dir()):
                    for fld in sorted(d for d in col.iterdir() if d.is_dir()):
                        rel = f"{prel}/{row.name}/{col.name}/{fld.name}"
                        if rel not in known:
                            _rm(fld)
                            removed.append(rel)
                    if col.name.startswith("."):
                        _rm(col)
                        removed.append(f"{prel}/{row.name}/{col.name}")
            # half-written group documents (zarr.json temp files) of a killed plate rewrite
            for group in (plate, *plate.glob("*"), *plate.glob("*/*")):
                if group.is_dir():
                    for tmp in sorted(group.glob(".*.tmp*")):
                        if tmp.is_file():
                            _rm(tmp)
                            removed.append(tmp.relative_to(root).as_posix())
    for tmp in sorted(root.glob(".*.tmp*")):
        _rm(tmp)
        removed.append(tmp.name)
    dirty = (root / _PLATES_DIRTY).exists()
    if removed or dirty or moved:
        update_plates(repo)
        (root / _PLATES_DIRTY).unlink(missing_ok=True)
    return removed


def update_plates(repo: Repository, names: Iterable[str] | None = None) -> None:
    """Rewrite the HCS plate/row/well groups of ``names`` (default: all) from the catalog."""
    wanted = set(names) if names is not None else None
    for p in repo.images.plates():
        if wanted is not None and p.name not in wanted:
            continue
        root = repo.root / p.store_path
        write_plate_groups(root, p.name, [(f.row, f.column, f.field, f.folder) for f in p.fields])


def verify(repo: Repository, jobs: int = 2) -> VerifyReport:
    """Re-hash every stored file against the catalog's manifest, and every registered analysis
    output (label images by their values, tables by their bytes) against its recorded
    checksum; list what changed or is missing.

    Returns
    -------
    VerifyReport
        The problems (a list, empty when all is intact) and the number of stored files checked.
    """
    from ..analysis import verify_output

    entries = repo.images.stored_files()
    problems: list[IngestIssue] = []

    def check(e: tuple[str, str, int, str]) -> IngestIssue | None:
        image_id, rel, size, sha = e
        path = repo.root / rel
        try:
            st = path.stat()
        except FileNotFoundError:
            return IngestIssue(rel, f"missing (image {image_id})")
        if st.st_size != size:
            return IngestIssue(
                rel, f"size changed from {size} to {st.st_size} bytes (image {image_id})"
            )
        if _sha256(path) != sha:
            return IngestIssue(rel, f"content changed: SHA-256 differs (image {image_id})")
        return None

    outputs: dict[str, ArtifactRecord] = {}
    for run in repo.runs.all():
        for a in repo.runs.artifacts(run.id):
            outputs.setdefault(a.key, a)

    def check_output(a: ArtifactRecord) -> IngestIssue | None:
        problem = verify_output(repo.root, a.kind, a.path, a.sha256)
        if problem is None:
            return None
        what = problem.removeprefix(f"{a.path}: ")
        return IngestIssue(
            a.path,
            f"{what} (analysis output {a.output} of step {a.step}, image {a.image_id}, "
            f"run {a.run_id[:12]}; delete it and run the pipeline again: a missing output "
            "is computed anew)",
        )

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for res in pool.map(check, entries):
            if res is not None:
                problems.append(res)
        for res in pool.map(check_output, outputs.values()):
            if res is not None:
                problems.append(res)
    if not entries and repo.summary()["images"]:
        raise NotFound(f"{repo.root}: the catalog lists images but no stored-file manifest")
    return VerifyReport(problems, checked=len(entries))
