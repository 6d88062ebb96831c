"""Set or correct an image's pixel sizes and channel names and wavelengths after ingest.

``quantscope set REPO SELECTION KEY=VALUE ...`` calls :func:`set_metadata`. One call changes
the catalog in one transaction and keeps the stored OME-Zarr consistent with it: the
``multiscales`` scale (and axis units) and ``omero`` channel labels in the image's
``zarr.json``, and ``OME/METADATA.ome.xml``; the stored-file manifest gets the new checksums, so
``quantscope verify`` still passes. Every change is recorded as a ``metadata_edit`` annotation
on the image (old value, new value, who, when). Bad input changes nothing.

Keys (values in the unit of the key; a unit may be written, e.g. ``650nm``; ``none`` clears)::

    pixel_size_um=0.65            x and y
    pixel_size_x_um=0.65          pixel_size_y_um=...   pixel_size_z_um=2.0
    channel[0].name=DAPI          channel N, numbered from 0 as `quantscope show` lists them
    channel[C1].name=GFP          the channel named C1
    channel["525"].name=GFP       a quoted name; unquoted digits are an index when one is in
                                  range, else the channel of that name (DeltaVision's "525")
    channel[DAPI].emission_nm=461 channel[DAPI].excitation_nm=358

Channel selectors refer to the channels as they are before the call, so
``channel[C0].name=DAPI channel[C0].emission_nm=461`` renames C0 and sets its emission.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import atomic_write, user_name
from .._text import plural
from ..errors import CorruptFile, InvalidInput, NotFound
from ..model import Annotation
from . import _schema as S
from ._select import Selection
from ._select import select_images as resolve_selection

if TYPE_CHECKING:
    from ..model import Image
    from ._repository import Repository

__all__ = [
    "EDIT_KEY",
    "Edit",
    "EditReport",
    "FieldChange",
    "parse_edits",
    "select_images",
    "set_metadata",
]

EDIT_KEY = "metadata_edit"  # annotation key of the audit records (multi-valued)

_SIZE_KEYS = {
    "pixel_size_um": ("x", "y"),
    "pixel_size_x_um": ("x",),
    "pixel_size_y_um": ("y",),
    "pixel_size_z_um": ("z",),
}
_CHANNEL_FIELDS = {
    "name": "name",
    "emission_nm": "emission_wavelength_nm",
    "emission_wavelength_nm": "emission_wavelength_nm",
    "excitation_nm": "excitation_wavelength_nm",
    "excitation_wavelength_nm": "excitation_wavelength_nm",
}
_CHANNEL_RE = re.compile(r"^channel\[(?P<sel>[^\]]+)\]\.(?P<field>[a-z_]+)$")
_CLEAR = {"none", "null", "unknown", "-"}
_HELP = (
    "pixel_size_um, pixel_size_x_um, pixel_size_y_um, pixel_size_z_um, "
    "channel[N or NAME].name, channel[N or NAME].emission_nm, channel[N or NAME].excitation_nm"
)


@dataclass(frozen=True)
class Edit:
    """One parsed ``KEY=VALUE``: an image field (``physical_size_x_um``...) or, with
    ``channel``, a channel field (index as ``int`` or name as ``str``)."""

    key: str  # as written
    field: str  # physical_size_{x,y,z}_um, name, emission_wavelength_nm, excitation_wavelength_nm
    value: float | str | None
    channel: int | str | None = None


@dataclass(frozen=True)
class FieldChange:
    """A value changed on one image (``channel`` is the channel index for channel fields)."""

    image_id: str
    field: str
    old: float | str | None
    new: float | str | None
    channel: int | None = None


@dataclass
class EditReport:
    """What :func:`set_metadata` did: the images selected and every value changed (values
    already equal to the new one are not changes)."""

    images: list[str] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    files_rewritten: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: images, changes (as records) and files rewritten; what
        ``quantscope set --json`` prints."""
        return {
            "images": self.images,
            "changes": [vars(c) for c in self.changes],
            "files_rewritten": self.files_rewritten,
        }


