"""Plate fields as the folders ``0..n-1`` of their well, for plates written before that rule.

Until catalog migration 0006 a field was stored under its 0-based site number
(``<plate>/<row>/<column>/<site - 1>``), so a well holding only site 5 had the folder ``4``, and
NGFF readers, which take the field paths of the first well for every well, showed most wells
blank. :func:`relayout_plates` renames such wells' fields to ``0..n-1`` in site order and
records the moves in the catalog.

A move is crash-safe: a journal names every move before anything is renamed, each folder first
goes to a temporary name (so swaps cannot collide), then to its new name, then the catalog is
updated in one transaction (idempotent), and the journal is removed. Whatever step a killed run
stopped at, the next call finishes the same moves from the journal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import atomic_write

if TYPE_CHECKING:
    from ..catalog import PlateInfo, Repository

__all__ = ["JOURNAL_NAME", "relayout_plates"]

JOURNAL_NAME = ".quantscope.relayout.json"

Move = tuple[str, str, str]  # image id, old store path, new store path


def _plan(repo: Repository, plates: list[PlateInfo]) -> list[Move]:
    paths: dict[str, str] | None = None  # read only when a well needs renumbering
    moves: list[Move] = []
    for plate in plates:
        wells: dict[tuple[int, int], list[tuple[int, str, str]]] = {}
        for r, c, site, image_id, folder in plate.fields:
            wells.setdefault((r, c), []).append((site, image_id, folder))
        for fields in wells.values():
            if sorted(f for _, _, f in fields) == sorted(str(k) for k in range(len(fields))):
                continue  # already 0..n-1 (in whatever order they arrived)
            paths = paths if paths is not None else repo.images.store_paths()
            for k, (_, image_id, folder) in enumerate(sorted(fields)):
                if folder != str(k):
                    old = paths[image_id]
                    moves.append((image_id, old, f"{old.rsplit('/', 1)[0]}/{k}"))
    return moves


def _tmp(root: Path, move: Move) -> Path:
    image_id, old, _ = move
    return root / old.rsplit("/", 1)[0] / f".relayout-{image_id}"


def _write_journal(root: Path, moves: list[Move], phase: str) -> None:
    atomic_write(root / JOURNAL_NAME, json.dumps({"phase": phase, "moves": moves}), durable=True)


def _finish(repo: Repository, moves: list[Move], phase: str) -> None:
    root = repo.root
    if phase == "park":  # every folder to its temporary name first: swaps cannot collide
        for move in moves:
            old, tmp = root / move[1], _tmp(root, move)
            if old.is_dir() and not tmp.exists():
                os.replace(old, tmp)
        _write_journal(root, moves, "place")
        phase = "place"
    if phase == "place":
        for move in moves:
            tmp, new = _tmp(root, move), root / move[2]
            if tmp.is_dir():
                os.replace(tmp, new)
    repo.images.move_folders(moves)
    (root / JOURNAL_NAME).unlink(missing_ok=True)


def relayout_plates(repo: Repository, plates: list[PlateInfo] | None = None) -> list[Move]:
    """Renumber the field folders of wells that are not ``0..n-1`` (in site order), finishing
    first what a killed earlier call left in its journal. ``plates`` is
    ``repo.images.plates()`` when the caller has it already. Must run under the repository's
    write lock; the caller rewrites the plate group documents. Returns the moves made."""
    journal = repo.root / JOURNAL_NAME
    done: list[Move] = []
    if journal.exists():
        doc = json.loads(journal.read_text(encoding="utf-8"))
        moves = [(str(a), str(b), str(c)) for a, b, c in doc["moves"]]
        _finish(repo, moves, str(doc["phase"]))
        done += moves
    moves = _plan(repo, repo.images.plates() if done or plates is None else plates)
    if moves:
        _write_journal(repo.root, moves, "park")
        _finish(repo, moves, "park")
        done += moves
    return done
