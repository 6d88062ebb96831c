"""Sidecar metadata: ``quantscope.yaml`` / ``quantscope.csv`` files beside the images.

Microscopes never record the study, the biosample or the specimen; a sidecar does. A YAML
sidecar holds nested REMBI modules that apply to every image in its folder (and below), plus an
``images:`` list of entries that apply to some images only::

    study:
      title: Nuclear size under nocodazole in U2OS cells
      authors: [Ada Lovelace, Alan Turing]
      license: CC-BY-4.0
    biosample:
      organism: Homo sapiens                 # NCBITaxon:9606 filled in
      cell_line: {label: U2OS, curie: CVCL_0042}
      treatment: {compound: nocodazole, concentration: 100 nM, duration: 24 h}
    specimen:
      fixation: 4% PFA, 15 min
      stain:
        DAPI: {target: DNA, fluorophore: DAPI}
    tags: [pilot]
    dataset: screen-7                        # membership (several: a list); see catalog
    images:
      - well: A01                            # or file: "*_A01_*.tif", plate:, field: (1-based)
        biosample.experimental_status: control
        tags: [control]

A CSV sidecar has one row per image or well: selector columns ``file`` (a name or glob matched
against the image's source file names and its name), ``plate``, ``well`` and ``field``
(1-based), then one column per key (a unit may be given in the header, ``biosample.treatment.
concentration [nM]``; several values of a multi-valued key are separated by ``;``).

Every key is checked against :func:`~quantscope.metadata.annotation_keys` (an unknown key is an
error with a "did you mean" suggestion) and every value against its key's type and unit; errors
name the file, the line and the field.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._text import plural
from ..errors import InvalidInput, NotFound
from ..model import TAG_KEY, Annotation, Image, parse_well, well_name
from ._keys import ParsedValue, key_spec, parse_value, unknown_key_message

__all__ = [
    "SIDECAR_NAMES",
    "Selector",
    "Sidecar",
    "SidecarEntry",
    "find_sidecars",
    "load_sidecar",
    "parse_sidecar_text",
]

SIDECAR_NAMES = ("quantscope.yaml", "quantscope.yml", "quantscope.csv")
_SELECTORS = {"file", "plate", "well", "field"}
_CSV_SELECTOR_ALIASES = {"files": "file", "filename": "file", "file name": "file", "path": "file"}
_ALIASES = {"tags": TAG_KEY, "datasets": "dataset"}
_HEADER_UNIT = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]+?)\s*[\])]\s*$")
_MAX_ERRORS = 8


@dataclass(frozen=True)
class Selector:
    """Which images an entry applies to; every given part must match. ``field`` is 1-based."""

    file: str | None = None
    plate: str | None = None
    well: str | None = None
    field: int | None = None

    def matches(self, image: Image, base: Path | None) -> bool:
        pos = image.position
        if self.plate is not None and (pos is None or pos.plate != self.plate):
            return False
        if self.well is not None and (pos is None or pos.well != self.well):
            return False
        if self.field is not None and (pos is None or pos.field != self.field):
            return False
        if self.file is not None:
            names = [image.name]
            for src in image.sources:
                p = Path(src.path)
                names.append(p.name)
                if base is not None:
                    with contextlib.suppress(ValueError):
                        names.append(p.relative_to(base).as_posix())
            if not any(fnmatch.fnmatchcase(n, self.file) for n in names):
                return False
        return True

    def describe(self) -> str:
        parts = [f"{k}={v!r}" for k, v in vars(self).items() if v is not None]
        return ", ".join(parts) or "all images"


@dataclass(frozen=True)
class SidecarEntry:
    """One checked value of a sidecar, the images it applies to and where it was written."""

    key: str
    value: ParsedValue
    line: int
    selector: Selector | None = None  # None: every image in the sidecar's scope


@dataclass
class Sidecar:
    """A parsed, checked sidecar file."""

    path: Path
    entries: list[SidecarEntry] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The annotations' ``source``: ``sidecar:<file name>`` (64 characters at most)."""
        return f"sidecar:{self.path.name}"[:64]

    @property
    def base(self) -> Path:
        """The folder whose images the sidecar describes."""
        return self.path.parent

    def in_scope(self, image: Image) -> bool:
        """Whether one of ``image``'s source files lies in the sidecar's folder (or below)."""
        base = os.path.abspath(self.base)
        for src in image.sources:
            p = os.path.abspath(src.path)
            if p == base or p.startswith(base.rstrip(os.sep) + os.sep):
                return True
        return False

    def annotations_for(
        self, images: Sequence[Image], *, all_in_scope: bool = False
    ) -> tuple[list[Annotation], list[str]]:
        """The annotations this sidecar puts on ``images``, and notes on entries that matched
        no image.

        Images are considered when a source file of theirs lies in the sidecar's folder, or
        (``all_in_scope``) always. For a key that holds one value, an entry with a selector
        overrides the sidecar-wide value; values of multi-valued keys (tags) accumulate.
        """
        scope = [im for im in images if all_in_scope or self.in_scope(im)]
        chosen: dict[tuple[str, str], list[tuple[bool, ParsedValue]]] = {}
        notes: list[str] = []
        for e in self.entries:
            if e.selector is None:
                targets = scope
            else:
                targets = [im for im in scope if e.selector.matches(im, self.base)]
                if not targets:
                    notes.append(
                        f"{self.path.name}:{e.line}: no image matches {e.selector.describe()}"
                    )
            spec = key_spec(e.key)
            multi = spec is not None and spec.multi
            for im in targets:
                slot = chosen.setdefault((im.id, e.key), [])
                specific = e.selector is not None
                if multi:
                    if all(v != e.value for _, v in slot):
                        slot.append((specific, e.value))
                elif not slot or specific or not slot[0][0]:
                    slot[:] = [(specific, e.value)]
        out = [
            Annotation(
                target_kind="image",
                target_id=image_id,
                key=key,
                value=v.value,
                num_value=v.num_value,
                unit=v.unit,
                curie=v.curie,
                source=self.source,
            )
            for (image_id, key), values in chosen.items()
            for _, v in values
        ]
        return out, list(dict.fromkeys(notes))