# ---------------------------------------------------------------------------------- parsing
def _number(key: str, raw: str, dimension_unit: str) -> float | None:
    """A positive finite length from ``raw`` (in ``dimension_unit`` if bare), in that unit."""
    from ..metadata import parse_quantity

    text = raw.strip()
    if text.lower() in _CLEAR:
        return None
    try:
        value_um, _ = parse_quantity(text, "length", dimension_unit)
    except ValueError as e:
        raise InvalidInput(f"{key}={raw}: {e}") from None
    value = value_um * 1e3 if dimension_unit == "nm" else value_um
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(
            f"{key}={raw}: must be a positive number ({dimension_unit}); "
            "write 'none' to mark it unknown"
        )
    return value


def parse_edits(assignments: Iterable[str]) -> list[Edit]:
    """Parse ``KEY=VALUE`` strings (see the module's documentation for the keys).

    Raises
    ------
    InvalidInput
        No assignment, an unknown key, a value that is not a positive length or wavelength,
        an empty channel name, or two assignments of the same value.
    """
    edits: list[Edit] = []
    seen: dict[tuple[str, int | str | None], str] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"{item!r}: write KEY=VALUE (keys: {_HELP})")
        found: list[Edit] = []
        if key in _SIZE_KEYS:
            value = _number(key, raw, "µm")
            found = [Edit(key, f"physical_size_{a}_um", value) for a in _SIZE_KEYS[key]]
        elif m := _CHANNEL_RE.match(key):
            sel_text, fld = m.group("sel").strip(), m.group("field")
            if fld not in _CHANNEL_FIELDS:
                raise InvalidInput(
                    f"{key}: unknown channel field {fld!r}; use name, emission_nm or excitation_nm"
                )
            if not sel_text:
                raise InvalidInput(f"{key}: name a channel inside [...]: its index or its name")
            sel: int | str
            if len(sel_text) >= 2 and sel_text[0] == sel_text[-1] and sel_text[0] in "'\"":
                sel = sel_text[1:-1]  # a quoted name, even of digits: channel["525"]
            else:
                sel = int(sel_text) if sel_text.isdigit() else sel_text
            target = _CHANNEL_FIELDS[fld]
            if target == "name":
                name = raw.strip()
                if not name:
                    raise InvalidInput(f"{key}: a channel name cannot be empty")
                found = [Edit(key, "name", name, sel)]
            else:
                found = [Edit(key, target, _number(key, raw, "nm"), sel)]
        else:
            raise InvalidInput(f"{key}: not a key `quantscope set` knows; keys: {_HELP}")
        for e in found:
            slot = (e.field, e.channel)
            if slot in seen:
                raise InvalidInput(f"{key} and {seen[slot]} both set {e.field}; give it once")
            seen[slot] = key
        edits += found
    if not edits:
        raise InvalidInput(f"nothing to set: give at least one KEY=VALUE (keys: {_HELP})")
    return edits


# -------------------------------------------------------------------------------- selection
def select_images(repo: Repository, selection: str | Selection) -> list[str]:
    """Image ids of ``selection`` for :func:`set_metadata`: what
    :func:`quantscope.catalog.select_images` resolves (an image id or unique prefix,
    ``image:ID``, ``plate:NAME``, ``dataset:NAME``, or else a query), which must not be empty.

    Raises
    ------
    InvalidInput
        An empty selection or query, an ambiguous prefix, a query that does not parse.
    NotFound
        No image, plate or dataset matches.
    """
    ids = resolve_selection(repo, selection)
    if not ids:
        shown = selection.strip() if isinstance(selection, str) else repr(selection)
        raise NotFound(f"{repo.root}: selection {shown!r} matches no image; nothing was changed")
    return ids


# ------------------------------------------------------------------------------- applying
def _resolve_channel(img: Image, sel: int | str, key: str) -> int:
    n = len(img.channels)
    if isinstance(sel, int) and not 0 <= sel < n:
        named = [c.index for c in img.channels if c.name == str(sel)]
        if len(named) == 1:  # channels named by wavelength (DeltaVision): channel[632]
            return named[0]
    if isinstance(sel, int):
        if not 0 <= sel < n:
            raise InvalidInput(
                f"image {img.id} ({img.name}): {key}: no channel {sel}; it has "
                f"{plural(n, 'channel')}, numbered 0 to {n - 1}"
            )
        return sel
    exact = [c.index for c in img.channels if c.name == sel]
    if not exact:
        exact = [c.index for c in img.channels if c.name.lower() == sel.lower()]
    if len(exact) != 1:
        names = ", ".join(c.name for c in img.channels)
        raise InvalidInput(
            f"image {img.id} ({img.name}): {key}: no channel named {sel!r} "
            f"(its channels: {names}); nothing was changed"
        )
    return exact[0]


@dataclass
class _Plan:
    image: Image
    sizes: dict[str, float | None]  # physical_size_x_um... -> new value
    channels: dict[int, dict[str, Any]]  # channel index -> {field: new value}
    changes: list[FieldChange]