class _Errors:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int, key: str | None, message: str) -> None:
        where = f"{self.path.name}:{line}"
        self.items.append(f"{where}: field '{key}': {message}" if key else f"{where}: {message}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:_MAX_ERRORS]
        more = len(self.items) - len(shown)
        raise InvalidInput(
            f"{self.path}: invalid sidecar: "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else "")
        )


def _check(key: str, raw: Any, line: int, errors: _Errors, unit: str | None = None) -> list[Any]:
    """Parsed values of ``raw`` for ``key`` (several for a list), errors recorded."""
    spec = key_spec(key)
    if spec is None:
        errors.add(line, None, unknown_key_message(key))
        return []
    items = raw if isinstance(raw, list) else [raw]
    if isinstance(raw, list) and not spec.multi:
        errors.add(line, key, f"takes one value, got a list of {len(raw)}")
        return []
    out = []
    for item in items:
        if item is None or (isinstance(item, str) and not item.strip()):
            errors.add(line, key, "has no value")
            continue
        try:
            out.append(parse_value(key, item, unit))
        except ValueError as e:
            errors.add(line, key, str(e))
    return out


# ------------------------------------------------------------------------------- YAML


def _yaml_entries(path: Path, text: str, errors: _Errors) -> list[SidecarEntry]:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(e, "problem", None) or str(e)
        errors.add(line, None, f"not valid YAML ({problem})")
        return []
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        errors.add(root.start_mark.line + 1, None, "a YAML sidecar is a mapping of keys")
        return []
    loader = yaml.SafeLoader("")
    entries: list[SidecarEntry] = []

    def value_of(node: Any) -> Any:
        return loader.construct_object(node, deep=True)

    def walk(node: Any, prefix: str, selector: Selector | None) -> None:
        for knode, vnode in node.value:
            line = knode.start_mark.line + 1
            name = str(value_of(knode))
            if not prefix and name == "images":
                if selector is not None:
                    errors.add(line, None, "'images' may only appear at the top level")
                elif not isinstance(vnode, yaml.SequenceNode):
                    errors.add(line, None, "'images' is a list of entries, each with a selector")
                else:
                    for item in vnode.value:
                        entry_images(item)
                continue
            name = _ALIASES.get(name, name) if not prefix else name
            key = f"{prefix}.{name}" if prefix else name
            spec = key_spec(key)
            if spec is None and isinstance(vnode, yaml.MappingNode):
                walk(vnode, key, selector)
                continue
            if spec is None:
                errors.add(line, None, unknown_key_message(key))
                continue
            for parsed in _check(key, value_of(vnode), line, errors):
                entries.append(SidecarEntry(key, parsed, line, selector))

    def entry_images(item: Any) -> None:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            errors.add(line, None, "each entry of 'images' is a mapping with file/plate/well/field")
            return
        sel: dict[str, Any] = {}
        rest = []
        for knode, vnode in item.value:
            name = str(value_of(knode))
            if name in _SELECTORS:
                sel[name] = value_of(vnode)
            else:
                rest.append((knode, vnode))
        selector = _selector(sel, line, errors)
        if selector is None:
            return
        walk(yaml.MappingNode(item.tag, rest, item.start_mark, item.end_mark), "", selector)

    walk(root, "", None)
    return entries