def _plan(img: Image, edits: Sequence[Edit]) -> _Plan:
    sizes: dict[str, float | None] = {}
    channels: dict[int, dict[str, Any]] = {}
    changes: list[FieldChange] = []
    for e in edits:
        if e.channel is None:
            old = getattr(img, e.field)
            if old != e.value:
                sizes[e.field] = e.value  # type: ignore[assignment]
                changes.append(FieldChange(img.id, e.field, old, e.value))
            continue
        idx = _resolve_channel(img, e.channel, e.key)
        old = getattr(img.channels[idx], e.field)
        if old != e.value:
            channels.setdefault(idx, {})[e.field] = e.value
            changes.append(FieldChange(img.id, e.field, old, e.value, idx))
    names = [channels.get(c.index, {}).get("name", c.name) for c in img.channels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(
            f"image {img.id} ({img.name}): channel names must stay unique; "
            f"{', '.join(map(repr, dupes))} would be used twice; nothing was changed"
        )
    return _Plan(img, sizes, channels, changes)


def _new_zarr_json(text: bytes, plan: _Plan, where: str) -> bytes:
    """The image group's ``zarr.json`` with the new scale, axis units and channel labels."""
    try:
        doc = json.loads(text)
        ome = doc["attributes"]["ome"]
        ms = ome["multiscales"][0]
        names = [a["name"] for a in ms["axes"]]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise CorruptFile(f"{where}: not an OME-Zarr image group ({e}); nothing was changed") from e
    img = plan.image
    old = {a: getattr(img, f"physical_size_{a}_um") for a in "xyz"}
    new = {a: plan.sizes.get(f"physical_size_{a}_um", old[a]) for a in "xyz"}
    for ds in ms.get("datasets", []):
        for tr in ds.get("coordinateTransformations", []):
            if tr.get("type") != "scale":
                continue
            scale = tr["scale"]
            for a in "xyz":
                if a in names:
                    i = names.index(a)
                    factor = scale[i] / (old[a] or 1.0)  # the level's downsampling
                    scale[i] = (new[a] or 1.0) * factor
    known = any(v is not None for v in new.values())
    for ax in ms["axes"]:
        if ax.get("type") != "space":
            continue
        if known and (new.get(ax["name"]) is not None or ax["name"] != "z"):
            ax["unit"] = "micrometer"  # as the writer: z only when its spacing is known
        else:
            ax.pop("unit", None)
    labels = ome.get("omero", {}).get("channels", [])
    for idx, fields in plan.channels.items():
        if "name" in fields and idx < len(labels):
            labels[idx]["label"] = fields["name"]
    return json.dumps(doc).encode()


def _children(node: Any, ns: str | None, name: str) -> list[Any]:
    return [
        n
        for n in node.childNodes
        if n.nodeType == n.ELEMENT_NODE and n.namespaceURI == ns and n.localName == name
    ]


def _new_ome_xml(text: bytes, plan: _Plan, where: str) -> bytes:
    """The stored OME-XML with the new physical sizes and channel names and wavelengths set
    on the image's Pixels and Channel elements (units written: µm and nm).

    Edited with ``xml.dom.minidom``, which keeps the document's namespace declarations as they
    are: ElementTree rewrites prefixes from a process-wide registry, and vendor XML without a
    namespace inside an annotation (``<ImageDocument xmlns="">`` of Zeiss files) would then
    fall into OME's namespace and break the schema.
    """
    from xml.dom import minidom
    from xml.parsers.expat import ExpatError

    try:
        doc = minidom.parseString(text)
    except ExpatError as e:
        raise CorruptFile(f"{where}: stored OME-XML is not valid XML ({e})") from e
    root = doc.documentElement
    if root is None:
        return text
    ns = root.namespaceURI
    images = _children(root, ns, "Image")
    img = plan.image
    index = img.sources[0].scene if len(img.sources) == 1 else 0
    if not images:
        return text
    image = images[index] if index < len(images) else images[0]
    pixels = next(iter(_children(image, ns, "Pixels")), None)
    if pixels is None:
        return text

    def put(el: Any, attr: str, value: float | str | None, unit: str | None) -> None:
        if value is None:
            for a in (attr, attr + "Unit"):
                if el.hasAttribute(a):
                    el.removeAttribute(a)
            return
        el.setAttribute(attr, value if isinstance(value, str) else repr(float(value)))
        if unit is not None:
            el.setAttribute(attr + "Unit", unit)

    for fld, value in plan.sizes.items():
        put(pixels, "PhysicalSize" + fld.split("_")[2].upper(), value, "µm")
    chans = _children(pixels, ns, "Channel")
    attrs = {
        "name": ("Name", None),
        "emission_wavelength_nm": ("EmissionWavelength", "nm"),
        "excitation_wavelength_nm": ("ExcitationWavelength", "nm"),
    }
    for idx, fields in plan.channels.items():
        if idx < len(chans):
            for fld, value in fields.items():
                attr, unit = attrs[fld]
                put(chans[idx], attr, value, unit)
    return doc.toxml(encoding="UTF-8")


def set_metadata(
    repo: Repository,
    selection: str | Selection | Sequence[str],
    assignments: Iterable[str] | Sequence[Edit],
    *,
    by: str | None = None,
) -> EditReport:
    """Set pixel sizes and channel names and wavelengths of the selected images.

    Parameters
    ----------
    repo
        An open repository; its write lock is taken here.
    selection
        What :func:`select_images` accepts (a :class:`~quantscope.catalog.Selection` or its
        one-string form), or a list of image ids.
    assignments
        ``KEY=VALUE`` strings (see :func:`parse_edits`) or parsed :class:`Edit` s.
    by
        Who made the change, for the audit record (default: the operating-system user).

    Returns
    -------
    EditReport
        The images selected and the values changed.

    Raises
    ------
    InvalidInput, NotFound, CorruptFile
        Bad keys or values, a channel an image lacks, an empty selection, a stored file that
        cannot be read. Nothing is changed: every image is checked before anything is written.
    """
    items = list(assignments)
    edits: list[Edit] = (
        [e for e in items if isinstance(e, Edit)]
        if all(isinstance(e, Edit) for e in items)
        else parse_edits(str(e) for e in items)
    )
    if not edits:
        raise InvalidInput(f"nothing to set: give at least one KEY=VALUE (keys: {_HELP})")
    if not isinstance(selection, str | Selection) and (
        not isinstance(selection, Sequence) or not all(isinstance(i, str) for i in selection)
    ):
        raise InvalidInput(
            "selection: expected an image id, plate:NAME, dataset:NAME, a query, a Selection or "
            f"a list of image ids, got {type(selection).__name__} {selection!r}"
        )
    ids = (
        select_images(repo, selection)
        if isinstance(selection, str | Selection)
        else [repo.images.get(i).id for i in selection]
    )
    if not ids:
        raise NotFound(f"{repo.root}: no image selected; nothing was changed")
    report = EditReport(images=list(ids))
    with repo.write_lock():
        images = repo.images.all(ids)
        plans = [p for p in (_plan(img, edits) for img in images) if p.changes]
        if not plans:
            return report
        manifest = {
            (img_id, rel): (size, sha)
            for p in plans
            for img_id, rel, size, sha in repo.images.stored_files(p.image.id)
        }
        files = _new_files(repo, plans)  # every new file is computed before anything is written
        now = datetime.now(UTC)
        who = by or user_name()
        written: list[tuple[Path, bytes]] = []
        try:
            with repo.engine.begin() as conn:
                for p in plans:
                    if p.sizes:
                        conn.execute(
                            S.images.update().where(S.images.c.id == p.image.id).values(**p.sizes)
                        )
                    for idx, fields in p.channels.items():
                        conn.execute(
                            S.channels.update()
                            .where(S.channels.c.image_id == p.image.id, S.channels.c.idx == idx)
                            .values(**fields)
                        )
                delta: dict[str, int] = {}
                for img_id, rel, _path, old, new in files:
                    sha = hashlib.sha256(new).hexdigest()
                    sf = S.stored_files.c
                    if (img_id, rel) in manifest:
                        conn.execute(
                            S.stored_files.update()
                            .where(sf.image_id == img_id, sf.path == rel)
                            .values(size=len(new), sha256=sha)
                        )
                        delta[img_id] = delta.get(img_id, 0) + len(new) - len(old)
                for img_id, d in delta.items():
                    conn.execute(
                        S.images.update()
                        .where(S.images.c.id == img_id)
                        .values(bytes_stored=S.images.c.bytes_stored + d)
                    )
                repo.annotations._write(conn, _audit(plans, who, now))
                for _img_id, _rel, path, old, new in files:
                    atomic_write(path, new, durable=True)
                    written.append((path, old))
        except BaseException:
            for path, old in reversed(written):  # the catalog rolled back: so do the files
                with contextlib.suppress(OSError):
                    atomic_write(path, old, durable=True)
            raise
    report.changes = [c for p in plans for c in p.changes]
    report.files_rewritten = len(files)
    return report


def _new_files(
    repo: Repository, plans: Sequence[_Plan]
) -> list[tuple[str, str, Path, bytes, bytes]]:
    """(image id, path relative to the repository, path, old bytes, new bytes) of every stored
    metadata file the plans change: each image's ``zarr.json`` and its OME-XML."""
    files: list[tuple[str, str, Path, bytes, bytes]] = []
    for p in plans:
        base = Path(p.image.store_path)
        targets = [("zarr.json", _new_zarr_json)]
        if p.sizes or p.channels:
            targets.append(("OME/METADATA.ome.xml", _new_ome_xml))
        for name, rewrite in targets:
            rel = (base / name).as_posix()
            path = repo.root / rel
            try:
                old = path.read_bytes()
            except FileNotFoundError:
                if name == "zarr.json":
                    raise CorruptFile(
                        f"{path}: the image's zarr.json is missing; run `quantscope verify`"
                    ) from None
                continue  # no stored OME-XML (pixels-only images): nothing to keep in step
            except OSError as e:
                raise CorruptFile(f"{path}: cannot be read ({e.strerror or e})") from e
            new = rewrite(old, p, str(path))
            if new != old:
                files.append((p.image.id, rel, path, old, new))
    return files


def _audit(plans: Sequence[_Plan], who: str, now: datetime) -> list[Annotation]:
    out = []
    for p in plans:
        for c in p.changes:
            record = {
                "field": c.field,
                "channel": c.channel,
                "old": c.old,
                "new": c.new,
                "by": who,
                "at": now.isoformat(),
            }
            out.append(
                Annotation(
                    target_kind="image",
                    target_id=p.image.id,
                    key=EDIT_KEY,
                    value=json.dumps(record, ensure_ascii=False),
                    source="quantscope set",
                )
            )
    return out