def _selector(raw: dict[str, Any], line: int, errors: _Errors) -> Selector | None:
    if not any(v not in (None, "") for v in raw.values()):
        errors.add(line, None, "an entry needs a selector: file, plate, well or field")
        return None
    well = raw.get("well")
    if well not in (None, ""):
        try:
            well = well_name(*parse_well(str(well)))
        except ValueError as e:
            errors.add(line, "well", str(e))
            return None
    fld = raw.get("field")
    if fld not in (None, ""):
        try:
            fld = int(str(fld))
            if fld < 1:
                raise ValueError
        except ValueError:
            errors.add(line, "field", f"{raw.get('field')!r} is not a field number (1, 2, ...)")
            return None
    plate = raw.get("plate")
    file = raw.get("file")
    return Selector(
        file=str(file) if file not in (None, "") else None,
        plate=str(plate) if plate not in (None, "") else None,
        well=well or None,
        field=fld if fld not in (None, "") else None,
    )


# -------------------------------------------------------------------------------- CSV


def _csv_entries(path: Path, text: str, errors: _Errors) -> list[SidecarEntry]:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        errors.add(1, None, "the CSV file is empty")
        return []
    columns: list[tuple[str, str | None, bool]] = []  # (key or selector, unit, is_selector)
    for head in header:
        name = head.strip()
        low = name.lower()
        low = _CSV_SELECTOR_ALIASES.get(low, low)
        if low in _SELECTORS:
            columns.append((low, None, True))
            continue
        unit = None
        m = _HEADER_UNIT.match(name)
        if m:
            name, unit = m.group(1).strip(), m.group(2).strip()
        name = _ALIASES.get(name, name)
        if key_spec(name) is None:
            errors.add(1, None, unknown_key_message(name))
        columns.append((name, unit, False))
    if not any(sel for _, _, sel in columns):
        errors.add(1, None, "no selector column: add 'file', or 'plate'/'well' (and 'field')")
        return []
    entries: list[SidecarEntry] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            errors.add(
                line, None, f"{len(row)} cells but {plural(len(columns), 'column')} in the header"
            )
            continue
        sel = {c: row[i].strip() for i, (c, _, s) in enumerate(columns) if s and i < len(row)}
        selector = _selector(sel, line, errors)
        if selector is None:
            continue
        for i, (key, unit, is_sel) in enumerate(columns):
            if is_sel or i >= len(row) or not row[i].strip() or key_spec(key) is None:
                continue
            spec = key_spec(key)
            cell = row[i].strip()
            raw: Any = [c.strip() for c in cell.split(";") if c.strip()]
            if not (spec is not None and spec.multi):
                raw = cell
            for parsed in _check(key, raw, line, errors, unit):
                entries.append(SidecarEntry(key, parsed, line, selector))
    return entries


# ------------------------------------------------------------------------------- API


def parse_sidecar_text(text: str, path: str | os.PathLike[str]) -> Sidecar:
    """Parse and check sidecar ``text``; ``path``'s suffix (.yaml/.yml/.csv) picks the format.

    Raises
    ------
    InvalidInput
        Unknown keys, values of the wrong type or unit, malformed YAML/CSV: every problem with
        its file, line and field (the first few listed).
    """
    p = Path(path)
    errors = _Errors(p)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        entries = _yaml_entries(p, text, errors)
    elif suffix in (".csv", ".tsv"):
        entries = _csv_entries(p, text, errors)
    else:
        raise InvalidInput(f"{p}: a sidecar is a .yaml, .yml or .csv file")
    errors.raise_if_any()
    return Sidecar(p.absolute(), entries)


def load_sidecar(path: str | os.PathLike[str]) -> Sidecar:
    """Read, parse and check a sidecar file (see :func:`parse_sidecar_text`).

    Raises
    ------
    NotFound
        No such file.
    InvalidInput
        The file cannot be decoded as UTF-8 or is not a valid sidecar.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{p}: no such sidecar file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{p}: is a folder; give the sidecar file (quantscope.yaml)") from None
    except OSError as e:
        raise InvalidInput(f"{p}: cannot be read ({e.strerror or e})") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{p}: not UTF-8 text (byte {e.start}); save it as UTF-8") from e
    return parse_sidecar_text(text, p)


def find_sidecars(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Sidecar files (``quantscope.yaml``, ``.yml``, ``.csv``) in the given folders and their
    subfolders (hidden folders skipped), and beside the given files."""
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        r = p.resolve()
        if r not in seen:
            seen.add(r)
            found.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(
                    d for d in dirnames if not d.startswith(".") and not d.endswith(".zarr")
                )
                for name in SIDECAR_NAMES:
                    if name in filenames:
                        add(Path(dirpath) / name)
        elif p.is_file():
            for name in SIDECAR_NAMES:
                if (p.parent / name).is_file():
                    add(p.parent / name)
    return found
